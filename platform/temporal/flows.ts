/**
 * Every workflow start, signal, update and query the services make, one typed method each. The
 * task queue, the business-key workflow id, its id-conflict policy and the `UserId`/`Flow` search
 * attributes are decided here and nowhere else. The class satisfies the ports the domain declares
 * (`StepUpFlows`, `DeletionFlows`, `LockNotices`: structurally, so platform imports nothing of the
 * domain; domain/services.ts takes it as those ports), and the domain never sees the Temporal SDK. Errors of the client pass through unchanged: callers decide whether
 * a flow is best effort (a notice) or must roll back their transaction (a step-up challenge).
 */
import {
  type Client,
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateStage,
} from '@temporalio/client';
import type { accountDeletionWorkflow, AccountDeletionState } from '../../workflows/account-deletion';
import { cancelDeletionUpdate, deletionStateQuery } from '../../workflows/account-deletion';
import type { backupWorkflow, restoreDrillWorkflow } from '../../workflows/backups';
import type { emailVerificationWorkflow } from '../../workflows/email-verification';
import { resendUpdate, verifiedSignal } from '../../workflows/email-verification';
import type { invitationWorkflow } from '../../workflows/invitation';
import type { webhookDeliveryWorkflow } from '../../workflows/webhook-delivery';
import { invitationAcceptedSignal } from '../../workflows/invitation';
import type { keyRotationWorkflow } from '../../workflows/key-rotation';
import type { notificationWorkflow, NotificationInput } from '../../workflows/notification';
import { rootMessage } from '../../workflows/ops-run';
import type { passwordResetWorkflow } from '../../workflows/password-reset';
import { resetCompletedSignal, resetRequestedSignal } from '../../workflows/password-reset';
import type { stepUpWorkflow, StepUpResult } from '../../workflows/step-up';
import { cancelSignal, challengeSignal, submitUpdate } from '../../workflows/step-up';
import { FlowAttr, SYSTEM_USER, UserIdAttr, workflowIds } from './ids';

/** The flow settings the configuration sets. */
export function flowSettings(c: {
  TEMPORAL_TASK_QUEUE: string;
  EMAIL_VERIFICATION_TTL: number;
  EMAIL_VERIFICATION_MAX_RESENDS: number;
  STEP_UP_TTL: number;
  STEP_UP_MAX_ATTEMPTS: number;
}): FlowSettings {
  return {
    taskQueue: c.TEMPORAL_TASK_QUEUE,
    emailVerificationTtl: c.EMAIL_VERIFICATION_TTL,
    emailVerificationMaxResends: c.EMAIL_VERIFICATION_MAX_RESENDS,
    stepUpTtl: c.STEP_UP_TTL,
    stepUpMaxAttempts: c.STEP_UP_MAX_ATTEMPTS,
  };
}

export interface FlowSettings {
  taskQueue: string;
  emailVerificationTtl: number;
  emailVerificationMaxResends: number;
  stepUpTtl: number;
  stepUpMaxAttempts: number;
}

/** A workflow of this id already runs (an operation started twice). */
export class FlowAlreadyRunning extends Error {
  constructor(readonly workflowId: string) {
    super(`${workflowId} is already running`);
    this.name = 'FlowAlreadyRunning';
  }
}

/** The deletion's update was refused (erasure has begun). */
export class DeletionNotCancellable extends Error {
  constructor() {
    super('the deletion can no longer be cancelled');
    this.name = 'DeletionNotCancellable';
  }
}

const isNotFound = (err: unknown) => err instanceof WorkflowNotFoundError || (err as Error)?.name === 'WorkflowNotFoundError';

export class TemporalFlows {
  constructor(
    private readonly client: Client,
    private readonly s: FlowSettings,
  ) {}

  private attrs(userId: string, flow: string) {
    return [
      { key: UserIdAttr, value: userId },
      { key: FlowAttr, value: flow },
    ];
  }

  // ---- e-mail verification ----------------------------------------------------------------------

  /** Starts the verification flow of a pending user, or joins the running one. */
  async startEmailVerification(userId: string): Promise<void> {
    await this.client.workflow.start<typeof emailVerificationWorkflow>('emailVerificationWorkflow', {
      workflowId: workflowIds.emailVerification(userId),
      taskQueue: this.s.taskQueue,
      args: [{ userId, ttlSeconds: this.s.emailVerificationTtl, maxResends: this.s.emailVerificationMaxResends }],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      typedSearchAttributes: this.attrs(userId, 'email-verification'),
    });
  }

