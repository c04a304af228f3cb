/**
 * Activities of the invitation flow: recording how the invitation ended (the e-mail and the code
 * expiry are the e-mail verification activities). The rules are domain/accounts/invitations.ts.
 */
import { finishInvitation } from '../domain/accounts/invitations';
import type { ActivityDeps } from './deps';

export function createInvitationActivities(deps: ActivityDeps) {
  return {
    /** Marks the invitation accepted (the address is verified) or expired; idempotent. */
    async finishInvitation(input: { userId: string }): Promise<{ outcome: 'accepted' | 'expired' | 'gone' }> {
      return finishInvitation(deps.sequelize, input.userId);
    },
  };
}
