/**
 * Finding 9, the Temporal transport half: TLS, mTLS and an API key on every Temporal connection
 * of the service (platform/temporal/connection.ts). The stack's dev server speaks plaintext gRPC,
 * so this file puts TLS-terminating proxies in front of it:
 *  - an mTLS proxy (node:tls, client certificate required and checked against a test CA, bytes
 *    piped to the dev server);
 *  - a gRPC proxy (node:http2 over TLS) that forwards each call, trailers included, only when it
 *    carries `authorization: Bearer <the key>`, and answers UNAUTHENTICATED otherwise; for the
 *    worker it also requires the client certificate.
 * The clients are built exactly as the service builds them, from TEMPORAL_* variables; a real
 * worker process (worker/main.ts) started with those variables runs a workflow through a proxy.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { Client, Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { NativeConnection } from '@temporalio/worker';
import { parseConfig, parseTemporalConnectionConfig } from '../../platform/config';
import { connectTemporal } from '../../platform/temporal/client';
import { temporalConnectionOptions } from '../../platform/temporal/connection';
import { dataConverterWith } from '../../platform/temporal/data-converter';
import { stackInfo, until, vaultRoot, waitForMail } from '../helpers/stack';
import { registerAndVerify } from '../helpers/users';
import { stackClients, type StackClients } from '../replay/stack-codec';

jest.setTimeout(180000);

const ROOT = join(__dirname, '..', '..');
const API_KEY = `tls-test-key-${randomUUID()}`;
const SERVER_NAME = 'temporal.test';

let work: string;
const f = (name: string) => join(work, name);
const upstreamPort = () => Number(stackInfo().urls.temporal.split(':').pop());

function openssl(...args: string[]) {
  const r = spawnSync('openssl', args, { cwd: work, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

function signed(name: string, ca: string, ext: string) {
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  writeFileSync(f(`${name}.ext`), ext);
  openssl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.crt`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-out',
    `${name}.crt`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
  );
}

/** The mTLS proxy: TLS with a required client certificate (chained to ca.crt), then raw bytes to the dev server. */
interface MtlsProxy {
  port: number;
  /** TCP connections opened to the dev server (one per accepted client). */
  forwarded: number;
  server: tls.Server;
  sockets: Set<Socket>;
}

function startMtlsProxy(): Promise<MtlsProxy> {
  const p: MtlsProxy = { port: 0, forwarded: 0, server: undefined as unknown as tls.Server, sockets: new Set() };
  p.server = tls.createServer(
    {
      key: readFileSync(f('server.key')),
      cert: readFileSync(f('server.crt')),
      ca: readFileSync(f('ca.crt')),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    },
    (client) => {
      p.forwarded++;
      const up = netConnect(upstreamPort(), '127.0.0.1');
      for (const s of [client, up]) {
        p.sockets.add(s);
        s.on('close', () => p.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          up.destroy();
        });
      }
      client.pipe(up).pipe(client);
    },
  );
  p.server.on('tlsClientError', () => undefined);
  return new Promise((res) =>
    p.server.listen(0, '127.0.0.1', () => {
      p.port = (p.server.address() as AddressInfo).port;
      res(p);
    }),
  );
}

/** The API-key proxy: gRPC over TLS, each call forwarded to the plaintext dev server only with the right key. */
interface KeyProxy {
  port: number;
  /** gRPC methods forwarded (authorized) and refused, by path. */
  forwarded: string[];
  refused: string[];
  /** Subject CNs of client certificates on forwarded calls (requestCert proxies). */
  clientNames: Set<string>;
  close: () => Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);
function forwardable(h: http2.IncomingHttpHeaders, keep: string[] = []): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) if ((!k.startsWith(':') || keep.includes(k)) && !HOP_BY_HOP.has(k) && v !== undefined) out[k] = v;
  return out;
}

