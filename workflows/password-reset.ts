/**
 * Password reset (`password-reset:<userId>`).
 *
 * Started by `POST /v1/auth/password/forgot` with signal-with-start (a running flow receives the
 * repeated request as a signal), or by an administrator's reset with TERMINATE_EXISTING and
 * `reason: 'admin_reset'`. Each request asks an activity to issue a reset token: the activity
 * generates it, stores only its hash (superseding the previous token), e-mails it, and enforces
 * the anti-spam rules from the database (one e-mail per PASSWORD_RESET_EMAIL_INTERVAL, at most
 * PASSWORD_RESET_EMAILS_PER_DAY per rolling day), so the caps hold across runs of this flow; an
 * administrator's reset is not capped. The flow then waits for the reset (signal from the API) or
 * for the newest token to expire (timer). After a reset it e-mails "your password was changed"
 * and completes. History holds the user id, times and outcomes; never the token or the address.
 */
import { allHandlersFinished, condition, defineQuery, defineSignal, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { mailActivity } from './options';

const { issueResetToken, sendNotification } = proxyActivities<Activities>(mailActivity);

export interface PasswordResetInput {
  userId: string;
  reason?: 'user_request' | 'admin_reset';
}

export interface PasswordResetState {
  status: 'waiting' | 'completed' | 'expired';
  emailsSent: number;
  requestsIgnored: number;
  expiresAt: string | null;
}

/**
 * Another forgot-password request for the same user. `requestKey` (the flow outbox row's id) makes
 * a repeated delivery of one request count once: the relay delivers at least once, and a signal
 * carries no id Temporal would deduplicate by. Signals without a key (older callers, recorded
 * histories) count each time, as before.
 */
export const resetRequestedSignal = defineSignal<[requestKey?: string]>('resetRequested');
/** The API applied a new password with a token of this flow. */
export const resetCompletedSignal = defineSignal('resetCompleted');
export const resetStateQuery = defineQuery<PasswordResetState>('state');

export async function passwordResetWorkflow(input: PasswordResetInput): Promise<PasswordResetState> {
  const { workflowId } = workflowInfo();
  // The start itself is a request (a signal-with-start's signal coalesces with it).
  let requested = true;
  let force = input.reason === 'admin_reset';
  let completed = false;
  let expiresAt = 0;
  let emailsSent = 0;
  let requestsIgnored = 0;
  let status: PasswordResetState['status'] = 'waiting';
  let sequence = 0;

  const state = (): PasswordResetState => ({ status, emailsSent, requestsIgnored, expiresAt: expiresAt ? new Date(expiresAt).toISOString() : null });
  const seenRequests = new Set<string>();
  setHandler(resetRequestedSignal, (requestKey?: string) => {
    if (requestKey !== undefined) {
      if (seenRequests.has(requestKey)) return;
      seenRequests.add(requestKey);
    }
    if (!completed) requested = true;
  });
  setHandler(resetCompletedSignal, () => {
    completed = true;
  });
  setHandler(resetStateQuery, state);

  while (!completed) {
    if (requested) {
      requested = false;
      const r = await issueResetToken({ userId: input.userId, flowId: workflowId, force, sequence: sequence++ });
      force = false;
      if (r.sent) emailsSent += 1;
      else requestsIgnored += 1;
      // The newest live token (this one, or an earlier one that is still valid) sets the deadline.
      if (r.expiresAt) expiresAt = Math.max(expiresAt, Date.parse(r.expiresAt));
      continue;
    }
    const remaining = expiresAt - Date.now();
    if (remaining <= 0) break;
    await condition(() => requested || completed, remaining);
  }

  if (completed) {
    status = 'completed';
    await sendNotification({ userId: input.userId, template: 'password_changed', params: { when: new Date().toISOString() } });
  } else {
    status = 'expired';
  }
  await condition(allHandlersFinished);
  return state();
}
