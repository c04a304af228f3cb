/**
 * The provider's interactions: `GET /interaction/{uid}` shows the step the authorization request
 * needs (sign-in or consent); each step's form posts to `/interaction/{uid}/{step}`. A finished
 * step hands its result to oidc-provider, which redirects the browser back into the
 * authorization. The interaction must belong to this browser (oidc-provider's interaction cookie,
 * HttpOnly, SameSite=Lax) and every form carries the sign-in's CSRF token.
 *
 * Refusals are the API's: the same rate limits (per IP and per address) and the one
 * `invalid_credentials` message for every failed password, whatever the reason.
 */
import Router from '@koa/router';
import type Koa from 'koa';
import { SignInService, type SignInState, type StepResult } from '../../domain/oidc/sign-in';
import type { AppDeps } from '../context';
import { requestMeta } from '../middleware/auth';
import { toAppError } from '../middleware/errors';
import { emailKey } from '../middleware/rate-limit';
import { readForm } from '../pages/html';
import { codePage, consentPage, interactionErrorPage, passwordPage, type SignInView } from '../pages/sign-in';
import type { Provider } from './provider';

type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

const EXPIRED = 'This sign-in has expired or was started in another browser.';
const BAD_CODE = 'That code is wrong, expired or was already used. Try the current code.';
const UID = /^[A-Za-z0-9_-]{10,64}$/;

export interface ProviderAccess {
  current(): Provider;
}

function secondsLeft(i: Interaction): number {
  return Math.max(1, (i.exp ?? 0) - Math.floor(Date.now() / 1000));
}

function clientOrigin(i: Interaction): string | undefined {
  try {
    return typeof i.params.redirect_uri === 'string' ? new URL(i.params.redirect_uri).origin : undefined;
  } catch {
    return undefined;
  }
}

function acrValues(i: Interaction): string[] {
  return typeof i.params.acr_values === 'string' ? i.params.acr_values.split(' ').filter(Boolean) : [];
}