function startKeyProxy(opts: { requireClientCert: boolean }): Promise<KeyProxy> {
  const forwarded: string[] = [];
  const refused: string[] = [];
  const clientNames = new Set<string>();
  const sessions = new Set<http2.Http2Session>();
  let upstream: http2.ClientHttp2Session | undefined;
  const upstreamSession = () => {
    if (!upstream || upstream.closed || upstream.destroyed) {
      upstream = http2.connect(`http://127.0.0.1:${upstreamPort()}`);
      upstream.on('error', () => undefined);
    }
    return upstream;
  };
  const server = http2.createSecureServer({
    key: readFileSync(f('server.key')),
    cert: readFileSync(f('server.crt')),
    ...(opts.requireClientCert ? { ca: readFileSync(f('ca.crt')), requestCert: true, rejectUnauthorized: true } : {}),
  });
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
    s.on('error', () => undefined);
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const path = String(headers[':path']);
    if (headers.authorization !== `Bearer ${API_KEY}`) {
      refused.push(path);
      // A trailers-only gRPC answer: status 16 UNAUTHENTICATED, nothing reaches the server.
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '16', 'grpc-message': 'missing or wrong API key' },
        { endStream: true },
      );
      return;
    }
    forwarded.push(path);
    const peer = (stream.session?.socket as tls.TLSSocket | undefined)?.getPeerCertificate?.();
    if (peer?.subject?.CN) clientNames.add(String(peer.subject.CN));
    const req = upstreamSession().request({ ':method': headers[':method'], ':path': path, ...forwardable(headers) });
    req.on('error', () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
    let trailers: http2.OutgoingHttpHeaders = {};
    let ended = false;
    req.on('response', (h, flags) => {
      if (stream.destroyed) return;
      // Trailers-only answer (an error status in the headers frame): end with it.
      ended = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      stream.respond(forwardable(h, [':status']), ended ? { endStream: true } : { waitForTrailers: true });
    });
    req.on('trailers', (t) => (trailers = forwardable(t)));
    stream.on('wantTrailers', () => stream.sendTrailers(Object.keys(trailers).length ? trailers : { 'grpc-status': '0' }));
    req.on('data', (d: Buffer) => !stream.destroyed && stream.write(d));
    req.on('end', () => !ended && !stream.destroyed && stream.end());
    stream.on('data', (d: Buffer) => req.write(d));
    stream.on('end', () => req.end());
    stream.on('close', () => !req.closed && req.close(http2.constants.NGHTTP2_CANCEL));
  });
  return new Promise((res) =>
    server.listen(0, '127.0.0.1', () =>
      res({
        port: (server.address() as AddressInfo).port,
        forwarded,
        refused,
        clientNames,
        close: async () => {
          for (const s of sessions) s.destroy();
          upstream?.destroy();
          await new Promise<void>((r) => server.close(() => r()));
        },
      }),
    ),
  );
}

let mtls: MtlsProxy;
let keyProxy: KeyProxy;
let bothProxy: KeyProxy;
let clients: StackClients;
let worker: ChildProcess | undefined;
const apis: ChildProcess[] = [];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'authflow-temporal-tls-'));
  for (const ca of ['ca', 'other-ca']) {
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '2', '-subj', `/CN=authflow test ${ca}`);
  }
  // The proxy's certificate names only temporal.test (clients connect to 127.0.0.1 with TEMPORAL_TLS_SERVER_NAME).
  signed('server', 'ca', `subjectAltName=DNS:${SERVER_NAME}\nextendedKeyUsage=serverAuth\n`);
  signed('client', 'ca', 'extendedKeyUsage=clientAuth\n');
  // An attacker's own certificate: well-formed, signed by a CA the proxy does not trust.
  signed('rogue-client', 'other-ca', 'extendedKeyUsage=clientAuth\n');
  mtls = await startMtlsProxy();
  keyProxy = await startKeyProxy({ requireClientCert: false });
  bothProxy = await startKeyProxy({ requireClientCert: true });
  clients = await stackClients(stackInfo());
});

