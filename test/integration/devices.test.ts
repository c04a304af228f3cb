/**
 * Which device a refresh token may be used from, over the real stack: only its own session's
 * device (sessions.device_id), and only while that device is trusted (seen within
 * DEVICE_TRUST_TTL, 90 days by default; the test stack keeps the default). Anything else is a
 * step-up (`401 step_up_required`), never a rotation. Attacker style: a thief holds a refresh token
 * and copies the headers of another of the victim's devices, or of a device the victim stopped
 * using. Covers the one-statement refresh, the locked refresh transaction on its own (services
 * built in this process against the stack's Postgres, Vault and Temporal, without the shortcut),
 * and sessions that have no device recorded.
 */
import { decodeJwt } from 'jose';
import { parseConfig } from '../../platform/config';
import { createSequelize, readDbCredentials } from '../../platform/db';
import { createLogger } from '../../platform/logger';
import { Mailer } from '../../platform/mailer';
import { buildServices } from '../../domain/services';
import { vaultFromConfig } from '../../platform/vault';
import { flowSettings, TemporalFlows } from '../../platform/temporal/flows';
import { stackClients, StackClients } from '../replay/stack-codec';
import { api, query, stackInfo, vaultRoot, waitForMail } from '../helpers/stack';
import { codeFrom, login, registerAndVerify } from '../helpers/users';

const LAPTOP_UA = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';
const PHONE_UA = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36';

let n = 0;
/** Request headers of one device (a client app install with its own X-Device-Id). */
function device(ua: string, lang = 'en-US,en;q=0.9'): Record<string, string> {
  return { 'User-Agent': ua, 'Accept-Language': lang, 'X-Device-Id': `install-${Date.now().toString(36)}-${n++}` };
}

const refresh = (refresh_token: string, headers: Record<string, string>) => api('POST', '/v1/auth/refresh', { body: { refresh_token }, headers });
const sid = (accessToken: string) => decodeJwt(accessToken).sid as string;
const stepUpMail = /Confirm a sign-in from a new device/;

/** A victim signed in on a laptop and on a phone: two sessions, two trusted devices. */
async function victimWithLaptopAndPhone() {
  const u = await registerAndVerify();
  const laptop = device(LAPTOP_UA);
  const phone = device(PHONE_UA, 'de-DE,de;q=0.9');
  const onLaptop = await login(u.email, u.password, laptop);
  const onPhone = await login(u.email, u.password, phone);
  return { ...u, laptop, phone, onLaptop, onPhone };
}

function expectStepUp(r: { status: number; body: any }) {
  expect([r.status, r.body.code]).toEqual([401, 'step_up_required']);
  expect(r.body.verification_id).toMatch(/^vf_/);
  return r.body as { verification_id: string; method: string };
}

async function lastUnknownDeviceReason(userId: string): Promise<string | undefined> {
  const rows = await query("SELECT data FROM audit_events WHERE user_id = $1 AND type = 'refresh.unknown_device' ORDER BY id DESC LIMIT 1", [userId]);
  return rows[0]?.data.reason;
}

const unspent = async (sessionId: string) =>
  (await query('SELECT spent_at FROM refresh_tokens WHERE session_id = $1', [sessionId])).every((r) => r.spent_at === null);
const sessionDevice = async (sessionId: string) => (await query('SELECT device_id FROM sessions WHERE id = $1', [sessionId]))[0].device_id as string | null;
const deviceOf = async (userId: string, ua: string) =>
  (await query('SELECT id FROM device_fingerprints WHERE user_id = $1 AND label = $2', [userId, ua]))[0]?.id as string | undefined;

/** Moves a device's last sighting `days` back (what a device left in a drawer looks like). */
const lastSeenDaysAgo = (deviceId: string, days: number) =>
  query(`UPDATE device_fingerprints SET last_seen_at = now() - make_interval(days => $2) WHERE id = $1`, [deviceId, days]);

describe("a refresh token works only on its own session's device", () => {
  test("a stolen laptop refresh token presented with the headers of the victim's phone needs a step-up, not a rotation", async () => {
    const v = await victimWithLaptopAndPhone();
    const laptopSession = sid(v.onLaptop.access_token);

    const thief = await refresh(v.onLaptop.refresh_token, v.phone);
    expectStepUp(thief);
    expect(thief.body.access_token).toBeUndefined();
    expect(await unspent(laptopSession)).toBe(true);
    expect(await lastUnknownDeviceReason(v.user.id)).toBe('not_session_device');
    // The code goes to the victim, not to the thief.
    await waitForMail(v.email, stepUpMail);

    // Both real devices keep working with their own sessions.
    expect((await refresh(v.onPhone.refresh_token, v.phone)).status).toBe(200);
    expect((await refresh(v.onLaptop.refresh_token, v.laptop)).status).toBe(200);
  });

  test('a verified step-up moves the session onto the new device: the old device then needs a step-up for it', async () => {
    const v = await victimWithLaptopAndPhone();
    const laptopSession = sid(v.onLaptop.access_token);
    const challenge = expectStepUp(await refresh(v.onLaptop.refresh_token, v.phone));
    const code = codeFrom((await waitForMail(v.email, stepUpMail)).text);
    const ok = await api('POST', `/v1/auth/step-up/${challenge.verification_id}`, { body: { code }, headers: v.phone });
    expect(ok.status).toBe(200);
    expect(await sessionDevice(laptopSession)).toBe(await deviceOf(v.user.id, 'Chrome 126 on Android'));

    const fromPhone = await refresh(ok.body.refresh_token, v.phone);
    expect(fromPhone.status).toBe(200);
    expectStepUp(await refresh(fromPhone.body.refresh_token, v.laptop));
    expect(await lastUnknownDeviceReason(v.user.id)).toBe('not_session_device');
  });
});

