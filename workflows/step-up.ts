/**
 * Step-up verification of a refresh from an unknown device (`step-up:<sessionId>`).
 *
 * The API opens a challenge row (inside the refresh transaction) and hands it here with
 * signal-with-start; a newer challenge of the same session supersedes the current one. For e-mail
 * challenges an activity generates the code, stores its hash and e-mails it; TOTP challenges wait
 * for a code from the user's authenticator app. The API checks the typed code (hash compare or
 * TOTP), then submits only the verdict through the `submit` update: the code never reaches this
 * history. Here the attempts are counted and the outcome decided:
 *   - correct → an activity spends the old refresh token, stores the new one's hash (made by the
 *     API), trusts the device; the flow completes `verified`;
 *   - wrong → attempts left; the last wrong one ends the session (activity) and e-mails the user;
 *   - the timer runs out → the session ends and the user is e-mailed.
 * History holds ids, verdicts and a token hash only.
 */
import { allHandlersFinished, ApplicationFailure, condition, defineQuery, defineSignal, defineUpdate, proxyActivities, setHandler } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { dbActivity, mailActivity } from './options';

const { issueStepUpCode } = proxyActivities<Activities>({
  ...mailActivity,
  // The challenge row commits just after the signal; a row that never appears was rolled back.
  retry: { ...mailActivity.retry, maximumAttempts: 8 },
});
const { sendNotification } = proxyActivities<Activities>(mailActivity);
const { failStepUp } = proxyActivities<Activities>(dbActivity);
/** The API waits on this one inside an update: short and bounded. */
const { completeStepUp } = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  scheduleToCloseTimeout: '20 seconds',
  retry: { initialInterval: '200 milliseconds', backoffCoefficient: 2, maximumInterval: '2 seconds' },
});

export interface StepUpInput {
  sessionId: string;
  userId: string;
  /** Seconds each challenge stays open. */
  ttlSeconds: number;
  /** Wrong codes allowed per flow (across superseding challenges). */
  maxAttempts: number;
}

export interface StepUpChallenge {
  challengeId: string;
  method: 'email' | 'totp';
}

export interface StepUpSubmission {
  challengeId: string;
  /** The API's verdict on the typed code. */
  ok: boolean;
  /** On ok: the new refresh token's row id and SHA-256 (hex); the token itself stays in the API. */
  next?: { id: string; hash: string };
}

export type StepUpResult =
  | { result: 'verified' }
  | { result: 'wrong_code'; attemptsLeft: number }
  | { result: 'failed'; attemptsLeft: 0 }
  | { result: 'token_reused' }
  | { result: 'session_ended' };

export type StepUpStatus = 'pending' | 'verified' | 'failed' | 'expired' | 'cancelled';

export interface StepUpState {
  status: StepUpStatus;
  challengeId?: string;
  method?: 'email' | 'totp';
  attemptsLeft: number;
}

export const challengeSignal = defineSignal<[StepUpChallenge]>('challenge');
export const cancelSignal = defineSignal<[{ reason: string }]>('cancel');
export const submitUpdate = defineUpdate<StepUpResult, [StepUpSubmission]>('submit');
export const stepUpStateQuery = defineQuery<StepUpState>('state');

/** Update rejections the API maps: NotPending → 404, Busy → 409. */
const notPending = () => ApplicationFailure.nonRetryable('this verification is not pending', 'NotPending');