afterAll(async () => {
  for (const a of apis) if (a.exitCode === null && a.signalCode === null) a.kill('SIGKILL');
  if (worker && worker.exitCode === null && worker.signalCode === null) {
    const gone = new Promise((r) => worker!.once('exit', r));
    worker.kill('SIGTERM');
    const t = setTimeout(() => worker!.kill('SIGKILL'), 15000);
    await gone;
    clearTimeout(t);
  }
  await clients?.close();
  for (const s of mtls?.sockets ?? []) s.destroy();
  await new Promise<void>((r) => (mtls ? mtls.server.close(() => r()) : r()));
  await keyProxy?.close();
  await bothProxy?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The service's Temporal settings, from variables as an operator would write them. */
function cfg(port: number, env: Record<string, string>) {
  return parseTemporalConnectionConfig({ TEMPORAL_ADDRESS: `127.0.0.1:${port}`, TEMPORAL_NAMESPACE: 'default', ...env });
}
const tlsEnv = (extra: Record<string, string> = {}) => ({
  TEMPORAL_TLS: 'true',
  TEMPORAL_TLS_CA: f('ca.crt'),
  TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
  ...extra,
});
const clientCert = (name = 'client') => ({ TEMPORAL_TLS_CERT: f(`${name}.crt`), TEMPORAL_TLS_KEY: f(`${name}.key`) });

/** The messages of an error and its causes (Connection.connect wraps the gRPC status in `cause`). */
async function failureOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    const parts: string[] = [];
    for (let e = err as { message?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) parts.push(String(e.message));
    return parts.join(' <- ');
  }
  throw new Error('expected a failure');
}

/** describeNamespace through a client built by the one function; returns the namespace name. */
async function describeVia(c: ReturnType<typeof cfg>): Promise<string> {
  const connection = await Connection.connect({ ...temporalConnectionOptions(c), connectTimeout: 3000 });
  try {
    const r = await connection.workflowService.describeNamespace({ namespace: 'default' });
    return r.namespaceInfo?.name ?? '';
  } finally {
    await connection.close();
  }
}

/** The worker's path: a NativeConnection (Core) built by the same function. */
async function nativeVia(c: ReturnType<typeof cfg>): Promise<true> {
  const connection = await NativeConnection.connect(temporalConnectionOptions(c));
  await connection.close();
  return true;
}

describe('mTLS (client certificate required by the server side)', () => {
  test('right CA and client certificate: the client describes the namespace, the CLI helper and the worker path connect', async () => {
    await expect(describeVia(cfg(mtls.port, tlsEnv(clientCert())))).resolves.toBe('default');
    const cli = await connectTemporal(cfg(mtls.port, tlsEnv(clientCert())));
    try {
      await expect(cli.workflowService.getSystemInfo({})).resolves.toBeDefined();
    } finally {
      await cli.connection.close();
    }
    await expect(nativeVia(cfg(mtls.port, tlsEnv(clientCert())))).resolves.toBe(true);
  });

  test('no client certificate, or one from a CA the server does not trust: refused, nothing reaches Temporal', async () => {
    const before = mtls.forwarded;
    await expect(describeVia(cfg(mtls.port, tlsEnv()))).rejects.toThrow();
    await expect(nativeVia(cfg(mtls.port, tlsEnv()))).rejects.toThrow();
    await expect(describeVia(cfg(mtls.port, tlsEnv(clientCert('rogue-client'))))).rejects.toThrow();
    await expect(nativeVia(cfg(mtls.port, tlsEnv(clientCert('rogue-client'))))).rejects.toThrow();
    expect(mtls.forwarded).toBe(before);
  });

  test('plaintext (TEMPORAL_TLS unset, the old behaviour) does not get through', async () => {
    const before = mtls.forwarded;
    await expect(describeVia(cfg(mtls.port, {}))).rejects.toThrow();
    expect(mtls.forwarded).toBe(before);
  });
});

describe('server certificate checks (the service is talking to the real Temporal)', () => {
  test('a server certificate from another CA is refused (client and worker path)', async () => {
    const other = tlsEnv({ ...clientCert(), TEMPORAL_TLS_CA: f('other-ca.crt') });
    // (grpc-js reports only "Failed to connect before the deadline"; the same settings with ca.crt connect, above.)
    await expect(describeVia(cfg(mtls.port, other))).rejects.toThrow();
    await expect(nativeVia(cfg(mtls.port, other))).rejects.toThrow();
  });

  test('system roots only (no TEMPORAL_TLS_CA) do not trust the test CA', async () => {
    const env = { TEMPORAL_TLS: 'true', TEMPORAL_TLS_SERVER_NAME: SERVER_NAME, ...clientCert() };
    await expect(describeVia(cfg(mtls.port, env))).rejects.toThrow();
  });

  test('a certificate that does not name TEMPORAL_TLS_SERVER_NAME (or the address) is refused', async () => {
    await expect(describeVia(cfg(mtls.port, tlsEnv({ ...clientCert(), TEMPORAL_TLS_SERVER_NAME: 'evil.test' })))).rejects.toThrow();
    const noOverride = { TEMPORAL_TLS: 'true', TEMPORAL_TLS_CA: f('ca.crt'), ...clientCert() };
    await expect(describeVia(cfg(mtls.port, noOverride))).rejects.toThrow();
    await expect(nativeVia(cfg(mtls.port, noOverride))).rejects.toThrow();
  });
});

describe('API key (authorization: Bearer)', () => {
  test('the right key: the client describes the namespace and the worker path connects; the key was on every call', async () => {
    const before = keyProxy.forwarded.length;
    await expect(describeVia(cfg(keyProxy.port, tlsEnv({ TEMPORAL_API_KEY: API_KEY })))).resolves.toBe('default');
    await expect(nativeVia(cfg(keyProxy.port, tlsEnv({ TEMPORAL_API_KEY: API_KEY })))).resolves.toBe(true);
    expect(keyProxy.forwarded.slice(before)).toContain('/temporal.api.workflowservice.v1.WorkflowService/DescribeNamespace');
  });

  test('a wrong or missing key: UNAUTHENTICATED, nothing forwarded', async () => {
    const before = keyProxy.forwarded.length;
    expect(await failureOf(describeVia(cfg(keyProxy.port, tlsEnv({ TEMPORAL_API_KEY: 'not-the-key' }))))).toMatch(
      /16 UNAUTHENTICATED: missing or wrong API key/,
    );
    expect(await failureOf(describeVia(cfg(keyProxy.port, tlsEnv())))).toMatch(/16 UNAUTHENTICATED: missing or wrong API key/);
    expect(await failureOf(nativeVia(cfg(keyProxy.port, tlsEnv({ TEMPORAL_API_KEY: 'not-the-key' }))))).toMatch(/unauthenticated|missing or wrong API key/i);
    expect(await failureOf(nativeVia(cfg(keyProxy.port, tlsEnv())))).toMatch(/unauthenticated|missing or wrong API key/i);
    expect(keyProxy.forwarded.length).toBe(before);
    expect(keyProxy.refused.length).toBeGreaterThan(0);
  });
});

/** The environment of a worker process as the stack runs it, with `extra` on top. */
function workerEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const info = stackInfo();
  return { ...process.env, ...info.serviceEnv, VAULT_ROLE_ID: info.roleIds.worker, VAULT_SECRET_ID_FILE: info.secretIdFiles.worker, ...extra };
}

