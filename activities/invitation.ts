/**
 * Activities of the invitation flow: recording how the invitation ended (the e-mail and the code
 * expiry are the e-mail verification activities). The rules are domain/accounts/invitations.ts.
 */
import { InvitationService } from '../domain/accounts/invitations';
import type { ActivityDeps } from './deps';

export function createInvitationActivities(deps: ActivityDeps) {
  // The flow outbox is the API's: the worker only finishes invitations.
  const invitations = new InvitationService(
    deps.sequelize,
    { enqueue: () => Promise.reject(new Error('the worker starts no invitation')) },
    deps.config.INVITATION_TTL,
  );
  return {
    /** Marks the invitation accepted (the address is verified) or expired; idempotent. */
    async finishInvitation(input: { userId: string }): Promise<{ outcome: 'accepted' | 'expired' | 'gone' }> {
      return invitations.finish(input.userId);
    },
  };
}
