/** The races of the reliability suite (reliability/races.ts, issue 17 1d), one round each against
 * the test stack's API: one secret spent by many parallel requests at once. `npm run reliability`
 * runs the same functions over two API instances for 50 rounds (5 with --quick). */
import type { Client as PgClient } from 'pg';
import {
  deletionRace,
  deletionUser,
  mfaRace,
  mfaUser,
  raceEnv,
  RaceEnv,
  refreshRace,
  resetRace,
  seedUser,
  stepUpRace,
  stepUpUser,
} from '../../reliability/races';
import { pg, stackInfo } from '../helpers/stack';

jest.setTimeout(60_000);

let db: PgClient;
let env: RaceEnv;
beforeAll(async () => {
  db = await pg();
  env = await raceEnv(stackInfo(), [stackInfo().urls.api], db);
});
afterAll(async () => {
  await env?.close();
  await db?.end();
});

describe('one secret, many parallel requests', () => {
  test('one refresh token 12 times at once: one successor, the reuse ends the session', async () => {
    expect((await refreshRace(env, await seedUser(env, 'refresh'), 12)).problems).toEqual([]);
  });

  test('one reset token 12 times at once with different passwords: one wins, its password is the one stored, the sessions ended', async () => {
    expect((await resetRace(env, { ...(await seedUser(env, 'reset')), round: 0 }, 12)).problems).toEqual([]);
  });

  // 4, not 8: this stack locks an account after LOCKOUT_THRESHOLD = 5 failed codes (test/env/lifecycle.json),
  // and the losers' replayed codes are failures that may reach it before the winner gives its slot back.
  test('one mfa_token 4 times at once with the valid code: one token pair, the code spent', async () => {
    expect((await mfaRace(env, await mfaUser(env), 4)).problems).toEqual([]);
  });

  test('one step-up verification 12 times at once with the e-mailed code: one success, one session', async () => {
    expect((await stepUpRace(env, await stepUpUser(env), 12)).problems).toEqual([]);
  });

  test('reactivation 8 times at once just before the end of the grace period: wholly active or wholly erased', async () => {
    const r = await deletionRace(env, await deletionUser(env), 8, -300);
    expect(r.problems).toEqual([]);
    expect(['active', 'deleted']).toContain(r.outcome);
  });
});