describe('configuration refusals', () => {
  const base = { VAULT_ADDR: 'http://127.0.0.1:8200', VAULT_ROLE_ID: 'r', VAULT_SECRET_ID: 's' };
  test('a client certificate without its key, an API key without TLS: the service does not start', () => {
    expect(() => parseConfig({ ...base, TEMPORAL_TLS: 'true', TEMPORAL_TLS_CERT: f('client.crt') })).toThrow(/TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY/);
    expect(() => parseConfig({ ...base, TEMPORAL_TLS: 'true', TEMPORAL_TLS_KEY: f('client.key') })).toThrow(/TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY/);
    expect(() => parseConfig({ ...base, TEMPORAL_API_KEY: API_KEY })).toThrow(/TEMPORAL_API_KEY: needs TEMPORAL_TLS=true/);
    expect(() => parseConfig({ ...base, TEMPORAL_TLS_CA: f('ca.crt') })).toThrow(/TEMPORAL_TLS: must be true/);
    expect(() => parseConfig({ ...base, TEMPORAL_API_KEY_FROM_VAULT: 'true' })).toThrow(/TEMPORAL_API_KEY_FROM_VAULT: needs TEMPORAL_TLS=true/);
  });

  test('a worker started with an API key and no TLS exits with a configuration error (78) before connecting', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'worker', 'main.ts')], {
      cwd: ROOT,
      env: workerEnv({ TEMPORAL_API_KEY: API_KEY }),
      encoding: 'utf8',
      timeout: 60000,
    });
    expect(r.status).toBe(78);
    expect(r.stderr).toContain('TEMPORAL_API_KEY: needs TEMPORAL_TLS=true');
  });
});

