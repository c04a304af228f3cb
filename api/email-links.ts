/**
 * What the two e-mailed links do, shared by the JSON API (`POST /v1/auth/verify-email`,
 * `POST /v1/auth/password/reset`) and the hosted pages the links lead to by default
 * (api/pages/email-links.ts): the same input schemas, the same service call, the same workflow
 * signal afterwards. A route or page parses, calls one of these, and shapes its own answer.
 */
import { z } from 'zod';
import type { RequestMeta } from '../domain/sessions/sessions';
import type { User } from '../platform/db/models';
import { DependencyError } from '../platform/errors';
import type { Logger } from '../platform/logger';
import type { AppDeps } from './context';
import { chars, NewPassword, Password } from './schemas';

export const VerifyBody = z
  .object({
    token: chars(10, 200),
    password: Password.optional().describe(
      'The password the account gets. Required when the address was registered more than once before it was verified (contested registration: ' +
        "no registrant's password is kept, the holder of the e-mailed token chooses it; without it the answer is 409 `password_required` and the token stays usable). " +
        'Optional otherwise; policy-checked; ends any session of the account. Not accepted for an already verified account.',
    ),
  })
  .strict();

export const ResetBody = z.object({ token: chars(1, 200), new_password: NewPassword }).strict();

/** Spends a verification token (with the chosen password of a contested registration) and tells the flow. */
export async function verifyEmailWithToken(
  deps: Pick<AppDeps, 'accounts' | 'flows'>,
  input: z.infer<typeof VerifyBody>,
  meta: RequestMeta,
  log: Logger | undefined,
): Promise<User> {
  const user = await deps.accounts.verifyEmail(input.token, meta, input.password);
  try {
    await deps.flows.emailVerified(user.id);
  } catch (err) {
    // The user is verified either way; the flow just ends at its timer.
    log?.info({ err: (err as Error).message }, 'verification workflow not signalled');
  }
  return user;
}

/** Spends a reset token, sets the password, ends every session; the flow (or a notice) e-mails "password changed". */
export async function resetPasswordWithToken(
  deps: Pick<AppDeps, 'passwordResets' | 'flows'>,
  input: z.infer<typeof ResetBody>,
  meta: RequestMeta,
  requestId: string,
): Promise<void> {
  await deps.passwordResets.reset(input.token, input.new_password, meta, async (userId) => {
    // Inside the reset transaction: tell the flow (it e-mails "password changed"), or e-mail directly.
    try {
      if (await deps.flows.passwordResetCompleted(userId)) return;
      await deps.flows.notify(`password-changed:${userId}:${requestId}`, { userId, template: 'password_changed', params: { when: new Date().toISOString() } });
    } catch (err) {
      throw new DependencyError('temporal', err);
    }
  });
}
