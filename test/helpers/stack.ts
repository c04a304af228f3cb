/** What integration tests use to reach the stack that global setup started. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client as PgClient } from 'pg';
import type { StackInfo } from '../../infra/stack/stack';
import { VaultAdmin } from '../../infra/stack/vault-admin';

const ROOT = join(__dirname, '..', '..');

export function stackInfo(): StackInfo {
  const file = process.env.AUTHFLOW_STACK_FILE ?? join(ROOT, '.data', 'test', 'stack.json');
  return JSON.parse(readFileSync(file, 'utf8'));
}

export const apiUrl = () => stackInfo().urls.api;

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

/** JSON request to the API; returns status, headers and the parsed body. */
export async function api<T = any>(
  method: string,
  path: string,
  opts: { body?: unknown; token?: string; headers?: Record<string, string>; raw?: string } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.body !== undefined || opts.raw !== undefined) headers['Content-Type'] ??= 'application/json';
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  const res = await fetch(`${apiUrl()}${path}`, { method, headers, body: opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body)) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  return { status: res.status, headers: res.headers, body: body as T };
}

/** GET /metrics with the stack's METRICS_TOKEN (test/env/metrics.json). */
export async function metricsText(url = stackInfo().urls.api): Promise<string> {
  const res = await fetch(`${url}/metrics`, { headers: { Authorization: `Bearer ${stackInfo().serviceEnv.METRICS_TOKEN}` } });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}

export async function pg(): Promise<PgClient> {
  const c = new PgClient({ connectionString: stackInfo().pgSuperuserUrl.replace(/\/postgres$/, '/authflow') });
  await c.connect();
  return c;
}

/** One SQL statement against the service database as the superuser; returns the rows. */
export async function query<T = any>(sql: string, params: unknown[] = []): Promise<T[]> {
  const c = await pg();
  try {
    return (await c.query(sql, params)).rows as T[];
  } finally {
    await c.end();
  }
}

export function vaultRoot(): VaultAdmin {
  const info = stackInfo();
  const init = JSON.parse(readFileSync(info.vaultInitFile, 'utf8'));
  return new VaultAdmin(info.urls.vault, init.root_token);
}

export function unsealKeys(): string[] {
  return JSON.parse(readFileSync(stackInfo().vaultInitFile, 'utf8')).keys_base64;
}

export interface Mail {
  id: string;
  subject: string;
  text: string;
  to: Array<{ address: string }>;
  headers: Record<string, string>;
  date: string;
}

export async function mails(): Promise<Mail[]> {
  const res = await fetch(`${stackInfo().urls.mailUi}/email`);
  return (await res.json()) as Mail[];
}

/** Waits until an e-mail to `address` matching `subject` arrives; returns it. */
export async function waitForMail(address: string, subject?: RegExp, timeoutMs = 20000, after = 0): Promise<Mail> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const found = (await mails()).filter((m) => m.to.some((t) => t.address.toLowerCase() === address.toLowerCase()) && (!subject || subject.test(m.subject)));
    if (found.length > after) return found[found.length - 1];
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no e-mail to ${address}${subject ? ` matching ${subject}` : ''} within ${timeoutMs} ms`);
}

export async function mailsTo(address: string, subject?: RegExp): Promise<Mail[]> {
  return (await mails()).filter((m) => m.to.some((t) => t.address.toLowerCase() === address.toLowerCase()) && (!subject || subject.test(m.subject)));
}

let counter = 0;
export const uniqueEmail = (tag = 'user') =>
  `${tag}.${Date.now().toString(36)}${(counter++).toString(36)}${Math.random().toString(36).slice(2, 6)}@example.test`;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value (which it returns), or fails naming `what`. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}
