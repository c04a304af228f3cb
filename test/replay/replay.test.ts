/**
 * Replay tests: every recorded history (test/replay/histories/<type>/<scenario>.json, written by
 * test/replay/record.ts) must replay against the current workflow code with the production data
 * converter (the encrypting codec and the failure converter), from a prebuilt bundle. A change to
 * a workflow's commands that is not behind `patched()` fails here before it can break running
 * executions. Needs no stack and no Vault: the histories are encrypted with the public fixture key.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DefaultLogger, Runtime, Worker, bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { isEncrypted } from '../../platform/temporal/payload-codec';
import { dataConverterWith, FAILURE_CONVERTER_PATH } from '../../platform/temporal/data-converter';
import { FIXTURE_KID_PREFIX } from '../../platform/temporal/codec-keys';
import { checkHistoryContent } from './content-check';
import { collectPayloads, fixtureCodec, fixtureKeySet, HISTORIES_DIR, historyFiles, historyFromObject, loadRecorded } from './histories';
import { workflowTypes } from './record';

const files = historyFiles();
const bundles = new Map<string, WorkflowBundle>();

async function bundle(workflowsPath: string): Promise<WorkflowBundle> {
  if (!bundles.has(workflowsPath)) {
    bundles.set(workflowsPath, await bundleWorkflowCode({ workflowsPath, failureConverterPath: FAILURE_CONVERTER_PATH, logger: new DefaultLogger('WARN') }));
  }
  return bundles.get(workflowsPath)!;
}

async function replay(workflowsPath: string, file: string) {
  const rec = loadRecorded(file);
  await Worker.runReplayHistory(
    { workflowBundle: await bundle(workflowsPath), dataConverter: dataConverterWith(fixtureCodec()) },
    historyFromObject(rec.history),
    rec.workflowId,
  );
}

const PRODUCTION = require.resolve('../../workflows');

beforeAll(() => {
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    /* already installed by another test file in this process */
  }
});

describe('recorded workflow histories', () => {
  test('there is at least one recorded history for every workflow type the worker runs', () => {
    const recorded = new Set(files.map((f) => loadRecorded(f).workflowType));
    const missing = workflowTypes().filter((t) => !recorded.has(t));
    // Record one with: npx tsx test/replay/record.ts <workflowType> (after adding a scenario).
    expect(missing).toEqual([]);
  });

  test.each(files)(
    '%s replays against the current workflow code',
    async (file) => {
      await replay(PRODUCTION, file);
    },
    120000,
  );

  test.each(files)('%s holds ciphertext only: no address, token, code or password, even decrypted', async (file) => {
    const rec = loadRecorded(file);
    expect(await checkHistoryContent(rec)).toEqual([]);
    // Inputs and results really are encrypted (with the fixture key, never a service key).
    const encrypted = collectPayloads(rec.history).filter(isEncrypted);
    expect(encrypted.length).toBeGreaterThan(0);
    for (const p of encrypted) expect(Buffer.from(p.metadata!['encryption-key-id']).toString()).toMatch(new RegExp(`^${FIXTURE_KID_PREFIX}`));
  });

  test('the histories really are encrypted: without the codec the workflow cannot even read its input', async () => {
    const rec = loadRecorded('emailVerificationWorkflow/verified.json');
    const err = await Worker.runReplayHistory({ workflowBundle: await bundle(PRODUCTION) }, historyFromObject(rec.history), rec.workflowId).then(
      () => undefined,
      (e) => e,
    );
    // "Unknown encoding: binary/encrypted" (the failure text itself is an encoded attribute here).
    expect(String(err?.message)).toMatch(/Unknown encoding|VW5rbm93biBlbmNvZGluZz/);
  }, 120000);

  test('the fixture key is a fixture: its key id is one the services refuse', () => {
    const set = fixtureKeySet();
    expect(Object.keys(set.keys).every((k) => k.startsWith(FIXTURE_KID_PREFIX))).toBe(true);
    expect(readFileSync(join(HISTORIES_DIR, 'fixture-codec-key.json'), 'utf8')).toMatch(/PUBLIC TEST KEY/);
  });
});

describe('changing a workflow safely', () => {
  const history = 'emailVerificationWorkflow/verified.json';

  test('a changed command sequence without a patch fails replay with a DeterminismViolationError', async () => {
    const err = await replay(require.resolve('./fixtures/changed-email-verification'), history).then(
      () => undefined,
      (e) => e,
    );
    expect(err).toBeInstanceOf(DeterminismViolationError);
  }, 120000);

  test('the same change behind patched() replays the recorded history', async () => {
    await replay(require.resolve('./fixtures/patched-email-verification'), history);
  }, 120000);
});
