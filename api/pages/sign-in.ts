/**
 * The hosted pages of the OpenID provider: sign-in (password, then a code), consent, logout
 * confirmation, signed out, and errors. Same layout and headers as the other hosted pages
 * (api/pages/html.ts): no script, escaped values, no framing. Each step is one form with plain
 * labelled inputs named `email`, `password` and `code` and one submit button; any other control
 * comes after it as `type="button"` or as a form of its own, so password managers and browser
 * tests find them. Every form carries the sign-in's CSRF token.
 */
import type Koa from 'koa';
import { alertText, esc, sendPage, type PageOptions } from './html';

export interface SignInView {
  uid: string;
  csrf: string;
  clientName: string;
  /** Origin of the client's redirect URI (the form's final destination). */
  clientOrigin?: string;
  message?: string;
  email?: string;
  /** Where the page is served: `/interaction/{uid}` (a GET) or one of its step URLs (a POST's answer). */
  at: 'interaction' | 'step';
}

/** Relative URLs, so the pages work under a base path of PUBLIC_BASE_URL. */
const opts = (v: SignInView): PageOptions => ({
  assets: v.at === 'step' ? '../../assets/' : '../assets/',
  formTargets: v.clientOrigin ? [v.clientOrigin] : [],
});
const action = (v: SignInView, step: string) => (v.at === 'step' ? step : `${v.uid}/${step}`);
const up = (v: SignInView) => (v.at === 'step' ? '../../' : '../');

const csrfField = (csrf: string) => `<input type="hidden" name="csrf" value="${esc(csrf)}">`;

function cancelForm(v: SignInView): string {
  return `<form method="post" action="${esc(action(v, 'abort'))}" class="secondary">
${csrfField(v.csrf)}
<button type="submit" class="link">Cancel and return to ${esc(v.clientName)}</button>
</form>`;
}

export function passwordPage(ctx: Koa.Context, v: SignInView, status = 200): void {
  sendPage(
    ctx,
    status,
    'Sign in',
    `${v.message ? alertText(v.message) : ''}<p>to continue to <strong>${esc(v.clientName)}</strong></p>
<form method="post" action="${esc(action(v, 'login'))}">
${csrfField(v.csrf)}
<label for="email">E-mail address</label>
<input id="email" name="email" type="email" autocomplete="username" required maxlength="320" value="${esc(v.email ?? '')}" autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024">
<button type="submit">Sign in</button>
</form>
<p class="hint"><a href="${up(v)}forgot-password">Forgot your password?</a> · <a href="${up(v)}register">Create an account</a></p>
${cancelForm(v)}`,
    opts(v),
  );
}

export function codePage(ctx: Koa.Context, v: SignInView, status = 200): void {
  sendPage(
    ctx,
    status,
    'Enter your code',
    `${v.message ? alertText(v.message) : ''}<p>Enter the 6-digit code from your authenticator app, or one of your recovery codes.</p>
<form method="post" action="${esc(action(v, 'code'))}">
${csrfField(v.csrf)}
<label for="code">Code</label>
<input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" required maxlength="64" autofocus>
<button type="submit">Continue</button>
</form>
${cancelForm(v)}`,
    opts(v),
  );
}

const SCOPE_TEXT: Record<string, string> = {
  openid: 'know who you are (your account id)',
  email: 'see your e-mail address and whether it is confirmed',
  profile: 'see your name',
  offline_access: 'stay signed in when you are not using it',
};

export function consentPage(ctx: Koa.Context, v: SignInView & { scopes: string[] }): void {
  const items = v.scopes.map((s) => `<li>${esc(SCOPE_TEXT[s] ?? s)}</li>`).join('');
  sendPage(
    ctx,
    200,
    'Allow access?',
    `<p><strong>${esc(v.clientName)}</strong> asks to:</p><ul>${items}</ul>
<form method="post" action="${esc(action(v, 'consent'))}">
${csrfField(v.csrf)}
<button type="submit">Allow</button>
</form>
${cancelForm(v)}`,
    opts(v),
  );
}

/** An interaction that cannot go on (expired, unknown, opened in another browser). */
export function interactionErrorPage(ctx: Koa.Context, status: number, text: string, at: SignInView['at']): void {
  sendPage(ctx, status, 'This sign-in cannot continue', `${alertText(text)}<p>Go back to the app and start signing in again.</p>`, {
    assets: at === 'step' ? '../../assets/' : '../assets/',
  });
}

/** oidc-provider's error page (renderError): the error code and description only, escaped. */
export function renderProviderError(ctx: Koa.Context, out: Record<string, unknown>, assets: string): void {
  const code = typeof out.error === 'string' ? out.error : 'server_error';
  const description = typeof out.error_description === 'string' ? out.error_description : 'the request cannot be completed';
  const status = ctx.status >= 400 ? ctx.status : 400;
  sendPage(ctx, status, 'Something went wrong', `${alertText(description)}<p class="hint">Error: <code>${esc(code)}</code></p>`, { assets });
}

/**
 * RP-initiated logout's confirmation (logoutSource): the provider's own form (hidden fields with
 * its CSRF token) plus our buttons, which submit that form with `logout=yes` or without it.
 */
export function renderLogoutConfirm(ctx: Koa.Context, providerForm: string, assets: string): void {
  const target = (ctx as unknown as { oidc?: { params?: { post_logout_redirect_uri?: unknown } } }).oidc?.params?.post_logout_redirect_uri;
  let origin: string | undefined;
  try {
    origin = typeof target === 'string' ? new URL(target).origin : undefined;
  } catch {
    origin = undefined;
  }
  sendPage(
    ctx,
    200,
    'Sign out?',
    `${providerForm}
<p>Do you want to sign out of Authflow on this device?</p>
<button type="submit" form="op.logoutForm" name="logout" value="yes">Sign out</button>
<button type="submit" form="op.logoutForm" class="link">Stay signed in</button>`,
    { assets, formTargets: origin ? [origin] : [] },
  );
}

export function renderLoggedOut(ctx: Koa.Context, assets: string): void {
  sendPage(ctx, 200, 'Signed out', '<p>You are signed out of Authflow on this device.</p>', { assets });
}