export function interactionRouter(deps: AppDeps, oidc: ProviderAccess): Router {
  const { signIn } = deps;
  const r = new Router({ prefix: '/interaction' });

  /** The interaction of this browser, or an error page (and undefined). */
  async function load(
    ctx: Koa.Context,
    at: SignInView['at'],
  ): Promise<{ i: Interaction; state: SignInState; view: SignInView; firstParty: boolean } | undefined> {
    const uid = String((ctx.params as Record<string, string | undefined>).uid ?? '');
    if (!UID.test(uid)) {
      interactionErrorPage(ctx, 404, EXPIRED, at);
      return undefined;
    }
    let i: Interaction;
    try {
      i = await oidc.current().interactionDetails(ctx.req, ctx.res);
    } catch {
      interactionErrorPage(ctx, 400, EXPIRED, at);
      return undefined;
    }
    if (i.uid !== uid) {
      interactionErrorPage(ctx, 400, EXPIRED, at);
      return undefined;
    }
    const state = await signIn.state(i.uid, secondsLeft(i));
    const client = await oidc.current().Client.find(String(i.params.client_id));
    const view: SignInView = { uid: i.uid, csrf: state.csrf, clientName: client?.clientName ?? 'the app', clientOrigin: clientOrigin(i), at };
    const firstParty = (client as unknown as Record<string, unknown> | undefined)?.['urn:authflow:first_party'] === true;
    return { i, state, view, firstParty };
  }

  /** The form of a POST with a valid CSRF token, or an error page (and undefined). */
  async function form(ctx: Koa.Context, state: SignInState): Promise<Record<string, string> | undefined> {
    let f: Record<string, string>;
    try {
      f = await readForm(ctx);
    } catch (err) {
      const e = toAppError(err);
      if (!e) throw err;
      interactionErrorPage(ctx, e.status, e.message, 'step');
      return undefined;
    }
    if (!SignInService.csrfMatches(state, f.csrf)) {
      interactionErrorPage(ctx, 403, 'This form is out of date. Go back to the app and start signing in again.', 'step');
      return undefined;
    }
    return f;
  }

  function render(ctx: Koa.Context, i: Interaction, state: SignInState, view: SignInView, status = 200) {
    if (i.prompt.name === 'consent') {
      const details = i.prompt.details as { missingOIDCScope?: string[] };
      consentPage(ctx, { ...view, scopes: details.missingOIDCScope ?? ['openid'] });
    } else if (state.step === 'second_factor') codePage(ctx, view, status);
    else passwordPage(ctx, { ...view, email: view.email ?? (typeof i.params.login_hint === 'string' ? i.params.login_hint : undefined) }, status);
  }

  /** Hands a finished step to the provider, which redirects back into the authorization. */
  async function finish(ctx: Koa.Context, i: Interaction, result: Record<string, unknown>, merge: boolean) {
    ctx.respond = false;
    await oidc.current().interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: merge });
  }

  async function afterStep(ctx: Koa.Context, i: Interaction, outcome: StepResult) {
    if (outcome.kind === 'next') {
      ctx.status = 303;
      ctx.redirect(`../${i.uid}`);
      return;
    }
    const { login } = outcome;
    const wanted = acrValues(i);
    if (!SignInService.meetsRequested(login.amr, wanted)) {
      await finish(ctx, i, { error: 'unmet_authentication_requirements', error_description: 'the account cannot sign in at the requested level' }, false);
      return;
    }
    await finish(ctx, i, { login: { accountId: login.accountId, amr: login.amr, acr: login.acr, remember: true } }, false);
  }

  /** Grants what the consent prompt asks for and goes back into the authorization. */
  async function consent(ctx: Koa.Context, i: Interaction) {
    const provider = oidc.current();
    const accountId = i.session!.accountId;
    const grant = (i.grantId ? await provider.Grant.find(i.grantId) : undefined) ?? new provider.Grant({ accountId, clientId: String(i.params.client_id) });
    const details = i.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
    if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(details.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    const grantId = await grant.save();
    await finish(ctx, i, { consent: { grantId } }, true);
  }

  r.get('/:uid', async (ctx) => {
    const l = await load(ctx, 'interaction');
    if (!l) return;
    // A first-party client (our own apps) never shows the consent page.
    if (l.i.prompt.name === 'consent' && l.firstParty && l.i.session?.accountId) return consent(ctx, l.i);
    render(ctx, l.i, l.state, l.view);
  });

  r.post('/:uid/login', async (ctx) => {
    const l = await load(ctx, 'step');
    if (!l) return;
    const f = await form(ctx, l.state);
    if (!f) return;
    const view = { ...l.view, email: f.email?.slice(0, 320) };
    if (l.i.prompt.name !== 'login' || l.state.step !== 'password') return render(ctx, l.i, l.state, view, 409);
    if (!f.email || !f.password) return passwordPage(ctx, { ...view, message: 'Enter your e-mail address and your password.' }, 400);
    const meta = { ...requestMeta(ctx), clientId: String(l.i.params.client_id) };
    try {
      await deps.rateLimits.consume('login', { ip: ctx.ip, account: emailKey(f.email) });
      await afterStep(ctx, l.i, await signIn.password(l.i.uid, l.state, f.email, f.password, meta, secondsLeft(l.i)));
    } catch (err) {
      const e = toAppError(err);
      if (!e || e.status >= 500) throw err;
      for (const [k, v] of Object.entries(e.headers)) ctx.set(k, v);
      passwordPage(ctx, { ...view, message: e.code === 'invalid_credentials' ? 'The e-mail or password is incorrect.' : e.message }, e.status);
    }
  });

  r.post('/:uid/code', async (ctx) => {
    const l = await load(ctx, 'step');
    if (!l) return;
    const f = await form(ctx, l.state);
    if (!f) return;
    if (l.state.step !== 'second_factor') return render(ctx, l.i, l.state, l.view, 409);
    if (!f.code) return codePage(ctx, { ...l.view, message: 'Enter the code.' }, 400);
    try {
      await afterStep(ctx, l.i, await signIn.secondFactor(l.i.uid, l.state, f.code, { ...requestMeta(ctx), clientId: String(l.i.params.client_id) }));
    } catch (err) {
      const e = toAppError(err);
      if (!e || e.status >= 500) throw err;
      for (const [k, v] of Object.entries(e.headers)) ctx.set(k, v);
      codePage(ctx, { ...l.view, message: e.code === 'invalid_mfa_code' ? BAD_CODE : e.message }, e.status);
    }
  });

  r.post('/:uid/consent', async (ctx) => {
    const l = await load(ctx, 'step');
    if (!l) return;
    const f = await form(ctx, l.state);
    if (!f) return;
    const { i } = l;
    if (i.prompt.name !== 'consent' || !i.session?.accountId) return render(ctx, i, l.state, l.view, 409);
    await consent(ctx, i);
  });

  r.post('/:uid/abort', async (ctx) => {
    const l = await load(ctx, 'step');
    if (!l) return;
    const f = await form(ctx, l.state);
    if (!f) return;
    await finish(ctx, l.i, { error: 'access_denied', error_description: 'the user cancelled the sign-in' }, false);
  });

  return r;
}
