/**
 * Activities of the step-up flow: e-mail the challenge's code (domain/sessions/step-up.ts),
 * and settle the challenge (domain/sessions/devices.ts): complete it (rotating the session's
 * refresh token to the one the API prepared) or fail it.
 */
import { ApplicationFailure } from '@temporalio/common';
import { completeStepUp, failStepUp } from '../domain/sessions/devices';
import { sessionLifetimes } from '../domain/sessions/sessions';
import { StepUpFailure } from '../domain/sessions/step-up';
import { ChallengeNotCommittedError, StepUpCodes } from '../domain/sessions/step-up';
import type { ActivityDeps } from './deps';
import { createOutbox, idempotencyKey, mailFailure } from './outbox';

export function createStepUpActivities(deps: ActivityDeps) {
  const { sequelize, config } = deps;
  const codes = new StepUpCodes(sequelize, createOutbox(deps));

  return {
    /**
     * Generates the e-mailed code of a step-up challenge (8 digits), stores its hash and e-mails
     * it. A challenge row that is not there yet (the refresh transaction commits just after
     * starting the flow) is retried; one that is no longer pending gets no code.
     */
    async issueStepUpCode(input: { userId: string; sessionId: string; challengeId: string }): Promise<{ sent: boolean }> {
      try {
        return await codes.issue(idempotencyKey(), input);
      } catch (err) {
        if (err instanceof ChallengeNotCommittedError) throw ApplicationFailure.retryable(err.message, 'ChallengeMissing');
        mailFailure(err);
      }
    },

    async completeStepUp(input: { challengeId: string; newTokenId: string; newTokenHash: string }) {
      if (!/^[0-9a-f]{64}$/.test(input.newTokenHash)) throw ApplicationFailure.nonRetryable('bad token hash', 'InvalidInput');
      return completeStepUp(sequelize, input, sessionLifetimes(config));
    },

    async failStepUp(input: { challengeId: string; reason: StepUpFailure }) {
      return failStepUp(sequelize, input);
    },
  };
}