export async function stepUpWorkflow(input: StepUpInput): Promise<StepUpState> {
  let current: StepUpChallenge | undefined;
  let version = 0;
  let deadline = 0;
  let attempts = 0;
  let busy = false;
  let status: StepUpStatus = 'pending';
  /** Set when the session ended through this flow and the user must be told. */
  let notify: string | undefined;
  const toIssue: StepUpChallenge[] = [];

  const state = (): StepUpState => ({
    status,
    challengeId: current?.challengeId,
    method: current?.method,
    attemptsLeft: Math.max(0, input.maxAttempts - attempts),
  });

  setHandler(challengeSignal, (c) => {
    if (status !== 'pending') return;
    current = c;
    version += 1;
    deadline = Date.now() + input.ttlSeconds * 1000;
    if (c.method === 'email') toIssue.push(c);
  });
  setHandler(cancelSignal, () => {
    if (status === 'pending') status = 'cancelled';
  });
  setHandler(stepUpStateQuery, state);
  setHandler(
    submitUpdate,
    async (s): Promise<StepUpResult> => {
      busy = true;
      try {
        if (s.ok && s.next) {
          const r = await completeStepUp({ challengeId: s.challengeId, newTokenId: s.next.id, newTokenHash: s.next.hash });
          if (r.ok) {
            status = 'verified';
            return { result: 'verified' };
          }
          if (r.reason === 'not_pending') throw notPending();
          status = 'failed';
          if (r.reason === 'token_reused') notify = 'token_reused';
          return { result: r.reason };
        }
        attempts += 1;
        if (attempts < input.maxAttempts) return { result: 'wrong_code', attemptsLeft: input.maxAttempts - attempts };
        const r = await failStepUp({ challengeId: s.challengeId, reason: 'too_many_attempts' });
        status = 'failed';
        if (r.revoked) notify = 'step_up_failed';
        return { result: 'failed', attemptsLeft: 0 };
      } catch (err) {
        if (err instanceof ApplicationFailure) throw err;
        // An activity that could not finish (database down): the attempt does not count.
        if (!s.ok) attempts -= 1;
        throw ApplicationFailure.nonRetryable('the verification could not be completed now', 'Unavailable');
      } finally {
        busy = false;
      }
    },
    {
      validator: (s: StepUpSubmission) => {
        if (status !== 'pending' || !current || s.challengeId !== current.challengeId || Date.now() >= deadline) throw notPending();
        if (busy) throw ApplicationFailure.nonRetryable('another code for this verification is being checked', 'Busy');
        if (s.ok && !s.next) throw ApplicationFailure.nonRetryable('a verified submission carries the next token hash', 'InvalidInput');
      },
    },
  );

  // Signal-with-start delivers the first challenge with the first task.
  await condition(() => current !== undefined || status !== 'pending', '1 minute');
  let seen = -1;
  while (status === 'pending' && current) {
    while (toIssue.length) {
      const c = toIssue.shift()!;
      if (c !== current) continue; // superseded before its code went out
      try {
        await issueStepUpCode({ userId: input.userId, sessionId: input.sessionId, challengeId: c.challengeId });
      } catch {
        // Never committed (the refresh rolled back) or mail down for an hour: nothing to verify.
        // The challenge ends at its timer; failStepUp only ends sessions of a real pending challenge.
      }
    }
    if (status !== 'pending') break;
    seen = version;
    const remaining = deadline - Date.now();
    if (remaining <= 0 && busy) {
      // A code is being checked right at the deadline: its answer decides.
      await condition(() => !busy);
      continue;
    }
    if (remaining <= 0) {
      const expiring = current;
      const r = await failStepUp({ challengeId: expiring.challengeId, reason: 'expired' });
      if (r.revoked) {
        status = 'expired';
        notify = 'step_up_expired';
        break;
      }
      if (current !== expiring) continue; // a newer challenge arrived meanwhile
      status = 'expired';
      break;
    }
    await condition(() => status !== 'pending' || version !== seen || toIssue.length > 0, remaining);
  }

  await condition(allHandlersFinished);
  if (notify) {
    await sendNotification({ userId: input.userId, template: 'session_revoked', params: { reason: reasonText(notify) } });
  }
  return state();
}

function reasonText(reason: string): string {
  switch (reason) {
    case 'step_up_expired':
      return 'a sign-in from a new device was not confirmed in time';
    case 'step_up_failed':
      return 'too many wrong codes while confirming a sign-in from a new device';
    default:
      return 'a refresh token was used twice';
  }
}