describe('devices unseen for the trust period', () => {
  test('a device last seen longer ago than the trust period needs a step-up for its own session; a recently seen device still rotates', async () => {
    const v = await victimWithLaptopAndPhone();
    const laptopId = (await deviceOf(v.user.id, 'Firefox 128 on Linux'))!;
    const phoneId = (await deviceOf(v.user.id, 'Chrome 126 on Android'))!;
    // Default trust period: 90 days. The laptop was last seen 91 days ago, the phone 89 days ago.
    await lastSeenDaysAgo(laptopId, 91);
    await lastSeenDaysAgo(phoneId, 89);

    const stale = await refresh(v.onLaptop.refresh_token, v.laptop);
    const challenge = expectStepUp(stale);
    expect(await unspent(sid(v.onLaptop.access_token))).toBe(true);
    expect(await lastUnknownDeviceReason(v.user.id)).toBe('trust_expired');

    const fresh = await refresh(v.onPhone.refresh_token, v.phone);
    expect(fresh.status).toBe(200);
    const list = await api('GET', '/v1/me/devices', { token: fresh.body.access_token });
    expect(list.status).toBe(200);
    const byId = Object.fromEntries(list.body.devices.map((d: { id: string }) => [d.id, d]));
    expect(byId[laptopId]).toMatchObject({ trusted: false, current: false, label: 'Firefox 128 on Linux' });
    expect(byId[phoneId]).toMatchObject({ trusted: true, current: true });

    // The owner confirms with the e-mailed code: the laptop is trusted again and rotates.
    const code = codeFrom((await waitForMail(v.email, stepUpMail)).text);
    const ok = await api('POST', `/v1/auth/step-up/${challenge.verification_id}`, { body: { code }, headers: v.laptop });
    expect(ok.status).toBe(200);
    expect((await refresh(ok.body.refresh_token, v.laptop)).status).toBe(200);
    const after = await api('GET', '/v1/me/devices', { token: ok.body.access_token });
    expect(after.body.devices.find((d: { id: string }) => d.id === laptopId)).toMatchObject({ trusted: true, current: true });
  });

  test('signing in with the password from a device unseen for the trust period trusts it again', async () => {
    const v = await victimWithLaptopAndPhone();
    const laptopId = (await deviceOf(v.user.id, 'Firefox 128 on Linux'))!;
    await lastSeenDaysAgo(laptopId, 120);
    const again = await login(v.email, v.password, v.laptop);
    expect(await sessionDevice(sid(again.access_token))).toBe(laptopId);
    expect((await refresh(again.refresh_token, v.laptop)).status).toBe(200);
    const list = await api('GET', '/v1/me/devices', { token: again.access_token });
    expect(list.body.devices.find((d: { id: string }) => d.id === laptopId)).toMatchObject({ trusted: true });
  });
});

describe('the normal case', () => {
  test("a refresh from the session's own device rotates token after token and marks the device seen", async () => {
    const v = await victimWithLaptopAndPhone();
    const laptopId = (await deviceOf(v.user.id, 'Firefox 128 on Linux'))!;
    await lastSeenDaysAgo(laptopId, 30);
    let token = v.onLaptop.refresh_token;
    for (let i = 0; i < 3; i++) {
      const r = await refresh(token, v.laptop);
      expect(r.status).toBe(200);
      expect(sid(r.body.access_token)).toBe(sid(v.onLaptop.access_token));
      token = r.body.refresh_token;
    }
    const seen = (await query("SELECT now() - last_seen_at < interval '1 minute' AS recent FROM device_fingerprints WHERE id = $1", [laptopId]))[0];
    expect(seen.recent).toBe(true);
    expect(await sessionDevice(sid(v.onLaptop.access_token))).toBe(laptopId);
  });
});

