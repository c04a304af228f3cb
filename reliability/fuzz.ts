/**
 * Fuzzing from the OpenAPI document (issue 17, 1a): schemathesis (PyPI, provisioned by
 * infra/stack/provision.ts) over `/openapi.json`, every operation, with every check it has
 * (server errors, responses against the documented statuses, media types, headers and schemas,
 * schema-violating requests accepted, schema-valid ones refused, ignored auth) but use-after-free.
 *
 * Credentials (reliability/lib/fuzz_hooks.py): a throwaway admin for admin operations, one
 * throwaway user for the user's own operations, a pool of throwaway users' sessions for the
 * operations that end a session or an account, the stack's metrics token; the admin's
 * /v1/admin/users/{id} operations are mostly aimed at throwaway victims, so destructive admin
 * operations act on the fuzzer's own records only. All of them are written straight into the
 * database (active, verified) and signed in through the API just before the run: access tokens
 * live 15 minutes, and a run stays well inside that.
 *
 * The counts come from schemathesis's JSON report; its console output is kept in the report
 * directory for the details of any failure (the request to reproduce it included).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { authenticator } from 'otplib';
import type { Client as PgClient } from 'pg';
import { hashPassword } from '../crypto/argon2';
import { provisionSchemathesis, SCHEMATHESIS_VERSION } from '../infra/stack/provision';
import type { StackInfo } from '../infra/stack/stack';
import { argon2Params, parseConfig } from '../platform/config';
import { workflowHealth } from './faults';
import type { PartResult, ReliabilityContext, Row } from './lib/context';

const PASSWORD = 'fuzz-cobalt-heron-lantern-93';
const HOOKS = join(__dirname, 'lib', 'fuzz_hooks.py');

/** Failure types (schemathesis's names) by what they mean for the target. */
const SERVER_ERRORS = new Set(['ServerError', 'ContentTypeServerError']);
const SCHEMA_VIOLATIONS = new Set([
  'UndefinedStatusCode',
  'MissingContentType',
  'UndefinedContentType',
  'MalformedMediaType',
  'MissingHeaders',
  'JsonSchemaError',
  'MalformedJson',
  'ContentDeserializationError',
  'DiscriminatorMismatch',
]);

/**
 * Operations whose schema-valid requests are refused by rules the schema cannot state: a password
 * the policy refuses (too common, like the e-mail), a token the server never issued, a webhook
 * target that is not a public address (the request-forgery guard), an OpenID Connect client whose
 * fields do not hold together (refresh_token without authorization_code, a custom-scheme redirect
 * URI on a secret client, private_key_jwt without jwks_uri, ...; the 409 of rotating the secret of
 * a client that has none). Their 400s are expected answers to positive data, not findings.
 */
const SEMANTIC_400 = [
  '/v1/auth/register',
  '/v1/auth/password/reset',
  '/v1/auth/verify-email',
  '/v1/me/password',
  '/v1/admin/webhooks',
  '/v1/admin/clients',
  '/v1/admin/clients/{client_id}',
  '/v1/admin/clients/{client_id}/secret',
];

export interface FuzzOptions {
  seed: number;
  /** cases per operation and phase */
  maxExamples: number;
  phases: Array<'examples' | 'coverage' | 'fuzzing' | 'stateful'>;
  workers: number;
  /** a time budget for the whole run (fuzzing repeats until it is spent), seconds */
  maxTimeS?: number;
  /** operations left out, as `METHOD /path` (the reason goes into the part's details) */
  exclude?: string[];
  /** throwaway sessions for the operations that end one (the pool of fuzz_hooks.py) */
  spendSessions: number;
  /** throwaway accounts the admin operations are aimed at */
  victims: number;
}

export interface FuzzFailure {
  type: string;
  code: string;
  title: string;
  count: number;
  operations: string[];
}

export interface FuzzResult {
  cases: number;
  operations: { total: number; selected: number; tested: number };
  serverErrors: FuzzFailure[];
  schemaViolations: FuzzFailure[];
  otherFindings: FuzzFailure[];
  /** schemathesis's own errors (e.g. Hypothesis giving up on a case), by title */
  errors: Array<{ title: string; count: number }>;
  exitCode: number;
  seconds: number;
  /** where the JSON report and the console output are */
  reportDir: string;
  /** the console output's last lines */
  tail: string;
}

interface Session {
  id: string;
  token: string;
}

