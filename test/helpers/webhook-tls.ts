/**
 * Test certificates (`selfSignedCert`), and the test webhook receiver's TLS: a self-signed certificate for localhost, made with openssl
 * before the stack starts (test/global-setup.ts, test/replay/record.ts), trusted by the worker
 * through WEBHOOK_CA_FILE; `startReceiver` serves HTTPS with it and records what it gets.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export const webhookTlsDir = (dataDir: string) => join(dataDir, 'webhook-tls');

/** A self-signed EC certificate (key.pem, cert.pem) for `subject` in `dir`, made with openssl; throws when openssl fails. */
export function selfSignedCert(dir: string, subject: { cn: string; san?: string }, days = 7): { key: string; cert: string } {
  mkdirSync(dir, { recursive: true });
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', String(days), '-subj', `/CN=${subject.cn}`];
  if (subject.san) args.push('-addext', `subjectAltName=${subject.san}`);
  const r = spawnSync('openssl', [...args, '-keyout', key, '-out', cert], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl could not make a test certificate: ${r.stderr || r.error}`);
  return { key, cert };
}

/** Makes the receiver's key and certificate under `<dataDir>/webhook-tls`; returns the service settings that trust it. */
export function webhookTlsEnv(dataDir: string): Record<string, string> {
  const { cert } = selfSignedCert(webhookTlsDir(dataDir), { cn: 'localhost', san: 'DNS:localhost' });
  return { WEBHOOK_CA_FILE: cert, WEBHOOK_PRIVATE_HOSTS: 'localhost' };
}

export interface Received {
  headers: Record<string, string>;
  body: string;
  at: number;
}

/** An HTTPS receiver on localhost: answers `status()` for each request (default 204) and keeps every request. */
export async function startReceiver(
  dataDir: string,
  status: (n: number) => number = () => 204,
): Promise<{ url: string; received: Received[]; close(): Promise<void>; server: Server }> {
  const dir = webhookTlsDir(dataDir);
  const received: Received[] = [];
  const server = createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers as Record<string, string>, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      res.statusCode = status(received.length);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { url: `https://localhost:${port}/hooks/authflow`, received, server, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
