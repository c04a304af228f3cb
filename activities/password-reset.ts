/**
 * Activities of the password-reset flow: issue a reset token and e-mail it, within the anti-spam
 * limits (domain/accounts/password-reset.ts, ResetTokenMailer). What returns to the workflow is
 * whether it went out and until when the token lives, never the token.
 */
import { ResetIssueResult, ResetTokenMailer } from '../domain/accounts/password-reset';
import type { ActivityDeps } from './deps';
import { createOutbox, idempotencyKey, mailFailure } from './outbox';

export type { ResetIssueResult };

export function createPasswordResetActivities(deps: ActivityDeps) {
  const { config } = deps;
  const mailer = new ResetTokenMailer(
    deps.sequelize,
    createOutbox(deps),
    {
      ttl: config.PASSWORD_RESET_TTL,
      interval: config.PASSWORD_RESET_EMAIL_INTERVAL,
      perDay: config.PASSWORD_RESET_EMAILS_PER_DAY,
      resetLink: config.PASSWORD_RESET_LINK,
    },
    deps.logger,
  );

  return {
    /** Issues a reset token and e-mails it, unless the user may not get one or the anti-spam rules say no. */
    async issueResetToken(input: { userId: string; flowId: string; force: boolean; sequence: number }): Promise<ResetIssueResult> {
      return mailer.issue(idempotencyKey(), input).catch(mailFailure);
    },
  };
}
