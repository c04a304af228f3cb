/**
 * Self-service account deletion with a grace period, and reactivation inside it. The deletion
 * itself (shared with the admin DELETE) is a state transition plus the `account-deletion:<userId>`
 * workflow, started inside the same database transaction so neither exists without the other.
 */
import Router from '@koa/router';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { z } from 'zod';
import { lockUser, transition } from '../../domain/accounts/account-state';
import { withTx } from '../../platform/db';
import { User } from '../../platform/db/models';
import { AppError } from '../../platform/errors';
import { assertFreshSecondFactor } from '../../domain/accounts/mfa';
import { loginRateLimit } from '../../domain/rate-limits';
import type { RequestMeta } from '../../domain/sessions/sessions';
import { FlowAttr, UserIdAttr, workflowIds } from '../../platform/temporal/ids';
import { publicUser } from '../../domain/accounts/users';
import { cancelDeletionUpdate, deletionStateQuery, type AccountDeletionState } from '../../workflows/account-deletion';
import type { AppDeps } from '../context';
import { requestMeta, requireAuth } from '../middleware/auth';
import { parse } from '../middleware/validate';
import { describe } from '../openapi';
import { Email, MfaCode, Password, UserSchema } from '../schemas';

export const DeletionSchema = z.object({
  due_at: z.string().describe('when personal data is erased unless the account is reactivated'),
});
export const DeletionEnvelope = z.object({ user: UserSchema, deletion: DeletionSchema });

/**
 * Moves the user to `pending_deletion` and starts the deletion workflow, in one transaction (a
 * failed start rolls the status back). `guard` runs on the locked row first.
 */
export async function scheduleDeletion(deps: AppDeps, userId: string, meta: RequestMeta, by: 'self' | 'admin', guard?: (u: User) => void): Promise<{ user: User; dueAt: Date }> {
  const dueAt = new Date(Date.now() + deps.config.ACCOUNT_DELETION_GRACE * 1000);
  return withTx(deps.sequelize, async (t) => {
    const user = await lockUser(userId, t);
    guard?.(user);
    await transition(t, user, 'request_deletion', { meta, deletionDueAt: dueAt, data: { by, due_at: dueAt.toISOString() } });
    await deps.temporal.workflow.start('accountDeletionWorkflow', {
      workflowId: workflowIds.accountDeletion(userId),
      taskQueue: deps.config.TEMPORAL_TASK_QUEUE,
      args: [{ userId, dueAt: dueAt.toISOString(), requestedBy: by }],
      // The row was not pending deletion (the transition above checked), so a run still open
      // under this id is an orphan of a failed commit: replace it.
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.TERMINATE_EXISTING,
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      typedSearchAttributes: [{ key: UserIdAttr, value: userId }, { key: FlowAttr, value: 'account-deletion' }],
    });
    return { user, dueAt };
  });
}

/**
 * Cancels a pending deletion through the workflow's update (its handler restores the account in
 * the database). If no workflow exists (it was terminated by an operator), the transition is
 * applied directly. Throws 409 when erasure has begun or the account is not pending deletion.
 */
export async function cancelDeletion(deps: AppDeps, userId: string, meta: RequestMeta, restoreTo?: 'active'): Promise<User> {
  try {
    await deps.temporal.workflow.getHandle(workflowIds.accountDeletion(userId)).executeUpdate(cancelDeletionUpdate, {
      args: [{ actorId: meta.actorId ?? null, requestId: meta.requestId ?? null, restoreTo }],
      updateId: `cancel:${meta.requestId ?? Date.now()}`,
    });
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      throw new AppError('invalid_transition', 'the deletion can no longer be cancelled', { status_now: 'pending_deletion', event: 'cancel_deletion' });
    }
    if (!(err instanceof WorkflowNotFoundError) && (err as Error)?.name !== 'WorkflowNotFoundError') throw err;
    // Workflow finished or gone: only the database decides (erased accounts stay erased).
    await withTx(deps.sequelize, (t) => transition(t, userId, 'cancel_deletion', { meta, restoreTo, data: { workflow: 'missing' } }));
  }
  const user = await User.findByPk(userId);
  if (!user) throw new AppError('not_found', 'no such user');
  return user;
}

