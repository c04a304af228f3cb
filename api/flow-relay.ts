/**
 * The flow outbox relay's Temporal half: what each committed flow event becomes (domain/flow-outbox.ts
 * claims the rows, retries and marks them). Every call is idempotent, since a row may be relayed
 * twice (a crash between Temporal's acceptance and the mark): the verification start joins the
 * running flow and never starts a second run, a resend is an update whose id is the row's, and a reset request is
 * signalled only while no reset token was issued since the row was written (a signal carries no
 * id Temporal would deduplicate by; a token issued after the request means it was served).
 */
import type { AccountService } from '../domain/accounts/accounts';
import type { PasswordResetService } from '../domain/accounts/password-reset';
import type { FlowEventHandler } from '../domain/flow-outbox';
import type { InvitationService } from '../domain/accounts/invitations';
import type { WebhookService } from '../domain/webhooks';
import type { TemporalFlows } from '../platform/temporal/flows';

export function flowEventHandler(
  flows: TemporalFlows,
  services: {
    accounts: Pick<AccountService, 'awaitsVerification'>;
    passwordResets: Pick<PasswordResetService, 'requestServedSince' | 'acceptForgot'>;
    invitations: Pick<InvitationService, 'pending' | 'ttl'>;
    webhooks: Pick<WebhookService, 'fanOut'>;
  },
  s: { acceptWithinMs: number; webhookRetry: { retryForSeconds: number; initialRetrySeconds: number } },
): FlowEventHandler {
  const { accounts, passwordResets, invitations, webhooks } = services;
  return async ({ id, event, createdAt }) => {
    switch (event.kind) {
      // A verification e-mail only while the account still waits for it (a row relayed late or
      // again finds it verified, or gone).
      case 'email_verification.start':
        if (!(await accounts.awaitsVerification(event.userId))) return;
        return flows.startFirstEmailVerification(event.userId);
      case 'email_verification.resend':
        if (!(await accounts.awaitsVerification(event.userId))) return;
        return flows.relayResendVerification(event.userId, `flow-outbox:${id}`, s.acceptWithinMs);
      case 'password_reset.requested':
        if (await passwordResets.requestServedSince(event.userId, createdAt)) return;
        return flows.requestPasswordReset(event.userId, `flow-outbox:${id}`);
      // A forgot request of any address: nothing for an unknown or ineligible account.
      case 'password_reset.forgot':
        if (!event.userId) return;
        if (!(await passwordResets.acceptForgot(event.userId, id, { requestId: event.requestId, ip: event.ip }))) return;
        // The row id as the request key: a second delivery (the first one's answer was lost or
        // late, and no token is issued yet) counts once in the flow.
        if (await passwordResets.requestServedSince(event.userId, createdAt)) return;
        return flows.requestPasswordReset(event.userId, `flow-outbox:${id}`);
      // The invitation e-mail while the invitation is pending (a row relayed again joins the one run).
      case 'invitation.start':
        if (!(await invitations.pending(event.userId))) return;
        return flows.startInvitation(event.userId, invitations.ttl);
      // One delivery per live subscription that wants the event (ids from the row: a second relay adds none), one flow each.
      case 'webhook.event': {
        const ids = await webhooks.fanOut(id, event);
        for (const deliveryId of ids) await flows.startWebhookDelivery(deliveryId, event.userId, s.webhookRetry);
        return;
      }
      default:
        // A kind of a newer release: left for a process that knows it (retried with backoff).
        throw new Error(`unknown flow event kind ${(event as { kind: string }).kind}`);
    }
  };
}
