/**
 * `npm run reliability` (issue 17): starts its own stack on shifted ports (lib/stack.ts) with a
 * second API instance, then runs the parts in order — fuzzing from the OpenAPI document, the fault
 * matrix under steady mixed load, the soak, the races — and appends one dated table to
 * RELIABILITY.md (like `npm run bench` appends to bench/RESULTS.md). Bounded: about 30 minutes on
 * a 2-core machine; `--quick` is a smoke run of a few minutes that is not recorded.
 *
 *   npm run reliability                       full run, appended to RELIABILITY.md
 *   npm run reliability -- --quick            short sizes, printed only
 *   npm run reliability -- --only=faults,soak some parts (fuzz, faults, soak, races)
 *   npm run reliability -- --no-record | --results=FILE
 */
import { execSync } from 'node:child_process';
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client as PgClient } from 'pg';
import { hashPassword } from '../crypto/argon2';
import { argon2Params, parseConfig } from '../platform/config';
import { ROOT } from '../infra/stack/stack';
import { BENCH_PASSWORD, Seeder } from '../bench/lib/seed';
import type { PartResult, ReliabilityContext, Row } from './lib/context';
import { LoadPlan, MixedLoad, Op, OPS } from './lib/load';
import { MailCollector } from './lib/mail';
import { startReliabilityStack } from './lib/stack';
import { account, drainMail, faultRows, faults, runMatrix, startSecondApi, waitHealthy, workflowHealth } from './faults';
import { soakPart } from './soak';

type Part = 'fuzz' | 'faults' | 'soak' | 'races';
const PARTS: Part[] = ['fuzz', 'faults', 'soak', 'races'];

const t0 = Date.now();
const log = (m: string) => process.stderr.write(`[reliability ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${m}\n`);

function parseArgs(argv: string[]) {
  const opts = { quick: false, parts: new Set<Part>(PARTS), results: join(ROOT, 'RELIABILITY.md') as string | undefined };
  let resultsGiven = false;
  for (const a of argv) {
    if (a === '--quick') opts.quick = true;
    else if (a === '--no-record') opts.results = undefined;
    else if (a.startsWith('--results=')) {
      opts.results = a.slice('--results='.length);
      resultsGiven = true;
    } else if (a.startsWith('--only=')) {
      const list = a.slice('--only='.length).split(',') as Part[];
      for (const p of list) if (!PARTS.includes(p)) throw new Error(`unknown part ${p}; parts: ${PARTS.join(', ')}`);
      opts.parts = new Set(list);
    } else if (a === '--help' || a === '-h') {
      process.stdout.write(
        'npm run reliability -- [--quick] [--only=fuzz,faults,soak,races] [--no-record | --results=FILE]\n' +
          'Starts its own stack (RELIABILITY_PORT_OFFSET, default 30000; RELIABILITY_DATA_DIR, default .data/reliability).\n',
      );
      process.exit(0);
    } else throw new Error(`unknown option ${a} (--help lists them)`);
  }
  if (opts.quick && !resultsGiven) opts.results = undefined;
  return opts;
}

