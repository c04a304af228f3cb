/**
 * E-mail verification (`email-verification:<userId>`): issues a single-use code by e-mail, accepts
 * a limited number of resends (update), and waits until the user verifies (signal from the API)
 * or the last code expires (timer). Codes are generated and hashed inside the activity; history
 * holds only ids and times.
 */
import { condition, defineQuery, defineSignal, defineUpdate, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { dbActivity, mailActivity } from './options';

const { issueOneTimeCode } = proxyActivities<Activities>(mailActivity);
const { expireOneTimeCodes } = proxyActivities<Activities>(dbActivity);

export interface EmailVerificationInput {
  userId: string;
  ttlSeconds: number;
  maxResends: number;
}

export interface EmailVerificationState {
  status: 'waiting' | 'verified' | 'expired';
  resendsLeft: number;
  expiresAt: string;
}

export const verifiedSignal = defineSignal('verified');
export const resendUpdate = defineUpdate<{ resendsLeft: number; expiresAt: string }>('resend');
export const verificationStateQuery = defineQuery<EmailVerificationState>('state');

export class ResendLimitError extends Error {}

export async function emailVerificationWorkflow(input: EmailVerificationInput): Promise<EmailVerificationState> {
  const { workflowId } = workflowInfo();
  let verified = false;
  let resends = 0;
  let expiresAt = 0;
  let status: EmailVerificationState['status'] = 'waiting';

  const issue = async (sequence: number) => {
    const r = await issueOneTimeCode({
      userId: input.userId,
      purpose: 'email_verification',
      flowId: workflowId,
      ttlSeconds: input.ttlSeconds,
      template: 'email_verification',
      sequence,
    });
    expiresAt = Date.parse(r.expiresAt);
  };
  const state = (): EmailVerificationState => ({ status, resendsLeft: input.maxResends - resends, expiresAt: new Date(expiresAt).toISOString() });

  setHandler(verifiedSignal, () => {
    verified = true;
  });
  setHandler(verificationStateQuery, state);
  setHandler(
    resendUpdate,
    async () => {
      resends += 1;
      await issue(resends);
      return { resendsLeft: input.maxResends - resends, expiresAt: new Date(expiresAt).toISOString() };
    },
    {
      validator: () => {
        if (verified || status !== 'waiting') throw new Error('verification already finished');
        if (resends >= input.maxResends) throw new ResendLimitError('resend limit reached');
      },
    },
  );

  await issue(0);
  // Wait for verification or for the newest code to expire (a resend pushes the deadline out).
  while (!verified) {
    const remaining = expiresAt - Date.now();
    if (remaining <= 0) break;
    await condition(() => verified || expiresAt - Date.now() > remaining, remaining);
  }
  if (verified) {
    status = 'verified';
  } else {
    status = 'expired';
    await expireOneTimeCodes({ userId: input.userId, purpose: 'email_verification', flowId: workflowId });
  }
  return state();
}