describe('sessions without a recorded device', () => {
  /** A session as written before devices were bound to sessions: device_id null. */
  async function unboundSession(opts: { forgetDevices: boolean }) {
    const u = await registerAndVerify();
    const laptop = device(LAPTOP_UA);
    const tokens = await login(u.email, u.password, laptop);
    const sessionId = sid(tokens.access_token);
    await query('UPDATE sessions SET device_id = NULL WHERE id = $1', [sessionId]);
    if (opts.forgetDevices) await query('DELETE FROM device_fingerprints WHERE user_id = $1', [u.user.id]);
    return { ...u, laptop, tokens, sessionId };
  }

  test('of a user without any device, it is bound to the first device that refreshes it; another device then needs a step-up', async () => {
    const s = await unboundSession({ forgetDevices: true });
    const first = await refresh(s.tokens.refresh_token, s.laptop);
    expect(first.status).toBe(200);
    const bound = await sessionDevice(s.sessionId);
    expect(bound).toBe(await deviceOf(s.user.id, 'Firefox 128 on Linux'));

    expectStepUp(await refresh(first.body.refresh_token, device(PHONE_UA)));
    expect(await lastUnknownDeviceReason(s.user.id)).toBe('not_session_device');
    expect((await refresh(first.body.refresh_token, s.laptop)).status).toBe(200);
  });

  test('of a user who has trusted devices, it needs a step-up even with the headers of one of them', async () => {
    const s = await unboundSession({ forgetDevices: false });
    const r = await refresh(s.tokens.refresh_token, s.laptop);
    const challenge = expectStepUp(r);
    expect(await lastUnknownDeviceReason(s.user.id)).toBe('session_without_device');
    expect(await unspent(s.sessionId)).toBe(true);

    // The verified step-up binds the session to that device.
    const code = codeFrom((await waitForMail(s.email, stepUpMail)).text);
    const ok = await api('POST', `/v1/auth/step-up/${challenge.verification_id}`, { body: { code }, headers: s.laptop });
    expect(ok.status).toBe(200);
    expect(await sessionDevice(s.sessionId)).toBe(await deviceOf(s.user.id, 'Firefox 128 on Linux'));
    expect((await refresh(ok.body.refresh_token, s.laptop)).status).toBe(200);
  });
});

describe('the locked refresh transaction on its own', () => {
  // The API tries a one-statement rotation first; these services have that shortcut switched off,
  // so every refresh goes through the locked transaction and its device check.
  let clients: StackClients;
  let services: Awaited<ReturnType<typeof buildServices>>;
  let close: () => Promise<void>;

  beforeAll(async () => {
    const info = stackInfo();
    const config = parseConfig({
      ...info.serviceEnv,
      VAULT_ROLE_ID: info.roleIds.api,
      VAULT_SECRET_ID: await vaultRoot().secretId('authflow-api'),
      LOG_LEVEL: 'silent',
    });
    const logger = createLogger('silent', 'devices-test');
    const vault = vaultFromConfig(config, logger);
    await vault.start();
    const sequelize = createSequelize(config, await readDbCredentials(vault));
    const mailer = new Mailer(config, vault);
    clients = await stackClients(info);
    const flows = new TemporalFlows(clients.client, flowSettings(config));
    services = await buildServices({ config, logger, vault, sequelize, mailer, close: () => Promise.resolve() }, flows, { oneStatementRefresh: false });
    close = async () => {
      services.keys.stop();
      mailer.close();
      await sequelize.close();
      vault.stop();
      await clients.close();
    };
  });
  afterAll(async () => {
    await close?.();
  });

  const meta = (h: Record<string, string>) => ({
    ip: '127.0.0.1',
    userAgent: h['User-Agent'],
    acceptLanguage: h['Accept-Language'],
    deviceId: h['X-Device-Id'],
  });
  const outcome = (p: Promise<{ refresh_token: string }>) =>
    p.then(
      (t) => ({ ok: true as const, token: t.refresh_token, code: undefined }),
      (err: { code?: string }) => ({ ok: false as const, token: undefined, code: err.code }),
    );

  test('decides like the one-statement refresh: own device rotates; another device of the user and a device unseen too long need a step-up', async () => {
    const v = await victimWithLaptopAndPhone();

    const own = await outcome(services.sessions.refresh(v.onLaptop.refresh_token, meta(v.laptop)));
    expect(own).toMatchObject({ ok: true });

    const otherDevice = await outcome(services.sessions.refresh(own.token!, meta(v.phone)));
    expect(otherDevice).toMatchObject({ ok: false, code: 'step_up_required' });
    expect(await lastUnknownDeviceReason(v.user.id)).toBe('not_session_device');

    await lastSeenDaysAgo((await deviceOf(v.user.id, 'Chrome 126 on Android'))!, 91);
    const stale = await outcome(services.sessions.refresh(v.onPhone.refresh_token, meta(v.phone)));
    expect(stale).toMatchObject({ ok: false, code: 'step_up_required' });
    expect(await lastUnknownDeviceReason(v.user.id)).toBe('trust_expired');

    // The laptop's rotated token still works from the laptop (the denied attempt spent nothing).
    expect(await outcome(services.sessions.refresh(own.token!, meta(v.laptop)))).toMatchObject({ ok: true });
  });
});
