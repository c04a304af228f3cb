/** Who may get a password-reset e-mail: one statement, and it keeps accounts on their way out away. */
import { RESET_ELIGIBLE } from '../../../../domain/accounts/password-reset';
import { USER_STATUSES } from '../../../../platform/db/models';

test('users may ask themselves when active or locked; an admin reaches every account that still exists', () => {
  expect([...RESET_ELIGIBLE.self].sort()).toEqual(['active', 'locked']);
  expect(USER_STATUSES.filter((s) => !RESET_ELIGIBLE.admin.has(s)).sort()).toEqual(['deleted', 'pending_deletion']);
  for (const s of RESET_ELIGIBLE.self) expect(RESET_ELIGIBLE.admin.has(s)).toBe(true);
});
