/** API process: Vault login, database, signing keys, a lazy Temporal client (the API starts even
 * while Temporal is down; /readyz says so), then Koa. Graceful shutdown on SIGTERM/SIGINT.
 * With API_PROCESSES=N > 1 this process is a cluster primary that runs N such processes sharing the
 * port (api/cluster.ts). */
import cluster from 'node:cluster';
import { loadConfig } from '../platform/config';
import { runPrimary } from './cluster';
import { Client, Connection } from '@temporalio/client';
import { AesGcmPayloadCodec } from '../platform/temporal/payload-codec';
import { dataConverterWith } from '../platform/temporal/data-converter';
import { CodecKeyRing } from '../platform/temporal/codec-keys';
import { temporalConnectionOptions, withTemporalApiKeyFromVault } from '../platform/temporal/connection';
import { buildServices } from '../domain/services';
import { audit } from '../domain/audit';
import { createRuntime, retrying } from '../platform/runtime';
import { flowSettings, TemporalFlows } from '../platform/temporal/flows';
import { readinessChecks } from '../platform/health';
import { FlowOutboxGauges, OpsStatusGauges, RevocationFeedGauges } from '../platform/metrics';
import { flowEventHandler } from './flow-relay';
import { createServer } from './server';
import { buildProvider, loadProviderModule, ProviderHolder } from './oidc/provider';
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import type { Logger } from '../platform/logger';

/**
 * One HTTP server per address of API_HOST (a comma-separated list: the dev stack listens on both
 * loopbacks, 127.0.0.1 and ::1, so `localhost` works whichever one a client resolves). The first
 * address must bind; a later one that this host does not have (no IPv6) is logged and skipped.
 */
async function listenOnEach(handler: RequestListener, hosts: string[], port: number, logger: Logger): Promise<Server[]> {
  const servers: Server[] = [];
  for (const [i, host] of hosts.entries()) {
    const server = createHttpServer(handler);
    server.keepAliveTimeout = 65000;
    try {
      await new Promise<void>((done, fail) => {
        server.once('error', fail);
        server.listen(port, host, () => {
          server.off('error', fail);
          done();
        });
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (i === 0 || (code !== 'EADDRNOTAVAIL' && code !== 'EAFNOSUPPORT')) throw err;
      logger.warn({ host, code }, 'api address not available on this host; skipped');
      continue;
    }
    logger.info({ url: `http://${host.includes(':') ? `[${host}]` : host}:${port}` }, 'api listening');
    servers.push(server);
  }
  return servers;
}

async function main() {
  const rt = await createRuntime('authflow-api', loadConfig());
  const { config, logger } = rt;
  const temporalConfig = await retrying('temporal api key', logger, () => withTemporalApiKeyFromVault(config, rt.vault));
  const connection = Connection.lazy({ ...temporalConnectionOptions(temporalConfig), connectTimeout: 3000 });
  // Payload codec keys: the worker creates them on a fresh install; the API reads them (in the
  // background, so it starts before the worker has) and encrypts what it sends to Temporal.
  const codecKeys = new CodecKeyRing(rt.vault, logger.child({ component: 'codec' }));
  codecKeys.loadInBackground(config.CODEC_KEY_REFRESH_SECONDS * 1000);
  // What the client reads must be encrypted (plaintext is refused); the codec endpoint, which the
  // Temporal UI hands every payload it shows (Temporal's own plaintext ones too), passes it through.
  const temporal = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE, dataConverter: dataConverterWith(new AesGcmPayloadCodec(codecKeys)) });
  const payloadCodec = new AesGcmPayloadCodec(codecKeys, { plaintext: 'pass' });
  const flows = new TemporalFlows(temporal, flowSettings(config));
  const services = await buildServices(rt, flows);
  services.revocations.start();
  new RevocationFeedGauges(() => services.revocations.state());
  new OpsStatusGauges(() => services.ops.status());
  // The flow outbox relay runs here, beside the Temporal client the API already holds (docs/workflows.md).
  services.flowOutbox.startRelay(
    flowEventHandler(flows, services, {
      acceptWithinMs: Math.min(3000, config.FLOW_OUTBOX_CALL_TIMEOUT_MS),
      webhookRetry: { retryForSeconds: config.WEBHOOK_RETRY_SECONDS, initialRetrySeconds: config.WEBHOOK_RETRY_INITIAL_SECONDS },
    }),
  );
  new FlowOutboxGauges(services.flowOutbox);
  const readiness = readinessChecks({
    sequelize: rt.sequelize,
    vault: rt.vault,
    temporal: connection,
    signingKeysLoaded: () => {
      try {
        services.keys.signingKey();
        return true;
      } catch {
        return false;
      }
    },
  });
  // The OpenID provider: rebuilt when the key ring's key set changes (rotation).
  const oidcModule = await loadProviderModule();
  let cookieKeys = await retrying('oidc cookie keys', logger, () => services.oidcCookieKeys.load());
  const oidc = new ProviderHolder(() =>
    buildProvider(oidcModule, {
      config,
      logger: logger.child({ component: 'oidc' }),
      store: services.oidcStore,
      clients: services.clients,
      accounts: services.accounts,
      providerJwks: () => services.keys.providerJwks(),
      cookieKeys,
      audit: (type, userId, data) => audit(undefined, type, userId, {}, data),
    }),
  );
  // A rotation changes the signing keys and the cookie keys: re-read those, then rebuild (if Vault
  // does not answer, the provider is rebuilt with the cookie keys it had, which still verify).
  services.keys.onChange(() => {
    void services.oidcCookieKeys
      .load()
      .then((k) => (cookieKeys = k))
      .catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'cannot re-read the provider cookie keys; keeping the ones loaded'))
      .finally(() => {
        oidc.rebuild();
        logger.info('openid provider rebuilt with the new key set');
      });
  });
  const cleanup = setInterval(() => void services.oidcStore.deleteExpired().catch(() => undefined), 60_000);
  cleanup.unref();
  const app = createServer({ config, logger, ...services, flows, payloadCodec, readiness }, oidc);
  const handle = app.callback();
  const servers = await listenOnEach((req, res) => void handle(req, res), config.API_HOST, config.API_PORT, logger);
  const stop = () => {
    logger.info('api shutting down');
    services.keys.stop();
    void services.revocations.stop();
    codecKeys.stop();
    void Promise.all(servers.map((server) => new Promise<void>((done) => server.close(() => done())))).then(async () => {
      await services.flowOutbox.stop();
      await connection.close().catch(() => undefined);
      await rt.close();
      process.exit(0);
    });
    setTimeout(() => process.exit(0), 10000).unref();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

function start(): Promise<void> {
  const processes = cluster.isPrimary ? loadConfig().API_PROCESSES : 1;
  return processes > 1 ? runPrimary(processes, loadConfig().LOG_LEVEL) : main();
}

start().catch((err) => {
  process.stderr.write(`api failed to start: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