async function throwawayUsers(db: PgClient, hash: string, roles: string[], n: number, tag: string): Promise<Array<{ id: string; email: string }>> {
  const users = Array.from({ length: n }, (_, i) => ({
    id: randomUUID(),
    email: `fuzz-${roles.includes('admin') ? 'admin' : 'user'}-${tag}-${i}@reliability.invalid`,
  }));
  if (!n) return users;
  await db.query(
    `INSERT INTO users (id, email, name, password_hash, status, roles, email_verified_at, created_at, updated_at)
     SELECT u.id, u.email, 'Fuzz User', $3, 'active', $4::text[], now(), now(), now()
       FROM unnest($1::uuid[], $2::text[]) AS u(id, email)`,
    [users.map((u) => u.id), users.map((u) => u.email), hash, roles],
  );
  return users;
}

async function signIn(api: string, email: string): Promise<string> {
  const res = await fetch(`${api}/v1/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'User-Agent': 'authflow-fuzz-setup' },
    body: JSON.stringify({ email, password: PASSWORD }),
    signal: AbortSignal.timeout(30000),
  });
  const body = (await res.json().catch(() => ({}))) as { access_token?: string; code?: string };
  if (res.status !== 200 || !body.access_token) throw new Error(`fuzz setup: sign-in of ${email} answered ${res.status} ${body.code ?? ''}`);
  return body.access_token;
}

async function post(api: string, path: string, body: unknown, token?: string): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(`${api}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'User-Agent': 'authflow-fuzz-setup', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30000),
  });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, any> };
}

/**
 * The throwaway admin's session: the admin API needs a sign-in with a second factor, so it enrols
 * TOTP and signs in with the password and a code (the step after the one that confirmed it: the
 * server refuses a step twice and accepts one step ahead).
 */
async function adminSignIn(api: string, email: string): Promise<string> {
  const first = await signIn(api, email);
  const enrol = await post(api, '/v1/me/mfa/totp', { password: PASSWORD }, first);
  if (enrol.status !== 200) throw new Error(`fuzz setup: TOTP enrolment answered ${enrol.status} ${enrol.body.code ?? ''}`);
  const secret = new URL(enrol.body.otpauth_url as string).searchParams.get('secret')!;
  const step = Math.floor(Date.now() / 30000);
  const codeAt = (s: number) => authenticator.clone({ epoch: s * 30000, window: 0 }).generate(secret);
  const confirm = await post(api, '/v1/me/mfa/totp/confirm', { code: codeAt(step) }, first);
  if (confirm.status !== 200) throw new Error(`fuzz setup: TOTP confirmation answered ${confirm.status} ${confirm.body.code ?? ''}`);
  const password = await post(api, '/v1/auth/login', { email, password: PASSWORD });
  const mfa = await post(api, '/v1/auth/login/mfa', { mfa_token: password.body.mfa_token, code: codeAt(step + 1) });
  if (mfa.status !== 200 || !mfa.body.access_token) throw new Error(`fuzz setup: the admin's MFA sign-in answered ${mfa.status} ${mfa.body.code ?? ''}`);
  return mfa.body.access_token as string;
}

async function sessions(api: string, users: Array<{ id: string; email: string }>, concurrency = 4): Promise<Session[]> {
  const out: Session[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < users.length) {
        const u = users[next++];
        out.push({ id: u.id, token: await signIn(api, u.email) });
      }
    }),
  );
  return out;
}

/** The per-operation configuration schemathesis reads (TOML; JSON strings are valid TOML strings). */
function configToml(): string {
  const q = (s: string) => JSON.stringify(s);
  const lines = [
    '[checks]',
    'enabled = true',
    // A body over the limit is refused with 413 before it is read: a rejection like the 400s.
    'negative_data_rejection.expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]',
    '',
  ];
  for (const path of SEMANTIC_400) {
    lines.push(
      '[[operations]]',
      `include-path = ${q(path)}`,
      'checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]',
      '',
    );
  }
  return lines.join('\n');
}

function runSchemathesis(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
  outFile: string,
  timeoutMs: number,
): Promise<{ code: number; tail: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => chunks.push(b));
    child.stderr.on('data', (b: Buffer) => chunks.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const out = Buffer.concat(chunks).toString('utf8');
      writeFileSync(outFile, out);
      if (signal) reject(new Error(`schemathesis was stopped (${signal}) after ${timeoutMs / 1000} s; output in ${outFile}`));
      else resolve({ code: code ?? 1, tail: out.split('\n').slice(-40).join('\n') });
    });
  });
}