describe('a real worker process through TLS + client certificate + API key', () => {
  test('worker/main.ts with the TEMPORAL_TLS_* variables and the API key from Vault (TEMPORAL_API_KEY_FROM_VAULT) polls through the proxy and runs a workflow', async () => {
    // The operator's step: the key in Vault KV <prefix>/temporal, which the worker's policy may read.
    await vaultRoot().kvPut('authflow/temporal', { api_key: API_KEY });
    // Its own namespace, so the schedules it registers at start and its task queue leave the stack's alone.
    const namespace = `authflow-tls-${randomUUID().slice(0, 8)}`;
    const taskQueue = 'authflow-tls';
    await clients.connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('1 day') });
    await until(`namespace ${namespace}`, () =>
      clients.connection.workflowService.describeNamespace({ namespace }).then(
        () => true,
        () => false,
      ),
    );

    const logPath = f('worker.log');
    const fd = openSync(logPath, 'a');
    worker = spawn(process.execPath, ['--import', 'tsx', '--enable-source-maps', join(ROOT, 'worker', 'main.ts')], {
      cwd: ROOT,
      env: workerEnv({
        TEMPORAL_ADDRESS: `127.0.0.1:${bothProxy.port}`,
        TEMPORAL_NAMESPACE: namespace,
        TEMPORAL_TASK_QUEUE: taskQueue,
        ...tlsEnv({ ...clientCert(), TEMPORAL_API_KEY_FROM_VAULT: 'true' }),
      }),
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    const log = () => (existsSync(logPath) ? readFileSync(logPath, 'utf8') : '');
    await until(
      'the TLS worker to start',
      async () => {
        if (worker!.exitCode !== null) throw new Error(`worker exited (${worker!.exitCode}): ${log().slice(-3000)}`);
        return log().includes('"worker started"');
      },
      120000,
    );
    await until('the worker to poll through the proxy', async () => bothProxy.forwarded.some((p) => p.endsWith('/PollWorkflowTaskQueue')));
    expect(bothProxy.clientNames).toEqual(new Set(['client']));
    expect(bothProxy.refused).toEqual([]);

    // A notification flow on its task queue, started directly on the dev server with the production codec.
    const { email, user } = await registerAndVerify();
    const client = new Client({ connection: clients.connection, namespace, dataConverter: dataConverterWith(clients.codec) });
    const workflowId = `tls-worker-${randomUUID()}`;
    const handle = await client.workflow.start('notificationWorkflow', {
      workflowId,
      taskQueue,
      args: [{ userId: user.id, template: 'password_changed', params: { when: 'the TLS test' } }],
      workflowExecutionTimeout: '60 seconds',
    });
    await expect(handle.result()).resolves.toEqual({ sent: true });
    await waitForMail(email, /password was changed/);
    // Every workflow task was completed by the TLS worker (its identity is <pid>@<host>).
    const events = (await handle.fetchHistory()).events ?? [];
    const identities = new Set(events.map((e) => e.workflowTaskCompletedEventAttributes?.identity).filter(Boolean));
    expect([...identities].every((i) => String(i).startsWith(`${worker!.pid}@`))).toBe(true);
    expect(identities.size).toBeGreaterThan(0);
    expect(bothProxy.forwarded.some((p) => p.endsWith('/RespondWorkflowTaskCompleted'))).toBe(true);
    expect(bothProxy.forwarded.some((p) => p.endsWith('/RespondActivityTaskCompleted'))).toBe(true);
  });
});

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createNetServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as AddressInfo).port;
      srv.close(() => res(port));
    });
  });
}

