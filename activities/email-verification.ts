/**
 * Activities of the e-mail verification flow: issue the e-mailed single-use code (only its hash is
 * stored; ids and times return to the workflow, never the code) and expire a flow's codes when it
 * ends. The rules are domain/one-time-tokens.ts.
 */
import type { NotificationTemplate } from '../domain/mail-templates';
import { expireFlowTokens, OneTimeCodes, TokenPurpose } from '../domain/one-time-tokens';
import type { ActivityDeps } from './deps';
import { createOutbox, idempotencyKey, mailFailure } from './outbox';

export function createEmailVerificationActivities(deps: ActivityDeps) {
  const codes = new OneTimeCodes(deps.sequelize, createOutbox(deps), { verifyLink: deps.config.EMAIL_VERIFY_LINK });
  return {
    /**
     * Generates a single-use code, stores only its hash (superseding earlier codes of the same
     * purpose), and e-mails it. Returns ids and times only: the code never reaches history.
     */
    async issueOneTimeCode(input: {
      userId: string;
      purpose: TokenPurpose;
      flowId: string;
      ttlSeconds: number;
      template: NotificationTemplate;
      sequence: number;
      params?: Record<string, string>;
    }): Promise<{ tokenId: string; expiresAt: string; sent: boolean }> {
      return codes.issue(idempotencyKey(), input).catch(mailFailure);
    },

    /** Marks a flow's unused codes as superseded when the flow ends (expired or cancelled). */
    async expireOneTimeCodes(input: { userId: string; purpose: TokenPurpose; flowId: string }): Promise<number> {
      return expireFlowTokens(input.userId, input.purpose, input.flowId);
    },
  };
}