/** Runs schemathesis against one API instance of a running stack with throwaway credentials. */
export async function runFuzz(info: StackInfo, api: string, db: PgClient, opts: FuzzOptions, log: (m: string) => void = () => undefined): Promise<FuzzResult> {
  const st = await provisionSchemathesis();
  const config = parseConfig({ ...info.serviceEnv, VAULT_ROLE_ID: info.roleIds.api, VAULT_SECRET_ID_FILE: info.secretIdFiles.api });
  const hash = await hashPassword(PASSWORD, argon2Params(config));
  const tag = Date.now().toString(36);
  const [admin] = await throwawayUsers(db, hash, ['user', 'admin'], 1, tag);
  const users = await throwawayUsers(db, hash, ['user'], 1 + opts.spendSessions, tag);
  const victims = await throwawayUsers(db, hash, ['user'], opts.victims, `${tag}v`);
  log(`fuzz: signing in a throwaway admin and ${users.length} throwaway users; ${victims.length} victims for the admin operations`);
  const adminSession: Session = { id: admin.id, token: await adminSignIn(api, admin.email) };
  const [user, ...spend] = await sessions(api, users);

  const dir = mkdtempSync(join(tmpdir(), 'authflow-fuzz-'));
  const reportDir = join(dir, 'report');
  mkdirSync(reportDir);
  const stateFile = join(dir, 'state.json');
  writeFileSync(
    stateFile,
    JSON.stringify({
      admin: adminSession.token,
      user: user.token,
      spend: spend.map((s) => s.token),
      victims: victims.map((v) => v.id),
      metrics: info.serviceEnv.METRICS_TOKEN ?? '',
      password: PASSWORD,
      seed: opts.seed,
    }),
    { mode: 0o600 },
  );
  writeFileSync(join(dir, 'schemathesis.toml'), configToml());
  // Operations left out by their operationId (the document's), so a typo fails here, not silently.
  const doc = (await (await fetch(`${api}/openapi.json`)).json()) as { paths: Record<string, Record<string, { operationId?: string }>> };
  const excludeIds = (opts.exclude ?? []).map((op) => {
    const [method, path] = op.split(' ');
    const id = doc.paths[path]?.[method.toLowerCase()]?.operationId;
    if (!id) throw new Error(`fuzz: no operation ${op} in the document`);
    return id;
  });
  const args = [
    ...st.args,
    '--config-file',
    join(dir, 'schemathesis.toml'),
    'run',
    `${api}/openapi.json`,
    '--checks',
    'all',
    // "Deleted resource still available" does not apply: deleting an account schedules it (202,
    // erasure after the grace period, undone by reactivation) and it is readable as pending_deletion
    // until then; the other DELETE (a device) has no GET of the item.
    '--exclude-checks',
    'use_after_free',
    '--phases',
    opts.phases.join(','),
    '-n',
    String(opts.maxExamples),
    '--seed',
    String(opts.seed),
    '-w',
    String(opts.workers),
    '--report',
    'json',
    '--report-dir',
    reportDir,
    '--request-timeout',
    '30',
    '--no-color',
    '--output-truncate',
    'true',
    ...(opts.maxTimeS ? ['--max-time', String(opts.maxTimeS)] : []),
    ...excludeIds.flatMap((id) => ['--exclude-operation-id', id]),
  ];
  const env = { ...process.env, ...st.env, AUTHFLOW_FUZZ_STATE: stateFile, SCHEMATHESIS_HOOKS: HOOKS, NO_COLOR: '1', PYTHONDONTWRITEBYTECODE: '1' };
  const started = Date.now();
  log(`fuzz: schemathesis ${SCHEMATHESIS_VERSION} ${args.slice(st.args.length).join(' ')}`);
  const { code, tail } = await runSchemathesis(st.cmd, args, env, dir, join(reportDir, 'output.txt'), ((opts.maxTimeS ?? 600) + 300) * 1000);
  const seconds = (Date.now() - started) / 1000;
  rmSync(stateFile, { force: true }); // the throwaway tokens
  const reportFile = readdirSync(reportDir).find((f) => f.startsWith('json') && f.endsWith('.json'));
  if (!reportFile) throw new Error(`schemathesis wrote no report (exit ${code}):\n${tail}`);
  const report = JSON.parse(readFileSync(join(reportDir, reportFile), 'utf8')) as {
    operations: { total: number; selected: number; tested: number };
    test_cases: { generated: number };
    failures: FuzzFailure[];
    errors: Array<{ title: string; count: number }>;
  };
  const failures = report.failures ?? [];
  return {
    cases: report.test_cases.generated,
    operations: report.operations,
    serverErrors: failures.filter((f) => SERVER_ERRORS.has(f.type)),
    schemaViolations: failures.filter((f) => SCHEMA_VIOLATIONS.has(f.type)),
    otherFindings: failures.filter((f) => !SERVER_ERRORS.has(f.type) && !SCHEMA_VIOLATIONS.has(f.type)),
    errors: report.errors ?? [],
    exitCode: code,
    seconds,
    reportDir,
    tail,
  };
}

