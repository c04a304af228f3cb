/**
 * What a recorded history may contain. Used by the recorder (refuses to write a leaking file) and
 * by the replay test (fails on a committed one):
 * - every payload is encrypted, except search attributes (ids and flow names, plaintext by design);
 * - no e-mail address, access token (JWT) or the test password anywhere in the file;
 * - decrypted with the fixture key, no payload carries an e-mail address, a JWT, the test password,
 *   or a field named like a secret (password, code, token, secret, email).
 */
import type { Payload } from '@temporalio/common';
import { isEncrypted, payloadFromJson } from '../../platform/temporal/payload-codec';
import { GOOD_PASSWORD } from '../helpers/users';
import { fixtureCodec, RecordedHistory } from './histories';

const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/;
const JWT = /eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}/;
const SECRET_KEYS = /^(password|new_password|current_password|code|otp|token|access_token|refresh_token|mfa_token|secret|secret_id|email|to)$/i;

interface Found {
  path: string;
  payload: Payload;
}

function walk(node: unknown, path: string, out: Found[]) {
  if (Array.isArray(node)) {
    node.forEach((n, i) => walk(n, `${path}[${i}]`, out));
    return;
  }
  if (!node || typeof node !== 'object') return;
  const m = (node as { metadata?: Record<string, unknown> }).metadata;
  if (m && typeof m === 'object' && typeof m.encoding === 'string') {
    out.push({ path, payload: payloadFromJson(node) });
    return;
  }
  for (const [k, v] of Object.entries(node)) walk(v, path ? `${path}.${k}` : k, out);
}

function secretKeysIn(value: unknown, path = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => secretKeysIn(v, `${path}[${i}]`));
  if (!value || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => [...(SECRET_KEYS.test(k) ? [`${path}.${k}`] : []), ...secretKeysIn(v, `${path}.${k}`)]);
}

function textProblems(text: string, where: string): string[] {
  const p: string[] = [];
  const e = EMAIL.exec(text);
  if (e) p.push(`${where}: an e-mail address (${e[0].replace(/^[^@]{0,3}[^@]*@/, '…@')})`);
  if (JWT.test(text)) p.push(`${where}: a JWT`);
  if (text.includes(GOOD_PASSWORD)) p.push(`${where}: the test password`);
  return p;
}

export async function checkHistoryContent(file: RecordedHistory): Promise<string[]> {
  const problems: string[] = [];
  // Worker identities are `pid@hostname`; a dotted host name is not an address.
  const text = JSON.stringify(file, (k, v) => (k === 'identity' ? undefined : v));
  problems.push(...textProblems(text, 'file'));
  const found: Found[] = [];
  walk(file.history, '', found);
  const codec = fixtureCodec();
  for (const { path, payload } of found) {
    if (!isEncrypted(payload)) {
      if (!/\.searchAttributes\.indexedFields\./.test(path)) problems.push(`${path}: payload is not encrypted`);
      continue;
    }
    let plain: Payload;
    try {
      [plain] = await codec.decode([payload]);
    } catch (err) {
      problems.push(`${path}: does not decrypt with the fixture key (${(err as Error).message})`);
      continue;
    }
    const content = Buffer.from(plain.data ?? []).toString('utf8');
    problems.push(...textProblems(content, path));
    try {
      const keys = secretKeysIn(JSON.parse(content));
      if (keys.length) problems.push(`${path}: secret-looking field(s) ${keys.join(', ')}`);
    } catch {
      /* not JSON (binary/null, binary/plain) */
    }
  }
  return problems;
}
