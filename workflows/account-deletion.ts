/**
 * Account deletion with a grace period (`account-deletion:<userId>`). The API moves the user to
 * `pending_deletion` and starts this flow in the same transaction; the flow e-mails the user,
 * then waits on a durable timer until `dueAt`. Reactivation inside the grace period is an update
 * (`cancelDeletion`) whose handler restores the account through an activity, so the flow and the
 * database agree; once erasure has begun the update is rejected. When the timer fires the
 * erasure activity removes personal data (idempotent, checks the row's state itself) and leaves
 * a tombstone. History carries only the user id, times and request ids.
 */
import { condition, defineQuery, defineUpdate, proxyActivities, setHandler } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { dbActivity, mailActivity } from './options';

const { sendNotification } = proxyActivities<Activities>(mailActivity);
const { cancelAccountDeletion, eraseAccount } = proxyActivities<Activities>(dbActivity);

export interface AccountDeletionInput {
  userId: string;
  /** ISO time at which personal data is erased (also in users.deletion_due_at). */
  dueAt: string;
  requestedBy: 'self' | 'admin';
}

export interface AccountDeletionState {
  status: 'scheduled' | 'cancelling' | 'cancelled' | 'erasing' | 'erased' | 'skipped';
  due_at: string;
  cancelled_at: string | null;
  erased_at: string | null;
}

export interface CancelDeletionInput {
  /** Who reactivated (the user themself or an admin); request id for the audit trail. */
  actorId: string | null;
  requestId: string | null;
  /** An admin reactivation returns the account to `active`; self-service restores the status before. */
  restoreTo?: 'active';
}

export const deletionStateQuery = defineQuery<AccountDeletionState>('deletionState');
export const cancelDeletionUpdate = defineUpdate<AccountDeletionState, [CancelDeletionInput]>('cancelDeletion');

export async function accountDeletionWorkflow(input: AccountDeletionInput): Promise<AccountDeletionState> {
  const state: AccountDeletionState = { status: 'scheduled', due_at: input.dueAt, cancelled_at: null, erased_at: null };
  setHandler(deletionStateQuery, () => ({ ...state }));
  setHandler(
    cancelDeletionUpdate,
    async (c) => {
      state.status = 'cancelling';
      try {
        await cancelAccountDeletion({ userId: input.userId, actorId: c.actorId, requestId: c.requestId, restoreTo: c.restoreTo });
      } catch (err) {
        state.status = 'scheduled';
        throw err;
      }
      state.status = 'cancelled';
      state.cancelled_at = new Date().toISOString();
      return { ...state };
    },
    {
      validator: (_c: CancelDeletionInput) => {
        if (state.status !== 'scheduled') throw new Error(`the deletion is ${state.status} and can no longer be cancelled`);
      },
    },
  );

  try {
    await sendNotification({ userId: input.userId, template: 'deletion_scheduled', params: { due: input.dueAt, by: input.requestedBy } });
  } catch {
    // The notice is best effort (its activity retried for an hour); the deletion goes on.
  }

  // The durable grace timer; a cancellation ends the wait early. A cancellation that was under
  // way when the timer fired finishes first; one that failed leaves the timer running.
  const due = Date.parse(input.dueAt);
  for (;;) {
    const remaining = due - Date.now();
    if (remaining > 0) await condition(() => state.status !== 'scheduled', remaining);
    await condition(() => state.status !== 'cancelling');
    if (state.status === 'cancelled') return { ...state };
    if (Date.now() >= due) break;
  }

  state.status = 'erasing';
  const r = await eraseAccount({ userId: input.userId });
  state.status = r.erased || r.alreadyErased ? 'erased' : 'skipped';
  state.erased_at = r.erasedAt;
  return { ...state };
}
