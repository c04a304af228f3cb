/** SMTP_REQUIRE_TLS against a minimal SMTP relay (a net server in the test) that offers no
 * STARTTLS: the send fails before any envelope or message leaves in clear. Also: connections are
 * pooled (one for several messages), and SMTP_SECURE speaks TLS first and checks the certificate. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { Mailer } from '../../../platform/mailer';
import { selfSignedCert } from '../../helpers/webhook-tls';
import type { VaultClient } from '../../../platform/vault';

/** Speaks just enough SMTP (EHLO without STARTTLS, MAIL, RCPT, DATA) and records every command. */
function plainRelay(): Promise<{ server: Server; port: number; received: string[]; connections: number }> {
  const received: string[] = [];
  let connections = 0;
  const server = createServer((sock) => {
    connections++;
    let inData = false;
    let buf = '';
    sock.write('220 relay.test ESMTP\r\n');
    sock.on('data', (chunk) => {
      buf += chunk.toString('utf8');
      let i: number;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        received.push(line);
        if (inData) {
          if (line === '.') {
            inData = false;
            sock.write('250 queued\r\n');
          }
          continue;
        }
        const cmd = line.slice(0, 4).toUpperCase();
        if (cmd === 'EHLO') sock.write('250-relay.test\r\n250 8BITMIME\r\n');
        else if (cmd === 'HELO' || cmd === 'MAIL' || cmd === 'RCPT' || cmd === 'RSET' || cmd === 'NOOP') sock.write('250 ok\r\n');
        else if (cmd === 'DATA') {
          inData = true;
          sock.write('354 go ahead\r\n');
        } else if (cmd === 'QUIT') sock.end('221 bye\r\n');
        else sock.write('502 not implemented\r\n');
      }
    });
    sock.on('error', () => undefined);
  });
  return new Promise((res) =>
    server.listen(0, '127.0.0.1', () =>
      res({
        server,
        port: (server.address() as AddressInfo).port,
        received,
        get connections() {
          return connections;
        },
      }),
    ),
  );
}

const vault = { kvGet: () => Promise.resolve(null) } as unknown as VaultClient;
const message = { to: 'victim@example.test', subject: 'Your code', text: 'code: 12345678' };

describe('SMTP_REQUIRE_TLS', () => {
  let relay: Awaited<ReturnType<typeof plainRelay>>;
  beforeEach(async () => {
    relay = await plainRelay();
  });
  afterEach(async () => {
    await new Promise((r) => relay.server.close(r));
  });

  const mailer = (requireTls: boolean) =>
    new Mailer({ SMTP_HOST: '127.0.0.1', SMTP_PORT: relay.port, SMTP_SECURE: false, SMTP_REQUIRE_TLS: requireTls, MAIL_FROM: 'a@authflow.test' }, vault);

  test('true: a relay without STARTTLS fails the send and sees no envelope or message', async () => {
    const m = mailer(true);
    await expect(m.send(message)).rejects.toMatchObject({ code: 'dependency_unavailable' });
    m.close();
    expect(relay.received.some((l) => /^EHLO/i.test(l))).toBe(true);
    expect(relay.received.filter((l) => /^(MAIL|RCPT|DATA)/i.test(l) || l.includes('12345678'))).toEqual([]);
  });

  test('false (the dev default): the same relay gets the message in clear', async () => {
    const m = mailer(false);
    await expect(m.send(message)).resolves.toEqual(expect.any(String));
    m.close();
    expect(relay.received.some((l) => l.includes('12345678'))).toBe(true);
  });
});

test('several messages share one pooled connection (one greeting, one EHLO)', async () => {
  const relay = await plainRelay();
  const m = new Mailer({ SMTP_HOST: '127.0.0.1', SMTP_PORT: relay.port, SMTP_SECURE: false, SMTP_REQUIRE_TLS: false, MAIL_FROM: 'a@authflow.test' }, vault);
  for (let i = 0; i < 3; i++) await m.send({ ...message, to: `r${i}@example.test` });
  m.close();
  await new Promise((r) => relay.server.close(r));
  expect(relay.received.filter((l) => /^DATA/i.test(l))).toHaveLength(3);
  expect(relay.connections).toBe(1);
  expect(relay.received.filter((l) => /^EHLO/i.test(l))).toHaveLength(1);
});

test('SMTP_SECURE: TLS from the first byte, and a relay whose certificate is not trusted gets nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smtp-tls-'));
  selfSignedCert(dir, { cn: '127.0.0.1' }, 1);
  let plaintext = '';
  let handshakes = 0;
  const server = createTlsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (sock) => {
    handshakes++;
    sock.on('data', (d) => (plaintext += d.toString('utf8')));
  });
  server.on('tlsClientError', () => undefined);
  const port = await new Promise<number>((res) => server.listen(0, '127.0.0.1', () => res((server.address() as AddressInfo).port)));
  const m = new Mailer({ SMTP_HOST: '127.0.0.1', SMTP_PORT: port, SMTP_SECURE: true, MAIL_FROM: 'a@authflow.test' }, vault);
  const err = await m.send(message).catch((e: unknown) => e);
  m.close();
  await new Promise((res) => server.close(res));
  expect(err).toMatchObject({ code: 'dependency_unavailable' });
  expect((err as { cause?: Error }).cause?.message ?? '').toMatch(/certificate/i);
  expect(handshakes).toBe(0);
  expect(plaintext).toBe('');
}, 20000);
