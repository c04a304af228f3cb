/**
 * A relying party made of openid-client (the certified RP library, ESM-only) in a process of its
 * own, driven by the Jest tests over stdin/stdout, one JSON request per line: Jest runs CommonJS,
 * so the tests keep their assertions and this process keeps the real client. Configurations and
 * DPoP keys stay here, named by the ids it hands out.
 */
import { createInterface } from 'node:readline';
import * as client from 'openid-client';

const configs = new Map<string, client.Configuration>();
const dpopKeys = new Map<string, client.CryptoKeyPair>();
let next = 0;

type Args = Record<string, unknown>;

function auth(method: string, secret?: string): client.ClientAuth {
  if (method === 'client_secret_basic') return client.ClientSecretBasic(secret);
  if (method === 'client_secret_post') return client.ClientSecretPost(secret);
  return client.None();
}

function config(id: unknown): client.Configuration {
  const c = configs.get(String(id));
  if (!c) throw new Error(`no configuration ${String(id)}`);
  return c;
}

function dpop(a: Args): { DPoP?: client.DPoPHandle } {
  if (!a.dpopKey) return {};
  const key = dpopKeys.get(String(a.dpopKey));
  if (!key) throw new Error(`no DPoP key ${String(a.dpopKey)}`);
  return { DPoP: client.getDPoPHandle(config(a.config), key) };
}

/** What a token response holds, as JSON (with the verified id token's claims). */
function tokens(t: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers) {
  return { ...t, claims: t.claims() ?? null };
}

const ops: Record<string, (a: Args) => Promise<unknown>> = {
  async discover(a) {
    const c = await client.discovery(
      new URL(String(a.issuer)),
      String(a.clientId),
      (a.metadata as Partial<client.ClientMetadata>) ?? {},
      auth(String(a.authMethod ?? 'none'), a.clientSecret as string | undefined),
      {
        execute: [client.allowInsecureRequests],
      },
    );
    const id = `c${next++}`;
    configs.set(id, c);
    return { id, server: c.serverMetadata() };
  },
  async pkce() {
    const verifier = client.randomPKCECodeVerifier();
    return { verifier, challenge: await client.calculatePKCECodeChallenge(verifier), state: client.randomState(), nonce: client.randomNonce() };
  },
  async dpopKey() {
    const id = `k${next++}`;
    dpopKeys.set(id, await client.randomDPoPKeyPair('ES256'));
    return { id };
  },
  async authorizationUrl(a) {
    return client.buildAuthorizationUrl(config(a.config), a.params as Record<string, string>).href;
  },
  async codeGrant(a) {
    const t = await client.authorizationCodeGrant(
      config(a.config),
      new URL(String(a.callbackUrl)),
      a.checks as client.AuthorizationCodeGrantChecks,
      undefined,
      dpop(a),
    );
    return tokens(t);
  },
  async refreshGrant(a) {
    return tokens(await client.refreshTokenGrant(config(a.config), String(a.refreshToken), a.params as Record<string, string> | undefined, dpop(a)));
  },
  async clientCredentials(a) {
    return tokens(await client.clientCredentialsGrant(config(a.config), a.params as Record<string, string> | undefined, dpop(a)));
  },
  async revoke(a) {
    await client.tokenRevocation(config(a.config), String(a.token), a.params as Record<string, string> | undefined);
    return { revoked: true };
  },
  async introspect(a) {
    return client.tokenIntrospection(config(a.config), String(a.token));
  },
  async userinfo(a) {
    return client.fetchUserInfo(config(a.config), String(a.accessToken), String(a.sub), dpop(a));
  },
  async endSessionUrl(a) {
    return client.buildEndSessionUrl(config(a.config), a.params as Record<string, string>).href;
  },
};

function describeError(err: unknown) {
  const e = err as { name?: string; message?: string; code?: string; error?: string; error_description?: string; status?: number; cause?: unknown };
  // A 401 with WWW-Authenticate arrives as challenges (openid-client's WWWAuthenticateChallengeError).
  const challenge = Array.isArray(e.cause) ? (e.cause[0] as { parameters?: Record<string, string> } | undefined)?.parameters : undefined;
  const body = !Array.isArray(e.cause) && e.cause && typeof e.cause === 'object' ? (e.cause as Record<string, unknown>) : undefined;
  return {
    name: e.name,
    message: e.message,
    code: e.code,
    error: e.error ?? challenge?.error ?? (typeof body?.error === 'string' ? body.error : undefined),
    error_description: e.error_description ?? challenge?.error_description,
    status: e.status,
  };
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  let req: { id: number; op: string; args: Args };
  try {
    req = JSON.parse(line);
  } catch {
    return;
  }
  const op = ops[req.op];
  const run = op ? op(req.args ?? {}) : Promise.reject(new Error(`unknown op ${req.op}`));
  run.then(
    (result) => process.stdout.write(`${JSON.stringify({ id: req.id, ok: true, result })}\n`),
    (err: unknown) => process.stdout.write(`${JSON.stringify({ id: req.id, ok: false, error: describeError(err) })}\n`),
  );
});
lines.on('close', () => process.exit(0));
