/**
 * OpenID Connect test helpers: a real relying party (openid-client in test/helpers/rp-child.mts,
 * a process of its own because it is ESM-only), clients registered the way an admin would, and a
 * sign-in driver that walks the hosted pages over HTTP with a cookie jar, as a browser does
 * without script (the browser tests drive Chromium through the same pages).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const ROOT = join(__dirname, '..', '..');

export interface RpError {
  name?: string;
  message?: string;
  code?: string;
  error?: string;
  error_description?: string;
  status?: number;
}

export class RpCallError extends Error {
  constructor(readonly rp: RpError) {
    super(`${rp.name ?? 'Error'}: ${rp.error ?? rp.code ?? ''} ${rp.error_description ?? rp.message ?? ''}`);
  }
}

/** The relying party process. `call` rejects with RpCallError carrying the OAuth error. */
export class RelyingParty {
  private child: ChildProcessWithoutNullStreams;
  private pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  private seq = 0;
  private stderr = '';

  constructor() {
    this.child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test', 'helpers', 'rp-child.mts')], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      let msg: { id: number; ok: boolean; result?: unknown; error?: RpError };
      try {
        msg = JSON.parse(line);
      } catch {
        return;
      }
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new RpCallError(msg.error ?? {}));
    });
    this.child.on('exit', () => {
      for (const p of this.pending.values()) p.reject(new Error(`relying party exited: ${this.stderr.slice(-2000)}`));
      this.pending.clear();
    });
  }

  call<T = any>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin.write(`${JSON.stringify({ id, op, args })}\n`);
    });
  }

  /** The OAuth error a call fails with (fails the test when it succeeds). */
  async refused(op: string, args: Record<string, unknown> = {}): Promise<RpError> {
    try {
      await this.call(op, args);
    } catch (err) {
      if (err instanceof RpCallError) return err.rp;
      throw err;
    }
    throw new Error(`${op} succeeded but should have been refused`);
  }

  close(): void {
    this.child.stdin.end();
    this.child.kill();
  }
}

/** A cookie jar for fetch (one browser profile). */
export class CookieJar {
  private cookies = new Map<string, string>();

  store(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(c) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  names(): string[] {
    return [...this.cookies.keys()];
  }
}

export interface Page {
  status: number;
  url: string;
  html: string;
  headers: Headers;
}

/** A browser without script: follows redirects itself (keeping cookies) until it leaves the server or lands on a page. */
export class FormBrowser {
  readonly jar = new CookieJar();
  constructor(readonly userAgent = 'Mozilla/5.0 (X11; Linux x86_64) AuthflowTest/1.0') {}

  /** Follows redirects from `url`; stops at a page or at a redirect to `stopAt` (returned as `url`). */
  async go(url: string, init: RequestInit = {}, stopAt?: string): Promise<Page> {
    let current = url;
    let req: RequestInit = init;
    for (let hops = 0; hops < 20; hops++) {
      if (stopAt && current.startsWith(stopAt)) return { status: 0, url: current, html: '', headers: new Headers() };
      const res = await fetch(current, {
        ...req,
        redirect: 'manual',
        headers: { 'User-Agent': this.userAgent, Cookie: this.jar.header(), ...(req.headers as Record<string, string>) },
      });
      this.jar.store(res);
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        current = new URL(location, current).href;
        req = {};
        continue;
      }
      return { status: res.status, url: current, html: await res.text(), headers: res.headers };
    }
    throw new Error('too many redirects');
  }

  /** Submits the page's form whose action ends with `/step`, with its hidden fields and `fields`. */
  async submit(page: Page, step: string, fields: Record<string, string>, stopAt?: string): Promise<Page> {
    const form = findForm(page.html, step);
    if (!form) throw new Error(`no form for ${step} on ${page.url}: ${page.html.slice(0, 500)}`);
    const body = new URLSearchParams({ ...form.hidden, ...fields });
    return this.go(
      new URL(form.action, page.url).href,
      { method: 'POST', body: body.toString(), headers: { 'Content-Type': 'application/x-www-form-urlencoded' } },
      stopAt,
    );
  }
}

const decode = (s: string) =>
  s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

export function findForm(html: string, step: string): { action: string; hidden: Record<string, string> } | undefined {
  for (const m of html.matchAll(/<form[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/g)) {
    const action = decode(m[1]);
    if (!action.endsWith(step) && action !== step.replace(/^\//, '')) continue;
    const hidden: Record<string, string> = {};
    for (const h of m[2].matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) hidden[h[1]] = decode(h[2]);
    return { action, hidden };
  }
  return undefined;
}

/** The heading of a hosted page (which step it is). */
export const heading = (html: string) => /<h1>([^<]*)<\/h1>/.exec(html)?.[1] ?? '';
export const alert = (html: string) => decode(/<p role="alert"[^>]*>([^<]*)<\/p>/.exec(html)?.[1] ?? '');
