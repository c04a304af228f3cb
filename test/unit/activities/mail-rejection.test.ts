/** A permanent SMTP rejection fails the mail activity for good (no hour of retries); a transient
 * failure stays retryable. Postgres is stubbed: only the activity's error classification is tested. */
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createNotificationActivities } from '../../../activities/notification';
import { Outbox } from '../../../domain/outbox';
import { User } from '../../../platform/db/models';
import { DependencyError } from '../../../platform/errors';
import { createLogger } from '../../../platform/logger';

function activitiesWith(sendError: unknown) {
  const mailer = {
    send: async () => {
      throw sendError;
    },
  };
  return createNotificationActivities({ mailer, config: {}, logger: createLogger('silent', 'test') } as never);
}

beforeEach(() => {
  jest.spyOn(Outbox.prototype, 'claim').mockResolvedValue({ row: { status: 'pending', update: async () => undefined } as never, created: true });
  jest.spyOn(User, 'findByPk').mockResolvedValue({ id: 'u1', email: 'someone@example.test', name: 'S', status: 'active' } as never);
});
afterEach(() => jest.restoreAllMocks());

test('a 5xx rejection is a non-retryable MailRejected failure whose message does not quote the address', async () => {
  const rejection = Object.assign(new Error('550 5.1.1 <someone@example.test>: Recipient address rejected'), { responseCode: 550 });
  const err: any = await new MockActivityEnvironment()
    .run(activitiesWith(rejection).sendNotification, { userId: 'u1', template: 'generic' as const })
    .catch((e: any) => e);
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect(err.nonRetryable).toBe(true);
  expect(err.type).toBe('MailRejected');
  expect(err.message).not.toContain('someone@example.test');
});

test('an unreachable SMTP server stays retryable', async () => {
  const err = await new MockActivityEnvironment()
    .run(activitiesWith(new DependencyError('smtp')).sendNotification, { userId: 'u1', template: 'generic' as const })
    .catch((e: any) => e);
  expect(err).toBeInstanceOf(DependencyError);
});
