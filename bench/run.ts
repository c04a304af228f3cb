/**
 * `npm run bench`: the performance benchmarks of issue 9, against the running local stack.
 * Prints a table (benchmark, figure, target, result) and appends it, with the machine's details,
 * to bench/RESULTS.md. `npm run bench -- --help` lists the options; bench/README.md explains.
 */
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import type { Client as PgClient } from 'pg';
import { parseConfig } from '../platform/config';
import { UserIdAttr } from '../platform/temporal/ids';
import { temporalConnectionOptions } from '../platform/temporal/connection';
import { parseTemporalConnectionConfig } from '../platform/config';
import type { StackInfo } from '../infra/stack/stack';
import { hashPassword } from '../crypto/argon2';
import { argon2Params } from '../platform/config';
import type { BenchContext, Row, SuiteResult } from './lib/context';
import { appDb, BenchError, BenchApi, connectStack, machineInfo, pinSelf, startBenchApi } from './lib/env';
import { parseOptions, Suite, SUITES } from './lib/options';
import { BENCH_DOMAIN, BENCH_PASSWORD, cleanup, Seeder } from './lib/seed';
import { forgotSuite } from './suites/forgot';
import { loginSuite } from './suites/login';
import { finalRssRows, ourRss, refreshSuite, rssLine } from './suites/refresh';
import { peerSuite, type OurFigures } from './suites/peer';
import { scaleSuite } from './suites/scale';
import { signingSuite } from './suites/signing';
import { verifySuite } from './suites/verify';

