/**
 * Re-records the replay histories:
 *
 *   npx tsx test/replay/record.ts [workflowType|workflowType/scenario ...]
 *
 * By default it boots its own throwaway stack (the launcher `npm run dev` and the tests use, data
 * in .data/replay-record, ports at STACK_PORT_OFFSET, default 20900) with the test settings of
 * test/env/*.json, whose short timers the expiry scenarios need, records, and stops it. With
 * AUTHFLOW_DATA_DIR=<data dir> it uses that running stack instead (e.g. .data/dev for `npm run
 * dev`, or a test stack's directory); scenarios that wait for a timer then take as long as the
 * stack's timers.
 *
 * Local stacks only: it reads the stack's codec key with the Vault root token kept in the data
 * directory, decrypts each recorded history with it and re-encrypts it with the public fixture key
 * (test/replay/histories/fixture-codec-key.json), so the files never hold a real key's ciphertext
 * and the replay test needs no Vault. Without arguments it records every scenario in scenarios.ts
 * and lists workflow types that have none.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Client } from '@temporalio/client';
import { portsFor, ROOT, Stack, StackInfo } from '../../infra/stack/stack';
import { fixtureCodec, HISTORIES_DIR, historyToObject, mapPayloads, RecordedHistory, reencrypt } from './histories';
import { checkHistoryContent } from './content-check';
import { Scenario, ScenarioContext, scenarios } from './scenarios';
import { stackClients } from './stack-codec';
import { webhookTlsEnv } from '../helpers/webhook-tls';

const say = (m: string) => process.stderr.write(`[record] ${m}\n`);

export function workflowTypes(): string[] {
  // Workflow functions are the exports of workflows/index.ts whose name ends in "Workflow".
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require('../../workflows') as Record<string, unknown>;
  return Object.entries(mod)
    .filter(([k, v]) => typeof v === 'function' && /Workflow$/.test(k))
    .map(([k]) => k)
    .sort();
}

/** The test stack's service settings (as test/global-setup.ts builds them): short timers. */
function testServiceEnv(): Record<string, string> {
  const dir = join(ROOT, 'test', 'env');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, string>);
  return { ARGON2_MEMORY_KIB: '19456', EMAIL_VERIFICATION_TTL: '3600', ...Object.assign({}, ...files) };
}

/** Runs `fn` against AUTHFLOW_DATA_DIR's running stack, or against a stack of its own. */
async function withStack(fn: (stackFile: string) => Promise<void>): Promise<void> {
  if (process.env.AUTHFLOW_DATA_DIR) return fn(join(resolve(process.env.AUTHFLOW_DATA_DIR), 'stack.json'));
  const dataDir = join(ROOT, '.data', 'replay-record');
  rmSync(dataDir, { recursive: true, force: true });
  process.env.NODE_ENV = 'test';
  const stack = new Stack({
    dataDir,
    ports: portsFor(Number(process.env.STACK_PORT_OFFSET ?? 20900)),
    services: true,
    logLevel: 'info',
    serviceEnv: { ...testServiceEnv(), ...webhookTlsEnv(dataDir) },
    log: (m) => say(`stack: ${m}`),
  });
  await stack.start();
  try {
    await fn(join(dataDir, 'stack.json'));
  } finally {
    await stack.stop();
  }
}

async function main() {
  let failed = false;
  await withStack(async (stackFile) => {
    failed = !(await recordAll(stackFile));
  });
  process.exit(failed ? 1 : 0);
}

async function recordAll(stackFile: string): Promise<boolean> {
  process.env.AUTHFLOW_STACK_FILE = stackFile;
  const info = JSON.parse(readFileSync(stackFile, 'utf8')) as StackInfo;
  const { client, raw, codec, close } = await stackClients(info);
  const toFixture = reencrypt(codec, fixtureCodec());
  const ctx: ScenarioContext = {
    client,
    taskQueue: info.serviceEnv.TEMPORAL_TASK_QUEUE ?? 'authflow',
    env: info.serviceEnv,
    async findWorkflow(query, timeoutMs = 15000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        for await (const wf of client.workflow.list({ query })) return wf.workflowId;
        await new Promise((r) => setTimeout(r, 300));
      }
      throw new Error(`no workflow matches ${query}`);
    },
  };

  const wanted = process.argv.slice(2);
  const selected = scenarios.filter((s) => wanted.length === 0 || wanted.includes(s.workflowType) || wanted.includes(`${s.workflowType}/${s.name}`));
  if (selected.length === 0) throw new Error(`no scenario matches ${wanted.join(' ')}`);
  const failures: string[] = [];
  for (const s of selected) {
    const why = s.unsupported?.(ctx);
    if (why) {
      say(`skipped ${s.workflowType}/${s.name}: ${why}`);
      continue;
    }
    try {
      await record(s, ctx, raw, toFixture);
    } catch (err) {
      failures.push(`${s.workflowType}/${s.name}: ${(err as Error).message}`);
      say(`FAILED ${s.workflowType}/${s.name}: ${(err as Error).stack}`);
    }
  }
  const covered = new Set(scenarios.map((s) => s.workflowType));
  const missing = workflowTypes().filter((t) => !covered.has(t));
  if (missing.length) say(`workflow types without a scenario (add one to test/replay/scenarios.ts): ${missing.join(', ')}`);
  await close();
  if (failures.length) {
    say(`${failures.length} scenario(s) failed:\n  ${failures.join('\n  ')}`);
    return false;
  }
  say(`recorded ${selected.length} history file(s) under ${HISTORIES_DIR}`);
  return true;
}

async function record(s: Scenario, ctx: ScenarioContext, raw: Client, toFixture: ReturnType<typeof reencrypt>) {
  say(`${s.workflowType}/${s.name}: ${s.description}`);
  const { workflowId } = await s.run(ctx);
  const handle = ctx.client.workflow.getHandle(workflowId);
  const desc = await handle.describe();
  if (desc.type !== s.workflowType) throw new Error(`${workflowId} is a ${desc.type}, expected ${s.workflowType}`);
  // Wait for the run to close: a closed history is the one every future version must replay.
  await Promise.race([
    handle.result().catch(() => undefined),
    new Promise((_, rej) => setTimeout(() => rej(new Error(`${workflowId} did not close within 90 s`)), 90000).unref()),
  ]);
  const history = historyToObject(await raw.workflow.getHandle(workflowId, desc.runId).fetchHistory());
  await mapPayloads(history, toFixture);
  const file: RecordedHistory = {
    workflowType: s.workflowType,
    scenario: s.name,
    description: s.description,
    recordedAt: new Date().toISOString(),
    workflowId,
    history,
  };
  const problems = await checkHistoryContent(file);
  if (problems.length) throw new Error(`history would leak: ${problems.join('; ')}`);
  const dir = join(HISTORIES_DIR, s.workflowType);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${s.name}.json`), `${JSON.stringify(file, null, 1)}\n`);
  say(`  -> ${s.workflowType}/${s.name}.json (${(history.events as unknown[]).length} events)`);
}

if (require.main === module) {
  main().catch((err) => {
    say(String((err as Error).stack ?? err));
    process.exit(1);
  });
}
