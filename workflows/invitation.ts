/**
 * Invitation (`invitation:<userId>`): an administrator invited an address (the account exists as
 * `pending_verification` without a password, domain/accounts/invitations.ts). Issues the invitation
 * e-mail's single-use code, waits until the address is verified (signal `accepted` from the API)
 * or the code expires (timer), expires the code if it was not used, and records the outcome.
 * History holds ids and times only; the code is generated and hashed inside the activity.
 */
import { condition, defineQuery, defineSignal, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { dbActivity, mailActivity } from './options';

const { issueOneTimeCode } = proxyActivities<Activities>(mailActivity);
const { expireOneTimeCodes, finishInvitation } = proxyActivities<Activities>(dbActivity);

export interface InvitationInput {
  userId: string;
  ttlSeconds: number;
}

export interface InvitationState {
  status: 'waiting' | 'accepted' | 'expired' | 'gone';
  expiresAt: string | null;
}

export const invitationAcceptedSignal = defineSignal('accepted');
export const invitationStateQuery = defineQuery<InvitationState>('state');

export async function invitationWorkflow(input: InvitationInput): Promise<InvitationState> {
  const { workflowId } = workflowInfo();
  let accepted = false;
  let expiresAt = 0;
  let status: InvitationState['status'] = 'waiting';
  const state = (): InvitationState => ({ status, expiresAt: expiresAt ? new Date(expiresAt).toISOString() : null });
  setHandler(invitationAcceptedSignal, () => {
    accepted = true;
  });
  setHandler(invitationStateQuery, state);

  const issued = await issueOneTimeCode({
    userId: input.userId,
    purpose: 'email_verification',
    flowId: workflowId,
    ttlSeconds: input.ttlSeconds,
    template: 'invitation',
    sequence: 0,
  });
  expiresAt = Date.parse(issued.expiresAt);
  await condition(() => accepted, Math.max(1, expiresAt - Date.now()));
  if (!accepted) await expireOneTimeCodes({ userId: input.userId, purpose: 'email_verification', flowId: workflowId });
  // The account decides: verified by this code or any other path is accepted.
  status = (await finishInvitation({ userId: input.userId })).outcome;
  return state();
}
