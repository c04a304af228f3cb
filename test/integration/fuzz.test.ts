/** The fuzzing part of the reliability suite (reliability/fuzz.ts, issue 17 1a), short and seeded,
 * against the test stack's API: schemathesis over /openapi.json with every check, throwaway
 * credentials. `npm run reliability` runs it longer (50 cases per operation and phase, the stateful
 * phase, every operation); here the operations that would start backups, drills and key rotations
 * on the shared stack are left out. */
import type { Client as PgClient } from 'pg';
import { runFuzz, SHARED_STACK_EXCLUDES } from '../../reliability/fuzz';
import { pg, stackInfo } from '../helpers/stack';

jest.setTimeout(16 * 60_000);

let db: PgClient;
beforeAll(async () => {
  db = await pg();
});
afterAll(async () => {
  await db?.end();
});

test('schemathesis, seeded: every other operation answered, no server error, nothing outside the document', async () => {
  const r = await runFuzz(stackInfo(), stackInfo().urls.api, db, {
    seed: 4242,
    maxExamples: 8,
    phases: ['examples', 'coverage', 'fuzzing'],
    workers: 1,
    exclude: SHARED_STACK_EXCLUDES,
    spendSessions: 16,
    victims: 6,
  });
  const found = { serverErrors: r.serverErrors, schemaViolations: r.schemaViolations, otherFindings: r.otherFindings };
  if (r.serverErrors.length + r.schemaViolations.length + r.otherFindings.length) console.error(`schemathesis output (${r.reportDir}):\n${r.tail}`);
  expect(found).toEqual({ serverErrors: [], schemaViolations: [], otherFindings: [] });
  expect(r.operations.tested).toBe(r.operations.total - SHARED_STACK_EXCLUDES.length);
  expect(r.cases).toBeGreaterThan(500);
});
