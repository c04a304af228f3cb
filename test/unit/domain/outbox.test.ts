/** The outbox Message-ID: the same for every attempt of one e-mail, different for another. */
import { outboxMessageId } from '../../../domain/outbox';

test('a retried e-mail carries the same Message-ID, another e-mail a different one', () => {
  const key = 'email-verification:u1/run-1/1';
  expect(outboxMessageId(key)).toBe(outboxMessageId(key));
  expect(outboxMessageId(key)).toMatch(/^<[0-9a-f]{32}@authflow>$/);
  expect(outboxMessageId('email-verification:u1/run-1/2')).not.toBe(outboxMessageId(key));
});
