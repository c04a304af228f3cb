/**
 * The hosted pages' rendering: one layout, HTML escaping of every value, the security headers
 * every page carries, and the form body reader. Pages are server-rendered and work without
 * JavaScript; they load nothing but their own stylesheet.
 *
 * Headers: a strict CSP (no script at all, styles only from our origin, forms post only to us,
 * no framing), `Referrer-Policy: no-referrer` (a page opened from an e-mail link has the token in
 * its URL: no request it makes may carry that URL elsewhere), no caching.
 */
import type Koa from 'koa';
import { AppError } from '../../platform/errors';
import { readText } from '../middleware/body';

export const PAGE_CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export interface PageOptions {
  /** Where the stylesheet is, relative to the page (`assets/` for a page at the root). */
  assets?: string;
  /**
   * Origins a form on the page may end up at besides ours: browsers apply `form-action` to the
   * redirects after a submission too, and a sign-in ends with a redirect to the client.
   */
  formTargets?: string[];
}

function csp(opts: PageOptions): string {
  const extra = (opts.formTargets ?? []).filter((o) => /^https?:\/\/[^\s;,'"]+$/.test(o));
  return extra.length ? PAGE_CSP.replace("form-action 'self'", `form-action 'self' ${extra.join(' ')}`) : PAGE_CSP;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** Escapes text for an HTML element or a double-quoted attribute. */
export function esc(v: string): string {
  return v.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** Sends a page. `body` is trusted markup built with `esc` for every value. */
export function sendPage(ctx: Koa.Context, status: number, title: string, body: string, opts: PageOptions = {}): void {
  ctx.status = status;
  ctx.type = 'text/html; charset=utf-8';
  ctx.set('Content-Security-Policy', csp(opts));
  ctx.set('Referrer-Policy', 'no-referrer');
  ctx.set('X-Frame-Options', 'DENY');
  ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
  ctx.set('Cache-Control', 'no-store');
  // Relative URLs throughout, so the pages work under a base path of PUBLIC_BASE_URL too.
  ctx.body = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${esc(title)} · Authflow</title>
<link rel="stylesheet" href="${esc(opts.assets ?? 'assets/')}pages.css">
</head>
<body>
<main>
<h1>${esc(title)}</h1>
${body}
</main>
</body>
</html>
`;
}

/** A paragraph announced to screen readers (errors and outcomes). */
export const alertText = (text: string, kind: 'error' | 'ok' = 'error') => `<p role="alert" class="${kind}">${esc(text)}</p>`;

export const PAGES_CSS = `body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1b1b1b;background:#f6f6f4}
main{max-width:28rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:.5rem}
h1{font-size:1.4rem;margin-top:0}label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input{box-sizing:border-box;width:100%;padding:.6rem;font:inherit;border:1px solid #767676;border-radius:.3rem}
button{margin-top:1rem;padding:.6rem 1.2rem;font:inherit;font-weight:600;color:#fff;background:#1f4fbf;border:0;border-radius:.3rem}
button:focus,input:focus{outline:3px solid #f2a900;outline-offset:2px}
button.link{display:block;margin-top:1.5rem;padding:.4rem 0;color:#1f4fbf;background:none;font-weight:400;text-decoration:underline;text-align:left}
.error{color:#a00;font-weight:600}.ok{color:#05620f;font-weight:600}.hint{color:#444;font-size:.9rem}
`;

const FORM_LIMIT = 16 * 1024;

/**
 * Reads an `application/x-www-form-urlencoded` body (at most 16 KiB) into single string values;
 * a repeated field, another media type or a larger body is a 4xx AppError.
 */
export async function readForm(ctx: Koa.Context): Promise<Record<string, string>> {
  const text = await readText(ctx, FORM_LIMIT, ['application/x-www-form-urlencoded'], 'send the form as application/x-www-form-urlencoded');
  const form: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(text)) {
    if (Object.prototype.hasOwnProperty.call(form, k))
      throw new AppError('validation_failed', `the field ${k} was sent twice`, { errors: [{ field: k, message: 'sent twice' }] });
    form[k] = v;
  }
  return form;
}
