/**
 * What the e-mailing activities share: the outbox idempotency key of the running activity (one
 * e-mail per workflow run + activity, however often Temporal retries it), the domain outbox built
 * on the worker's mailer (domain/outbox.ts: send once per key, the Message-ID), and the mapping of
 * its errors to the failure types of workflows/options.ts.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { MailRejectedError, Outbox } from '../domain/outbox';
import { AppError } from '../platform/errors';
import type { ActivityDeps } from './deps';

/** `<workflow id>/<run id>/<activity id>` of the running activity. */
export function idempotencyKey(): string {
  const info = Context.current().info;
  const wf = info.workflowExecution;
  return `${wf?.workflowId ?? 'standalone'}/${wf?.runId ?? info.activityId}/${info.activityId}`;
}

export function createOutbox(deps: Pick<ActivityDeps, 'mailer' | 'logger'>): Outbox {
  return new Outbox(deps.mailer, deps.logger);
}

/** A missing recipient is `NotFound` and a permanent SMTP rejection `MailRejected`, both for
 * good; anything else is thrown as it is (retried). */
export function mailFailure(err: unknown): never {
  if (err instanceof MailRejectedError) throw ApplicationFailure.nonRetryable(err.message, 'MailRejected');
  if (err instanceof AppError && err.code === 'not_found') throw ApplicationFailure.nonRetryable(err.message, 'NotFound');
  throw err;
}