/** The deletion workflow's state, when one exists (best effort: null if Temporal does not answer). */
export async function deletionState(deps: AppDeps, userId: string): Promise<AccountDeletionState | null> {
  try {
    return await deps.temporal.workflow.getHandle(workflowIds.accountDeletion(userId)).query(deletionStateQuery);
  } catch {
    return null;
  }
}

const DeleteMeBody = z.object({
  password: Password,
  code: MfaCode.optional().describe('a fresh TOTP (or recovery) code; required when MFA is on'),
}).strict();
const ReactivateBody = z.object({
  email: Email,
  password: Password,
  code: MfaCode.optional().describe('a current TOTP (or recovery) code; required when MFA is on'),
}).strict();

export function accountRouter(deps: AppDeps): Router {
  const r = new Router({ prefix: '/v1/me' });

  describe('delete', '/v1/me', {
    summary: 'Delete the account: pending_deletion now, personal data erased after the grace period',
    tags: ['me'],
    auth: true,
    body: DeleteMeBody,
    responses: {
      202: { description: 'deletion scheduled; sessions ended', schema: DeletionEnvelope },
      401: { description: 'invalid_credentials (wrong password); mfa_required / invalid_mfa_code (MFA users without a fresh code)' },
      409: { description: 'invalid_transition (already pending deletion)' },
    },
  });
  r.delete('/', requireAuth(deps.tokens), async (ctx) => {
    const body = parse(DeleteMeBody, ctx.request.body);
    const auth = ctx.state.auth!;
    const meta = requestMeta(ctx);
    const current = await User.findByPk(auth.sub);
    if (!current || current.status === 'deleted' || !current.email) throw new AppError('unauthorized', 'the account no longer exists');
    if (current.status === 'pending_deletion') {
      throw new AppError('invalid_transition', 'the account is already pending deletion', { status_now: current.status, event: 'request_deletion' });
    }
    // The password is checked like a login (wrong ones count toward the lockout).
    await deps.accounts.authenticatePassword(current.email, body.password, meta);
    // MFA users also give a fresh code (missing: 401 mfa_required; wrong: 401 invalid_mfa_code).
    await assertFreshSecondFactor(auth.sub, body.code, meta, 'account_deletion');
    const { user, dueAt } = await scheduleDeletion(deps, auth.sub, meta, 'self');
    ctx.status = 202;
    ctx.body = { user: publicUser(user), deletion: { due_at: dueAt.toISOString() } };
  });

  describe('post', '/v1/me/reactivate', {
    summary: 'Reactivate an account pending deletion (e-mail, password and, with MFA, a code; grace period only)',
    description: 'Checked like a sign-in (throttled per device, failures counted and audited). Every case other than the right credentials of an account pending deletion answers exactly like a wrong password.',
    tags: ['me'],
    body: ReactivateBody,
    responses: {
      200: { description: 'reactivated; the deletion is cancelled', schema: z.object({ user: UserSchema }) },
      401: { description: 'invalid_credentials: wrong or missing credentials, unknown e-mail, throttled, or an account that is not pending deletion' },
      403: { description: 'account_suspended (the account was suspended before the deletion)' },
      409: { description: 'invalid_transition (erasure has begun)' },
      429: { description: 'rate_limited' },
    },
  });
  r.post('/reactivate', loginRateLimit, async (ctx) => {
    const body = parse(ReactivateBody, ctx.request.body);
    const meta = requestMeta(ctx);
    const found = await deps.accounts.authenticatePassword(body.email, body.password, meta, {
      accept: 'pending_deletion',
      // MFA users add a fresh code; a wrong or missing one answers like a wrong password.
      secondFactor: (u) => deps.mfa.assertFreshSecondFactor(u.id, body.code, meta, 'reactivation'),
    });
    const user = await cancelDeletion(deps, found.id, { ...meta, actorId: found.id });
    ctx.body = { user: publicUser(user) };
  });

  return r;
}