async function connectDb(url: string): Promise<PgClient> {
  const c = new PgClient({ connectionString: url, application_name: 'authflow-reliability' });
  // A restart of Postgres (a fault of the matrix) ends this connection; the runner reconnects.
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

/** Unpaced loops for a short while: the completions per second of each operation are the capacity. */
async function measureCapacity(ctx: ReliabilityContext, load: MixedLoad, plan: LoadPlan): Promise<Record<Op, number>> {
  const warm = ctx.quick ? 3000 : 10000;
  const measure = ctx.quick ? 5000 : 20000;
  const unpaced = Object.fromEntries(OPS.map((op) => [op, 1e9])) as Record<Op, number>;
  load.start({ ...plan, rate: unpaced });
  await sleep(warm);
  const before = { ...load.done };
  await sleep(measure);
  const cap = Object.fromEntries(OPS.map((op) => [op, (load.done[op] - before[op]) / (measure / 1000)])) as Record<Op, number>;
  const refused = new Map<string, number>();
  for (const x of load.samples)
    if (x.status < 200 || x.status >= 300)
      refused.set(`${x.op} ${x.status}${x.code ? ` ${x.code}` : ''}`, (refused.get(`${x.op} ${x.status}${x.code ? ` ${x.code}` : ''}`) ?? 0) + 1);
  if (refused.size) ctx.log(`answers other than success while measuring: ${[...refused].map(([k, n]) => `${n} × ${k}`).join(', ')}`);
  ctx.log(`capacity (unpaced, ${OPS.map((op) => `${plan.loops[op]} ${op}`).join(', ')} loops): ${OPS.map((op) => `${op} ${cap[op].toFixed(1)}/s`).join(', ')}`);
  const none = OPS.filter((op) => plan.loops[op] > 0 && cap[op] === 0);
  // A mix with an operation that never succeeds would measure nothing about it; stop here.
  if (none.length) throw new Error(`no ${none.join(', ')} succeeded while measuring capacity (see the answers above)`);
  return cap;
}

function render(rows: Row[], header: string[], details: string[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    ...header,
    '',
    '| part | measure | figure | target | result |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${esc(r.part)} | ${esc(r.measure)} | ${esc(r.figure)} | ${esc(r.target)} | ${r.verdict === 'FAIL' ? '**FAIL**' : r.verdict} |`),
    '',
    '<details><summary>How it was counted</summary>',
    '',
    ...details.map((d) => `- ${d}`),
    '',
    '</details>',
    '',
  ].join('\n');
}

/** The commit measured, taken at the start (a commit made during the run is not what ran). */
function measuredCommit(): string {
  try {
    const head = execSync('git rev-parse --short HEAD', { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execSync('git status --porcelain --untracked-files=no', { cwd: ROOT, encoding: 'utf8' }).trim();
    return dirty ? `${head} with uncommitted changes` : head;
  } catch {
    return 'unknown';
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const commit = measuredCommit();
  log(`starting the reliability stack${opts.quick ? ' (quick run)' : ''}`);
  const { stack, info } = await startReliabilityStack(log);
  // Ctrl-C or a timeout's SIGTERM stops the stack (the processes a fault restarted included).
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => {
      log(`${sig}: stopping the reliability stack`);
      void stack.stop().finally(() => process.exit(130));
    });
  const rows: Row[] = [];
  const details: string[] = [];
  let db = await connectDb(info.pgSuperuserUrl.replace(/\/postgres$/, '/authflow'));
  const ctx: ReliabilityContext = { info, apis: [info.urls.api], db, quick: opts.quick, log };
  const record = (r: PartResult) => {
    rows.push(...r.rows);
    details.push(...r.details);
    for (const row of r.rows) log(`${row.verdict}: ${row.part}: ${row.measure}: ${row.figure}`);
  };
  const guard = async (part: Part, fn: () => Promise<PartResult>) => {
    if (!opts.parts.has(part)) return;
    log(`── ${part}`);
    try {
      record(await fn());
    } catch (err) {
      log(`${part} failed: ${(err as Error).stack}`);
      rows.push({ part, measure: 'the part itself', figure: `failed: ${(err as Error).message.split('\n')[0]}`, target: 'runs', verdict: 'FAIL' });
    }
  };
  try {
    ctx.apis.push(await startSecondApi());
    log(`API instances: ${ctx.apis.join(', ')}`);

    // First, on a quiet stack: the fuzzer's throwaway accounts and tokens are its own.
    await guard('fuzz', async () => (await import('./fuzz.js')).fuzzPart(ctx));

    if (opts.parts.has('faults') || opts.parts.has('soak')) {
      const config = parseConfig({ ...info.serviceEnv, VAULT_ROLE_ID: info.roleIds.api, VAULT_SECRET_ID_FILE: info.secretIdFiles.api });
      const users = opts.quick ? 2000 : 20000;
      const seeder = new Seeder(db, await hashPassword(BENCH_PASSWORD, argon2Params(config)), 1, log);
      log(`seeding ${users} verified users`);
      await seeder.growTo(users);
      let serial = 0;
      const load = new MixedLoad({
        apis: ctx.apis,
        userEmail: (n) => seeder.email(n),
        users,
        password: BENCH_PASSWORD,
        newEmail: () => `r${++serial}-${seeder.tag}@reliability.invalid`,
      });
      const mails = new MailCollector(info.urls.mailUi, load.epoch);
      mails.start();
      const plan: LoadPlan = { rate: { register: 0, login: 0, refresh: 0, forgot: 0 }, loops: { register: 2, login: 3, refresh: 16, forgot: 2 } };
      // The fault matrix's workflow accounting covers the workflows of this load only (the fuzzing
      // before it started its own, and reports them in its own row).
      const loadSince = new Date();
      const capacity = await measureCapacity(ctx, load, plan);
      details.push(
        `capacity: the mix with unpaced loops (${OPS.map((op) => `${plan.loops[op]} ${op}`).join(', ')}) over both API instances: ${OPS.map((op) => `${op} ${capacity[op].toFixed(1)}/s`).join(', ')}`,
      );
      try {
        if (opts.parts.has('faults')) {
          await guard('faults', async () => {
            const half = Object.fromEntries(OPS.map((op) => [op, capacity[op] * 0.5])) as Record<Op, number>;
            load.setRate(half);
            ctx.log(`fault matrix at 50% of capacity: ${OPS.map((op) => `${op} ${half[op].toFixed(1)}/s`).join(', ')}`);
            const list = faults(opts.quick, async () => {
              await db.end().catch(() => undefined);
              db = await connectDb(info.pgSuperuserUrl.replace(/\/postgres$/, '/authflow'));
              ctx.db = db;
            });
            const windows = await runMatrix(ctx, load, list, { baselineMs: opts.quick ? 3000 : 10000, settleMs: opts.quick ? 10000 : 25000 });
            // Quiet the load and let every accepted request's e-mail arrive before counting.
            load.setRate({ register: 0, login: 0, refresh: 0, forgot: 0 });
            const waited = await drainMail(load, mails, 120000);
            const r: Row[] = windows.flatMap((w) => faultRows(w, load, mails));
            const all = account(load, mails, 0, Number.MAX_SAFE_INTEGER);
            const chains = load.chainStats();
            const wf = await workflowHealth(ctx, loadSince);
            r.push(
              {
                part: 'faults: whole run',
                measure: 'e-mails of accepted requests',
                figure:
                  `${all.registrations.accepted - all.registrations.missing.length}/${all.registrations.accepted} registrations and ` +
                  `${all.forgots.accepted - all.forgots.missing.length}/${all.forgots.accepted} forgots got their e-mail (waited ${(waited / 1000).toFixed(1)} s at the end); ` +
                  `duplicates ${all.registrations.duplicates + all.forgots.duplicates}; reset e-mails for requests whose answer was lost ${all.forgots.extra}`,
                target: '100%, duplicates rare',
                verdict: all.registrations.missing.length || all.forgots.missing.length ? 'FAIL' : 'PASS',
              },
              {
                part: 'faults: whole run',
                measure: 'refresh chains',
                figure: `${chains.total} chains: ${chains.alive} alive, ${chains.lost} lost, ${chains.lostInFlight} ended by an answer lost in flight, ${chains.broken} broken`,
                target: '0 lost',
                verdict: chains.lost || chains.broken ? 'FAIL' : 'PASS',
              },
              {
                part: 'faults: whole run',
                measure: 'workflows and outbox after the run',
                figure: `${wf.failed} failed, ${wf.timedOut} timed out, ${wf.terminated} terminated, ${wf.retrying} of ${wf.running} running with an activity still retrying; flow outbox rows pending ${wf.outboxPending}`,
                target: '0 stuck or failed',
                verdict: wf.failed || wf.timedOut || wf.terminated || wf.retrying || wf.outboxPending ? 'FAIL' : 'PASS',
              },
            );
            const missing = [...all.registrations.missing, ...all.forgots.missing];
            const d = [
              'faults: a refresh chain is lost when a token the server answered only with 503/429 (or never received) is refused as spent afterwards; ' +
                'when the last attempt with a token got no answer (its instance died mid-request) and the retry finds it spent, the chain ended by an answer lost in flight — ' +
                'the client cannot know the successor and signs in again; counted apart, not a server loss',
              'faults: "what clients saw" counts every attempt from the fault until the end of its settle period; unanswered attempts were sent again to the other instance',
              `faults: logical operations that ended without success: ${OPS.map((op) => `${op} ${load.failed[op]}`).join(', ')}`,
            ];
            if (missing.length) d.push(`faults: missing e-mails (first 10): ${missing.slice(0, 10).join(', ')}`);
            return { rows: r, details: d };
          });
        }
        if (opts.parts.has('soak')) {
          await waitHealthy(ctx.apis);
          await guard('soak', () => soakPart(ctx, load, capacity));
        }
      } finally {
        await load.stop();
        await mails.stop();
      }
    }

    await guard('races', async () => (await import('./races.js')).racesPart(ctx, { rounds: opts.quick ? 5 : 50 }));
  } finally {
    await db.end().catch(() => undefined);
    log('stopping the reliability stack');
    await stack.stop();
  }

  const when = new Date().toISOString().replace('T', ' ').slice(0, 16);
  const header = [
    `## ${when} UTC — ${opts.quick ? 'quick run (`--quick`: short holds and sizes; not a measurement)' : 'full run'}`,
    '',
    `- Command: \`npm run reliability${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\`; commit ${commit}; Node ${process.version}; ` +
      `${(Date.now() - t0) / 60000 < 1 ? '<1' : ((Date.now() - t0) / 60000).toFixed(1)} min`,
    `- Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM; every server, both API instances, the worker and the load on it`,
  ];
  const report = render(rows, header, details);
  process.stdout.write(`\n${report}`);
  if (opts.results) {
    if (!existsSync(opts.results))
      writeFileSync(opts.results, '# Reliability results\n\nAppended by `npm run reliability` (see docs/operations.md, "Reliability suite"). Newest last.\n\n');
    appendFileSync(opts.results, `${report}\n`);
    log(`appended to ${opts.results}`);
  }
  if (rows.some((r) => r.verdict === 'FAIL')) process.exitCode = 1;
}

main().catch((err) => {
  process.stderr.write(`reliability failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