const list = (fs: FuzzFailure[]) => fs.map((f) => `${f.code} ${f.title} (${f.count}): ${f.operations.join(', ')}`).join('; ');

/** One row per kind of finding: PASS at none, else the findings themselves. */
const findings = (measure: string, fs: FuzzFailure[]): Row => ({
  part: 'fuzz',
  measure,
  figure: fs.length ? list(fs) : '0',
  target: '0',
  verdict: fs.length ? 'FAIL' : 'PASS',
});

/** Destructive operations left out of the short version in `npm test` (they act on the shared test stack). */
export const SHARED_STACK_EXCLUDES = ['POST /v1/admin/ops/key-rotation', 'POST /v1/admin/ops/backup', 'POST /v1/admin/ops/restore-drill'];

export async function fuzzPart(ctx: ReliabilityContext): Promise<PartResult> {
  const opts: FuzzOptions = {
    seed: 1717,
    maxExamples: ctx.quick ? 10 : 50,
    phases: ['examples', 'coverage', 'fuzzing', 'stateful'],
    workers: 2,
    maxTimeS: ctx.quick ? 90 : 360,
    spendSessions: ctx.quick ? 24 : 80,
    victims: ctx.quick ? 10 : 40,
  };
  const since = new Date();
  const r = await runFuzz(ctx.info, ctx.apis[0], ctx.db, opts, ctx.log);
  const wf = await workflowHealth(ctx, since);
  ctx.log(
    `fuzz: ${r.cases} cases over ${r.operations.tested}/${r.operations.total} operations in ${r.seconds.toFixed(0)} s (exit ${r.exitCode}); report in ${r.reportDir}`,
  );
  const rows: Row[] = [
    {
      part: 'fuzz',
      measure: 'cases run (schemathesis, every phase; every check but use-after-free)',
      figure: `${r.cases} cases over ${r.operations.tested} of ${r.operations.total} operations in ${r.seconds.toFixed(0)} s`,
      target: 'every operation',
      verdict: r.operations.tested === r.operations.total ? 'PASS' : 'FAIL',
    },
    findings('server errors (5xx)', r.serverErrors),
    findings('responses that break the documented statuses, media types, headers or schemas', r.schemaViolations),
    findings('other findings (schema-violating requests accepted, valid ones refused, ignored auth, Allow)', r.otherFindings),
    {
      part: 'fuzz',
      measure: 'workflows the fuzzing started (registrations, resets, deletions, backups, drills, rotations)',
      figure:
        `${wf.failed} failed, ${wf.timedOut} timed out, ${wf.running} still running (reset tokens and deletion grace periods run on); ` +
        `${wf.terminated} terminated by design (an admin reset replaces the running reset flow)`,
      target: '0 failed or timed out',
      verdict: wf.failed || wf.timedOut ? 'FAIL' : 'PASS',
    },
  ];
  return {
    rows,
    details: [
      `fuzz: schemathesis ${SCHEMATHESIS_VERSION}, seed ${opts.seed}, phases ${opts.phases.join(', ')}, up to ${opts.maxExamples} cases per operation and phase, ${opts.workers} workers, ${opts.maxTimeS} s budget, every check but use_after_free (a deleted account stays readable as pending_deletion through its grace period, by design); ` +
        `a throwaway admin, one throwaway user, ${opts.spendSessions} throwaway sessions for the operations that end one, ${opts.victims} throwaway victims for the admin's user operations; ` +
        `schema-valid requests refused with 400 by the password policy, an unknown token, the webhook target guard or the rules of a client as a whole count as expected on ${SEMANTIC_400.join(', ')}`,
      ...(r.errors.length ? [`fuzz: schemathesis's own errors (not answers of the server): ${r.errors.map((e) => `${e.title} × ${e.count}`).join(', ')}`] : []),
    ],
  };
}