/** api/main.ts with `env` on a free port; resolves once /healthz answers. */
async function startApi(name: string, env: Record<string, string>): Promise<{ url: string; stop: () => Promise<void> }> {
  const info = stackInfo();
  const port = await freePort();
  const logPath = f(`${name}.log`);
  const fd = openSync(logPath, 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'api', 'main.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...info.serviceEnv,
      VAULT_ROLE_ID: info.roleIds.api,
      VAULT_SECRET_ID_FILE: info.secretIdFiles.api,
      API_HOST: '127.0.0.1',
      API_PORT: String(port),
      ...env,
    },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  apis.push(child);
  const url = `http://127.0.0.1:${port}`;
  await until(
    `${name} to start`,
    async () => {
      if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}): ${readFileSync(logPath, 'utf8').slice(-3000)}`);
      return fetch(`${url}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
    },
    90000,
  );
  return {
    url,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10000);
      await gone;
      clearTimeout(t);
    },
  };
}

describe('the API process through TLS + client certificate + API key', () => {
  test('api/main.ts with the right settings is ready (its Temporal health check went through the proxy); with a wrong key it is not', async () => {
    const before = bothProxy.forwarded.length;
    const good = await startApi('api-tls', { TEMPORAL_ADDRESS: `127.0.0.1:${bothProxy.port}`, ...tlsEnv({ ...clientCert(), TEMPORAL_API_KEY: API_KEY }) });
    try {
      const r = await fetch(`${good.url}/readyz`);
      expect(await r.json()).toMatchObject({ status: 'ok', checks: { temporal: 'ok' } });
      expect(r.status).toBe(200);
      expect(bothProxy.forwarded.slice(before)).toContain('/grpc.health.v1.Health/Check');
    } finally {
      await good.stop();
    }
    const refusedBefore = bothProxy.refused.length;
    const bad = await startApi('api-tls-wrong-key', {
      TEMPORAL_ADDRESS: `127.0.0.1:${bothProxy.port}`,
      ...tlsEnv({ ...clientCert(), TEMPORAL_API_KEY: 'not-the-key' }),
    });
    try {
      const r = await fetch(`${bad.url}/readyz`);
      // Temporal is degradable (the flow outbox keeps requests): ready for sign-ins, degraded.
      expect(r.status).toBe(200);
      const body = (await r.json()) as { status: string; degraded: string[]; checks: Record<string, string> };
      expect([body.status, body.degraded]).toEqual(['degraded', ['temporal']]);
      expect(body.checks.temporal).toMatch(/UNAUTHENTICATED|API key/i);
      expect(bothProxy.refused.length).toBeGreaterThan(refusedBefore);
    } finally {
      await bad.stop();
    }
  });
});