const t0 = Date.now();
const log = (m: string) => process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${m}\n`);

/** Table order follows issue 9; suites run in the order that keeps the database smallest longest. */
const RUN_ORDER: Suite[] = ['verify', 'signing', 'refresh', 'login', 'forgot', 'scale'];
const SUITE_FNS: Record<Suite, (ctx: BenchContext) => Promise<SuiteResult>> = {
  verify: verifySuite,
  signing: signingSuite,
  refresh: refreshSuite,
  login: loginSuite,
  forgot: forgotSuite,
  scale: scaleSuite,
};
const HTTP_SUITES: Suite[] = ['refresh', 'login', 'forgot', 'scale'];

/**
 * Terminates running workflows that belong to seeded users (the password-reset flows the forgot
 * benchmark started, or anything else they triggered): lists the running workflows (few on a dev
 * stack) and asks the database which of their UserIds are @bench.invalid users.
 */
async function endBenchWorkflows(info: StackInfo, namespace: string, db: PgClient): Promise<void> {
  // As the service reaches it (TLS, client certificate, API key when the stack's service env sets them).
  const connection = await Connection.connect({ ...temporalConnectionOptions(parseTemporalConnectionConfig(info.serviceEnv)), connectTimeout: 3000 });
  try {
    const client = new TemporalClient({ connection, namespace });
    const running: Array<{ workflowId: string; runId: string; userId: string }> = [];
    for await (const wf of client.workflow.list({ query: `ExecutionStatus = 'Running'` })) {
      const userId = wf.typedSearchAttributes.get(UserIdAttr);
      if (userId && /^[0-9a-f-]{36}$/i.test(userId)) running.push({ workflowId: wf.workflowId, runId: wf.runId, userId });
    }
    if (running.length === 0) return;
    const r = await db.query<{ id: string }>(`SELECT id FROM users WHERE id = ANY($1::uuid[]) AND email LIKE '%@${BENCH_DOMAIN}'`, [
      running.map((w) => w.userId),
    ]);
    const bench = new Set(r.rows.map((x) => x.id));
    let n = 0;
    for (const wf of running) {
      if (!bench.has(wf.userId)) continue;
      await client.workflow
        .getHandle(wf.workflowId, wf.runId)
        .terminate('benchmark cleanup: seeded user removed')
        .catch(() => undefined);
      n++;
    }
    if (n) log(`ended ${n} running workflows of seeded users`);
  } finally {
    await connection.close();
  }
}

async function removeSeeded(info: StackInfo, namespace: string, db: PgClient): Promise<number> {
  await endBenchWorkflows(info, namespace, db).catch((err) => log(`could not end the workflows of seeded users: ${(err as Error).message}`));
  return cleanup(db, log);
}

function render(rows: Row[], header: string[], details: string[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    ...header,
    '',
    '| benchmark | figure | target | result |',
    '|---|---|---|---|',
    ...rows.map((r) => `| ${esc(r.benchmark)} | ${esc(r.figure)} | ${esc(r.target)} | ${r.verdict === 'FAIL' ? '**FAIL**' : r.verdict} |`),
    '',
    '<details><summary>Rounds and notes</summary>',
    '',
    ...details.map((d) => `- ${d}`),
    '',
    '</details>',
    '',
  ].join('\n');
}

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  const info = await connectStack(opts.dataDir);
  const machine = machineInfo();
  const pin = pinSelf(opts.apiCpus, opts.clientCpus);
  const config = parseConfig({ ...info.serviceEnv, VAULT_ROLE_ID: info.roleIds.api, VAULT_SECRET_ID_FILE: info.secretIdFiles.api });
  const argon2 = argon2Params(config);
  const db = await appDb(info);
  const pgVersion = (await db.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0].v;
  log(`stack ${opts.dataDir}; ${pin.description}`);

  const removed = await removeSeeded(info, config.TEMPORAL_NAMESPACE, db);
  if (removed) log(`(those were left by an earlier run)`);
  const needsHttp = HTTP_SUITES.some((s) => opts.suites.has(s));
  const seeder = new Seeder(db, await hashPassword(BENCH_PASSWORD, argon2), opts.devicesPerUser, log);
  let api: BenchApi | undefined;
  const rowsBySuite = new Map<Suite, Row[]>();
  const details: string[] = [];
  let rssRows: Row[] | undefined;
  let peerRows: Row[] = [];
  const ours: Partial<OurFigures> = {};
  let ctx: BenchContext | undefined;
  let interrupted = false;
  process.once('SIGINT', () => {
    interrupted = true;
    log(`interrupted: stopping; seeded @${BENCH_DOMAIN} rows are removed at the start of the next run`);
    void api?.stop().finally(() => process.exit(130));
  });
  try {
    if (needsHttp) {
      log(`seeding ${opts.baseUsers.toLocaleString('en-US')} users (@${BENCH_DOMAIN}) with ${opts.devicesPerUser} device rows each`);
      await seeder.growTo(opts.baseUsers);
    }
    log('starting the benchmark API process');
    api = await startBenchApi(info, pin);
    ctx = { opts, info, pin, api, db, seeder, config, argon2, log };
    for (const suite of RUN_ORDER) {
      if (!opts.suites.has(suite) || interrupted) continue;
      log(`── ${suite}`);
      try {
        const r = await SUITE_FNS[suite](ctx);
        if (suite === 'refresh') ours.refresh = r as Awaited<ReturnType<typeof refreshSuite>>;
        if (suite === 'login') ours.login = (r as Awaited<ReturnType<typeof loginSuite>>).figures;
        rowsBySuite.set(suite, r.rows);
        details.push(...r.details);
        for (const row of r.rows) log(`${row.verdict}: ${row.benchmark}: ${row.figure}`);
      } catch (err) {
        const msg = (err as Error).message.split('\n')[0];
        log(`${suite} failed: ${(err as Error).stack}`);
        rowsBySuite.set(suite, [{ benchmark: suite, figure: `the benchmark itself failed: ${msg}`, target: '', verdict: 'FAIL' }]);
      }
    }
    rssRows = finalRssRows(ctx);
    details.push(`RSS MB at the end of the run: ${rssLine(ctx)}`);
    if (opts.peer && !interrupted) {
      log('── peer: keycloak');
      ours.rss = ourRss(ctx);
      try {
        const r = await peerSuite(ctx, ours as OurFigures);
        peerRows = r.rows;
        details.push(...r.details);
        for (const row of r.rows) log(`${row.verdict}: ${row.benchmark}: ${row.figure}`);
      } catch (err) {
        log(`peer failed: ${(err as Error).stack}`);
        peerRows = [{ benchmark: 'vs Keycloak', figure: `the peer benchmark failed: ${(err as Error).message.split('\n')[0]}`, target: '', verdict: 'FAIL' }];
      }
    }
  } finally {
    await api?.stop();
    if (opts.keep) log(`--keep: seeded rows left in place (@${BENCH_DOMAIN})`);
    else await removeSeeded(info, config.TEMPORAL_NAMESPACE, db).catch((err) => log(`cleanup failed: ${(err as Error).message}`));
    await db.end();
  }

  const refresh = rowsBySuite.get('refresh') ?? [];
  const rows = [
    ...refresh.slice(0, 1),
    ...(rowsBySuite.get('login') ?? []),
    ...(rowsBySuite.get('verify') ?? []),
    ...(rowsBySuite.get('forgot') ?? []),
    ...(rowsBySuite.get('scale') ?? []),
    ...refresh.slice(1),
    ...(rssRows ?? []),
    ...peerRows,
    ...(rowsBySuite.get('signing') ?? []),
  ];
  const when = new Date().toISOString().replace('T', ' ').slice(0, 16);
  const header = [
    `## ${when} UTC — ${opts.quick ? 'smoke run (`--quick`: tiny sizes and short rounds; the figures are not meaningful)' : opts.suites.size < SUITES.length ? `partial run (${[...opts.suites].join(', ')})` : 'full run'}`,
    '',
    `- Command: \`npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\` against the stack in \`${opts.dataDir}\``,
    `- Commit ${machine.commit}; Node ${machine.node}; PostgreSQL ${pgVersion}`,
    `- Machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memGiB.toFixed(1)} GiB RAM, ${machine.kernel}`,
    `- ${pin.description}`,
    `- Load generator: autocannon, in-process; warm-up ${opts.warmupSec} s, then ${opts.rounds} rounds × ${opts.roundSec} s; figures are the median of the rounds, spread is ± half the range`,
    `- Configuration as the stack runs it: argon2id m=${argon2.memoryKiB} KiB t=${argon2.timeCost} p=${argon2.parallelism}, DB_POOL_MAX=${config.DB_POOL_MAX}, access-token TTL ${config.ACCESS_TOKEN_TTL} s; benchmark API with LOG_LEVEL=warn and the rate limiter on with limits raised out of reach`,
    ...(opts.peer
      ? [
          '- Peer: Keycloak, same cores, same PostgreSQL (database keycloak_bench), same argon2id cost, same load generator and rounds (the "vs Keycloak" rows; its set-up in the notes)',
        ]
      : []),
    `- Sizes: ${opts.baseUsers.toLocaleString('en-US')} seeded users (scale: grown to ${opts.grownUsers.toLocaleString('en-US')}), ${opts.devicesPerUser} device rows each; ${opts.refreshConnections} refresh / ${opts.loginConnections} login connections`,
  ];
  const report = render(rows, header, details);
  process.stdout.write(`\n${report}`);
  if (opts.results) {
    if (!existsSync(opts.results)) writeFileSync(opts.results, '# Benchmark results\n\nAppended by `npm run bench` (see bench/README.md). Newest last.\n\n');
    appendFileSync(opts.results, `${report}\n`);
    log(`appended to ${opts.results}`);
  } else {
    log('not recorded (--quick or --no-record); pass --results=FILE to append');
  }
}

main().catch((err) => {
  if (err instanceof BenchError) process.stderr.write(`bench: ${err.message}\n`);
  else process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
  process.exit(err instanceof BenchError ? 2 : 1);
});
