/**
 * The hosted pages the e-mailed links lead to by default (EMAIL_VERIFY_LINK, PASSWORD_RESET_LINK):
 * `GET /verify-email?token=…` and `GET /reset-password?token=…` only show a form, so a mail
 * scanner or link preview that opens the link spends nothing; the form's POST (token in the body,
 * never in a URL) spends the token through the same code as the JSON API (api/email-links.ts).
 *
 * No cookie or session is involved: the e-mailed token is the only credential, so a cross-site
 * form post can do nothing its sender could not do without us (no CSRF token is needed). A token
 * that fails leaves nothing changed and the page says what to do next.
 */
import Router from '@koa/router';
import type Koa from 'koa';
import { publicUser } from '../../domain/accounts/users';
import { AppError } from '../../platform/errors';
import type { AppDeps } from '../context';
import { ResetBody, resetPasswordWithToken, VerifyBody, verifyEmailWithToken } from '../email-links';
import { requestMeta } from '../middleware/auth';
import { toAppError } from '../middleware/errors';
import { alertText, esc, PAGES_CSS, readForm, sendPage } from './html';

type Kind = 'verify' | 'reset';

const TITLES: Record<Kind, string> = { verify: 'Confirm your e-mail address', reset: 'Choose a new password' };
const ACTIONS: Record<Kind, string> = { verify: 'verify-email', reset: 'reset-password' };
const TOKEN: Record<Kind, { safeParse(v: unknown): { success: boolean } }> = { verify: VerifyBody.shape.token, reset: ResetBody.shape.token };

const BAD_LINK = 'This link is incomplete or damaged. Open the link from the e-mail again, copying all of it, or type the code from the e-mail into the app.';
const DEAD_TOKEN: Record<Kind, string> = {
  verify: 'This link has expired, was already used, or a newer e-mail replaced it. Ask the app for a new verification e-mail.',
  reset: 'This link has expired, was already used, or a newer e-mail replaced it. Ask for a new one with "forgot password".',
};

function passwordField(label: string): string {
  return `<label for="password">${esc(label)}</label>
<input id="password" name="password" type="password" autocomplete="new-password" required maxlength="1024">
<p class="hint">Use a long passphrase of several words; it must not contain your e-mail address.</p>`;
}

/** The form of a link: the token travels in a hidden field, never back into a URL. */
function form(kind: Kind, token: string, opts: { askPassword: boolean; message?: string }): string {
  const intro =
    kind === 'verify'
      ? opts.askPassword
        ? '<p>This address was registered more than once before it was confirmed, so no password was kept. Choose the password of your account to finish.</p>'
        : '<p>Confirm that this address is yours to finish setting up your account.</p>'
      : '<p>Choose the new password of your account. Every session of the account is signed out when you save it.</p>';
  const button = kind === 'verify' ? 'Confirm my address' : 'Save the new password';
  return `${opts.message ? alertText(opts.message) : ''}${intro}
<form method="post" action="${ACTIONS[kind]}">
<input type="hidden" name="token" value="${esc(token)}">
${opts.askPassword ? passwordField(kind === 'verify' ? 'Password' : 'New password') : ''}
<button type="submit">${button}</button>
</form>`;
}

/** The token of a GET link, or undefined when it is missing, repeated or malformed. */
function queryToken(ctx: Koa.Context, kind: Kind): string | undefined {
  const t = ctx.query.token;
  return typeof t === 'string' && TOKEN[kind].safeParse(t).success ? t : undefined;
}

/** What a failed POST shows: the form again (nothing was spent) or an explanation. Unknown errors propagate. */
function failurePage(ctx: Koa.Context, kind: Kind, token: string, err: unknown, askPassword: boolean): void {
  const e = toAppError(err);
  if (!e) throw err;
  for (const [k, v] of Object.entries(e.headers)) ctx.set(k, v);
  const policyMessage = (e.extra.errors as Array<{ field: string; message: string }> | undefined)?.find((x) => /password/.test(x.field))?.message;
  switch (e.code) {
    case 'password_required':
      return sendPage(ctx, 409, TITLES[kind], form(kind, token, { askPassword: true }));
    case 'validation_failed':
      if (policyMessage)
        return sendPage(ctx, 400, TITLES[kind], form(kind, token, { askPassword: true, message: `That password cannot be used: ${policyMessage}` }));
      return sendPage(ctx, 400, 'This link does not work', alertText(BAD_LINK));
    case 'invalid_token':
      return sendPage(ctx, 400, 'This link does not work', alertText(DEAD_TOKEN[kind]));
    case 'rate_limited':
    case 'dependency_unavailable':
      return sendPage(
        ctx,
        e.status,
        TITLES[kind],
        form(kind, token, { askPassword, message: 'The service is busy right now and nothing was changed. Try again in a moment.' }),
      );
    default:
      throw e;
  }
}

export function emailLinkPages(deps: AppDeps): Router {
  const r = new Router();

  r.get('/assets/pages.css', (ctx) => {
    ctx.type = 'text/css; charset=utf-8';
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = PAGES_CSS;
  });

  for (const kind of ['verify', 'reset'] as const) {
    r.get(`/${ACTIONS[kind]}`, (ctx) => {
      const token = queryToken(ctx, kind);
      if (!token) return sendPage(ctx, 400, 'This link does not work', alertText(BAD_LINK));
      sendPage(ctx, 200, TITLES[kind], form(kind, token, { askPassword: kind === 'reset' }));
    });

    r.post(`/${ACTIONS[kind]}`, async (ctx) => {
      let fields: Record<string, string>;
      try {
        fields = await readForm(ctx);
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        return sendPage(ctx, err.status, 'This link does not work', alertText(`${BAD_LINK} (${err.message})`));
      }
      const token = fields.token ?? '';
      const password = fields.password || undefined;
      const unknown = Object.keys(fields).filter((k) => k !== 'token' && k !== 'password');
      if (unknown.length || !TOKEN[kind].safeParse(token).success) return sendPage(ctx, 400, 'This link does not work', alertText(BAD_LINK));
      const meta = requestMeta(ctx);
      try {
        if (kind === 'verify') {
          const user = await verifyEmailWithToken(deps, { token, password }, meta, ctx.state.log);
          return sendPage(
            ctx,
            200,
            'Address confirmed',
            alertText(`${publicUser(user).email} is confirmed. You can now sign in${password ? ' with the password you chose' : ''}.`, 'ok'),
          );
        }
        if (!password) return sendPage(ctx, 400, TITLES.reset, form('reset', token, { askPassword: true, message: 'Enter the new password.' }));
        await resetPasswordWithToken(deps, { token, new_password: password }, meta, ctx.state.requestId);
        return sendPage(
          ctx,
          200,
          'Password changed',
          alertText('Your password was changed and every session was signed out. Sign in with the new password.', 'ok'),
        );
      } catch (err) {
        failurePage(ctx, kind, token, err, kind === 'reset' || password !== undefined);
      }
    });
  }
  return r;
}