  /**
   * The first verification flow of a new account (the flow outbox relay's start): never a second
   * run, so a start relayed again after the first run ended (verified, expired) sends nothing.
   */
  async startFirstEmailVerification(userId: string): Promise<void> {
    try {
      await this.client.workflow.start<typeof emailVerificationWorkflow>('emailVerificationWorkflow', {
        workflowId: workflowIds.emailVerification(userId),
        taskQueue: this.s.taskQueue,
        args: [{ userId, ttlSeconds: this.s.emailVerificationTtl, maxResends: this.s.emailVerificationMaxResends }],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        typedSearchAttributes: this.attrs(userId, 'email-verification'),
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
  }

  /** A fresh code through the running flow's `resend` update (within its limit); throws when no flow runs or the limit is reached. */
  async resendVerification(userId: string, updateId: string): Promise<void> {
    await this.client.workflow.getHandle(workflowIds.emailVerification(userId)).executeUpdate(resendUpdate, { updateId });
  }

  /** Like `resendVerification`, but waits only until the update is accepted, at most `timeoutMs`. */
  async acceptResend(userId: string, updateId: string, timeoutMs: number): Promise<void> {
    const handle = this.client.workflow.getHandle(workflowIds.emailVerification(userId));
    // Bounded: with the worker down nobody accepts the update, and the caller must not hang.
    await this.client.withDeadline(Date.now() + timeoutMs, () => handle.startUpdate(resendUpdate, { updateId, waitForStage: WorkflowUpdateStage.ACCEPTED }));
  }

  /** A new code now: the running flow's resend, or a new flow when none runs (a running one keeps its limit). */
  async resendOrStartVerification(userId: string, updateId: string, opts: { acceptWithinMs?: number } = {}): Promise<void> {
    try {
      if (opts.acceptWithinMs) await this.acceptResend(userId, updateId, opts.acceptWithinMs);
      else await this.resendVerification(userId, updateId);
    } catch {
      await this.startEmailVerification(userId);
    }
  }

  /**
   * The flow outbox relay's resend (api/flow-relay.ts): the running flow's `resend` update under
   * the row's `updateId` (a repeated relay of the row is the same update), accepted within
   * `acceptWithinMs`; when no flow runs, it has finished or refuses (limit reached), a new flow is
   * started or the running one joined. Throws while Temporal or the worker does not answer, so the
   * row is tried again instead of being dropped.
   */
  async relayResendVerification(userId: string, updateId: string, acceptWithinMs: number): Promise<void> {
    try {
      await this.acceptResend(userId, updateId, acceptWithinMs);
    } catch (err) {
      if (!(isNotFound(err) || err instanceof WorkflowUpdateFailedError)) throw err;
      await this.startEmailVerification(userId);
    }
  }

  /** Tells the verification flow that the address was verified (it ends before its timer). */
  async emailVerified(userId: string): Promise<void> {
    try {
      await this.client.workflow.getHandle(workflowIds.emailVerification(userId)).signal(verifiedSignal);
    } catch (err) {
      // An invited account has no verification flow: its invitation flow waits for the same news.
      if (!isNotFound(err)) throw err;
      await this.client.workflow.getHandle(workflowIds.invitation(userId)).signal(invitationAcceptedSignal);
    }
  }

  /** One webhook delivery's flow (the relay's fan-out): one run per delivery id, never a second. */
  async startWebhookDelivery(deliveryId: string, userId: string | null, retry: { retryForSeconds: number; initialRetrySeconds: number }): Promise<void> {
    try {
      await this.client.workflow.start<typeof webhookDeliveryWorkflow>('webhookDeliveryWorkflow', {
        workflowId: workflowIds.webhookDelivery(deliveryId),
        taskQueue: this.s.taskQueue,
        args: [{ deliveryId, ...retry }],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        typedSearchAttributes: this.attrs(userId ?? SYSTEM_USER, 'webhook-delivery'),
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
  }

  /** The invitation flow of an invited account (the flow outbox relay's start): one run per account, never a second. */
  async startInvitation(userId: string, ttlSeconds: number): Promise<void> {
    try {
      await this.client.workflow.start<typeof invitationWorkflow>('invitationWorkflow', {
        workflowId: workflowIds.invitation(userId),
        taskQueue: this.s.taskQueue,
        args: [{ userId, ttlSeconds }],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        typedSearchAttributes: this.attrs(userId, 'invitation'),
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
  }

  // ---- notifications ----------------------------------------------------------------------------

  /** One e-mail to a user; `key` makes the workflow id (the same key never sends twice). */
  async notify(key: string, input: NotificationInput): Promise<void> {
    await this.client.workflow.start<typeof notificationWorkflow>('notificationWorkflow', {
      workflowId: workflowIds.notification(key),
      taskQueue: this.s.taskQueue,
      args: [input],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      typedSearchAttributes: this.attrs(input.userId, 'notification'),
    });
  }

  /** LockNotices: the account was locked until `until` (one notice per lock). */
  async accountLocked(userId: string, until: Date, level: number): Promise<void> {
    await this.notify(`account-locked:${userId}:${until.getTime()}`, {
      userId,
      template: 'account_locked',
      params: { until: until.toISOString(), level: String(level) },
    });
  }

  // ---- password reset ---------------------------------------------------------------------------

  /** A user asked for a reset: starts the flow or counts the request in the running one. */
  /** A forgot request; `requestKey` identifies it, so a repeated delivery counts once in the flow. */
  async requestPasswordReset(userId: string, requestKey: string): Promise<void> {
    await this.client.workflow.signalWithStart<typeof passwordResetWorkflow, [requestKey?: string]>('passwordResetWorkflow', {
      workflowId: workflowIds.passwordReset(userId),
      taskQueue: this.s.taskQueue,
      args: [{ userId, reason: 'user_request' }],
      signal: resetRequestedSignal,
      signalArgs: [requestKey],
      // A running flow counts the request (and applies the e-mail interval and daily cap).
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      typedSearchAttributes: this.attrs(userId, 'password-reset'),
    });
  }

  /** An administrator reset the account: a new reset flow replaces any running one. */
  async forcePasswordReset(userId: string): Promise<void> {
    await this.client.workflow.start<typeof passwordResetWorkflow>('passwordResetWorkflow', {
      workflowId: workflowIds.passwordReset(userId),
      taskQueue: this.s.taskQueue,
      args: [{ userId, reason: 'admin_reset' }],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.TERMINATE_EXISTING,
      typedSearchAttributes: this.attrs(userId, 'password-reset'),
    });
  }

  /** The password was reset: the running flow e-mails "password changed"; false when no flow runs. */
  async passwordResetCompleted(userId: string): Promise<boolean> {
    try {
      await this.client.workflow.getHandle(workflowIds.passwordReset(userId)).signal(resetCompletedSignal);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  // ---- step-up ----------------------------------------------------------------------------------

  /** StepUpFlows: starts `step-up:<sessionId>` or hands the running flow a newer challenge. */
  async challenge(input: { sessionId: string; userId: string; challengeId: string; method: 'email' | 'totp' }): Promise<void> {
    const { sessionId, userId, challengeId, method } = input;
    await this.client.workflow.signalWithStart<typeof stepUpWorkflow, [{ challengeId: string; method: 'email' | 'totp' }]>('stepUpWorkflow', {
      workflowId: workflowIds.stepUp(sessionId),
      taskQueue: this.s.taskQueue,
      args: [{ sessionId, userId, ttlSeconds: this.s.stepUpTtl, maxAttempts: this.s.stepUpMaxAttempts }],
      signal: challengeSignal,
      signalArgs: [{ challengeId, method }],
      // A running flow of this session takes the new challenge (superseding its current one).
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      typedSearchAttributes: this.attrs(userId, 'step-up'),
    });
  }

  /** StepUpFlows: e-mails the user that a session was ended. */
  async notifySessionRevoked(input: { userId: string; sessionId: string; reason: string }): Promise<void> {
    await this.notify(`session-revoked:${input.sessionId}`, { userId: input.userId, template: 'session_revoked', params: { reason: input.reason } });
  }

  /** StepUpFlows: tells a running step-up flow that its session ended; a flow that is not running is fine. */
  async cancel(sessionId: string, reason: string): Promise<void> {
    try {
      await this.client.workflow.getHandle(workflowIds.stepUp(sessionId)).signal(cancelSignal, { reason });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /** Hands a checked code's verdict (and the new token's id and hash) to the step-up flow, which decides. */
  async submitStepUp(
    sessionId: string,
    input: { challengeId: string; ok: boolean; next?: { id: string; hash: string } },
    updateId: string,
  ): Promise<StepUpResult> {
    return this.client.workflow.getHandle(workflowIds.stepUp(sessionId)).executeUpdate(submitUpdate, { args: [input], updateId });
  }

  // ---- account deletion -------------------------------------------------------------------------

  /** DeletionFlows: starts the grace timer; an orphaned run of a failed commit is replaced. */
  async startDeletion(input: { userId: string; dueAt: string; requestedBy: 'self' | 'admin' }): Promise<void> {
    await this.client.workflow.start<typeof accountDeletionWorkflow>('accountDeletionWorkflow', {
      workflowId: workflowIds.accountDeletion(input.userId),
      taskQueue: this.s.taskQueue,
      args: [input],
      // The row was not pending deletion (the caller's transition checked), so a run still open
      // under this id is an orphan of a failed commit: replace it.
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.TERMINATE_EXISTING,
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      typedSearchAttributes: this.attrs(input.userId, 'account-deletion'),
    });
  }

  /**
   * DeletionFlows: cancels through the workflow's update (its handler restores the account).
   * Returns false when no workflow exists; throws DeletionNotCancellable once erasure has begun.
   */
  async cancelDeletion(userId: string, input: { actorId: string | null; requestId: string | null; restoreTo?: 'active' }, updateId: string): Promise<boolean> {
    try {
      await this.client.workflow.getHandle(workflowIds.accountDeletion(userId)).executeUpdate(cancelDeletionUpdate, { args: [input], updateId });
      return true;
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) throw new DeletionNotCancellable();
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** DeletionFlows: the deletion workflow's state, or null when Temporal does not answer. */
  async deletionState(userId: string): Promise<AccountDeletionState | null> {
    try {
      return await this.client.workflow.getHandle(workflowIds.accountDeletion(userId)).query(deletionStateQuery);
    } catch {
      return null;
    }
  }

  // ---- operations -------------------------------------------------------------------------------

  /** An on-demand Vault operation; one at a time of each kind (FlowAlreadyRunning otherwise). */
  async startKeyRotation(input: Parameters<typeof keyRotationWorkflow>[0] & { actorId: string }): Promise<{ workflowId: string; runId: string }> {
    return this.startOperation<typeof keyRotationWorkflow>('keyRotationWorkflow', workflowIds.keyRotation('on-demand'), 'key-rotation', input);
  }

  async startBackup(input: Parameters<typeof backupWorkflow>[0] & { actorId: string }): Promise<{ workflowId: string; runId: string }> {
    return this.startOperation<typeof backupWorkflow>('backupWorkflow', workflowIds.backup('on-demand'), 'backup', input);
  }

  async startRestoreDrill(
    input: NonNullable<Parameters<typeof restoreDrillWorkflow>[0]> & { actorId: string },
  ): Promise<{ workflowId: string; runId: string }> {
    return this.startOperation<typeof restoreDrillWorkflow>('restoreDrillWorkflow', workflowIds.restoreDrill('on-demand'), 'restore-drill', input);
  }

  private async startOperation<W extends (input: never) => Promise<unknown>>(
    type: string,
    workflowId: string,
    flow: string,
    input: { actorId: string } & Parameters<W>[0],
  ) {
    const actorId = (input as { actorId: string }).actorId;
    try {
      const h = await this.client.workflow.start(type, {
        workflowId,
        taskQueue: this.s.taskQueue,
        args: [input],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        typedSearchAttributes: this.attrs(actorId, flow),
      });
      return { workflowId, runId: h.firstExecutionRunId };
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) throw new FlowAlreadyRunning(workflowId);
      throw err;
    }
  }

  /** One run of an operation: Temporal status, result or root failure text, and a rotation's phase. */
  async operationRun(workflowId: string): Promise<{ runId: string; status: string; result?: unknown; failure?: string; state?: unknown } | null> {
    const handle = this.client.workflow.getHandle(workflowId);
    let desc;
    try {
      desc = await handle.describe();
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
    const out: { runId: string; status: string; result?: unknown; failure?: string; state?: unknown } = { runId: desc.runId, status: desc.status.name };
    if (desc.status.name === 'COMPLETED') {
      out.result = await handle.result();
    } else if (desc.status.name === 'FAILED') {
      try {
        await handle.result();
      } catch (err) {
        out.failure = rootMessage(err);
      }
    } else if (desc.status.name === 'RUNNING' && workflowId.startsWith('key-rotation:')) {
      out.state = await handle.query('keyRotationState').catch(() => undefined);
    }
    return out;
  }
}
