/**
 * The hosted sign-in of an OpenID Connect authorization request, one interaction at a time: the
 * password step, then (for an account with TOTP) a TOTP or recovery code. The same rules as
 * `/v1/auth/login` apply because the same services decide: `authenticatePassword` (throttle,
 * lockout, one answer for every refusal, comparable time) and the MFA service's fresh-code check
 * (replay protection, counted toward the lockout).
 *
 * The state of a sign-in (which step, whose password was right, a CSRF token for its forms) is
 * kept server-side in the provider store under the interaction's uid and expires with it; the
 * browser only holds the provider's interaction cookie. A finished sign-in is audited as
 * `login.succeeded` with `via: oidc` and the client id.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { AppError } from '../../platform/errors';
import { audit } from '../audit';
import type { AccountService } from '../accounts/accounts';
import type { MfaService } from '../accounts/mfa';
import { AMR, acrFor, meetsAcr } from '../sessions/authentication-methods';
import type { RequestMeta } from '../sessions/sessions';
import type { OidcStore } from './store';

const MODEL = 'AuthflowSignIn';

export type SignInStep = 'password' | 'second_factor';

export interface SignInState {
  csrf: string;
  step: SignInStep;
  userId?: string;
  amr?: string[];
}

export interface FinishedSignIn {
  accountId: string;
  amr: string[];
  acr: string;
}

/** The request's metadata and the client the sign-in is for. */
export type SignInMeta = RequestMeta & { clientId?: string };

export type StepResult = { kind: 'next'; step: SignInStep } | { kind: 'done'; login: FinishedSignIn };

export class SignInService {
  constructor(
    private readonly store: OidcStore,
    private readonly accounts: Pick<AccountService, 'authenticatePassword' | 'activeAccount'>,
    private readonly mfa: Pick<MfaService, 'assertFreshSecondFactor'>,
  ) {}

  /** The sign-in of interaction `uid`, started (with a fresh CSRF token) when there is none yet. */
  async state(uid: string, ttlSeconds: number): Promise<SignInState> {
    const found = (await this.store.find(MODEL, uid)) as SignInState | undefined;
    if (found?.csrf) return found;
    const fresh: SignInState = { csrf: randomBytes(24).toString('base64url'), step: 'password' };
    await this.store.upsert(MODEL, uid, { ...fresh }, Math.max(1, ttlSeconds));
    return fresh;
  }

  /** Constant-time check of a form's CSRF token against the sign-in's. */
  static csrfMatches(state: SignInState, presented: string | undefined): boolean {
    if (typeof presented !== 'string') return false;
    const a = Buffer.from(state.csrf);
    const b = Buffer.from(presented);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private async save(uid: string, state: SignInState, ttlSeconds: number) {
    await this.store.upsert(MODEL, uid, { ...state }, Math.max(1, ttlSeconds));
  }

  /**
   * The password step. Any refusal is the API's `invalid_credentials` (or `account_suspended`
   * after a right password), thrown as an AppError for the page to show.
   */
  async password(uid: string, state: SignInState, email: string, password: string, meta: SignInMeta, ttlSeconds: number): Promise<StepResult> {
    const user = await this.accounts.authenticatePassword(email, password, meta);
    if (user.mfa_enabled) {
      await this.save(uid, { ...state, step: 'second_factor', userId: user.id, amr: [AMR.password] }, ttlSeconds);
      return { kind: 'next', step: 'second_factor' };
    }
    return { kind: 'done', login: await this.finish(uid, user.id, [AMR.password], meta) };
  }

  /** The second-factor step: a TOTP or recovery code of the account whose password was right. */
  async secondFactor(uid: string, state: SignInState, code: string, meta: SignInMeta): Promise<StepResult> {
    if (state.step !== 'second_factor' || !state.userId) throw new AppError('conflict', 'this sign-in is not waiting for a code');
    await this.mfa.assertFreshSecondFactor(state.userId, code, meta, 'login');
    return { kind: 'done', login: await this.finish(uid, state.userId, [AMR.password, AMR.otp], meta) };
  }

  /** Whether a finished sign-in meets any of the requested acr values (none requested: yes). */
  static meetsRequested(amr: string[], acrValues: string[]): boolean {
    return acrValues.length === 0 || acrValues.some((v) => meetsAcr(amr, v));
  }

  private async finish(uid: string, userId: string, amr: string[], meta: SignInMeta): Promise<FinishedSignIn> {
    // The account may have changed state between the steps (suspended, locked meanwhile).
    if (!(await this.accounts.activeAccount(userId))) throw new AppError('invalid_credentials', 'the account cannot sign in');
    await this.store.destroy(MODEL, uid);
    await audit(undefined, 'login.succeeded', userId, meta, { amr, via: 'oidc', ...(meta.clientId ? { client_id: meta.clientId } : {}) });
    return { accountId: userId, amr, acr: acrFor(amr) };
  }
}
