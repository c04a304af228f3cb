/**
 * Account self-service that the API and activities share: registration, e-mail verification,
 * password login and password change. Every write and its audit event are one transaction.
 * Responses that must not reveal whether an account exists take the same path and time.
 */
import { randomUUID } from 'node:crypto';
import { Op, Sequelize, type Transaction, UniqueConstraintError } from 'sequelize';
import { lockExpired, transition } from './account-state';
import { audit } from '../audit';
import type { FlowOutbox } from '../flow-outbox';
import { mapDbError } from '../../platform/db';
import { OneTimeToken, User } from '../../platform/db/models';
import { AppError, DependencyError } from '../../platform/errors';
import type { GuessingLimits } from './lockout';
import type { SecondFactorClaim } from './mfa';
import { checkPassword } from './password-policy';
import { Argon2Params, hashPassword, needsRehash, verifyPassword } from '../../crypto/argon2';
import type { IssuedTokens, RequestMeta, SessionService } from '../sessions/sessions';
import { hashOpaque } from '../../crypto/opaque-tokens';
import { normaliseEmail } from './users';

export interface AccountSettings {
  argon2: Argon2Params;
  minLength: number;
  maxLength: number;
}

/** The one answer to every refused password attempt (login, reactivation, re-authentication). */
export const INVALID_CREDENTIALS_DETAIL = 'the e-mail or password is incorrect, or the address is not verified yet';

export interface AuthenticateOptions {
  /** The account state this check admits: `active` (sign-in), or `pending_deletion` (reactivation). */
  accept?: 'active' | 'pending_deletion';
  /** Also required after the right password (reactivation of an MFA user): throws when the code is wrong. */
  secondFactor?: (user: User) => Promise<void>;
  /** Called (not awaited) when the right password meets an unverified address. */
  onUnverified?: (user: User) => void;
}

export type LoginResult = { kind: 'tokens'; user: User; tokens: IssuedTokens } | { kind: 'mfa_required'; user: User };

export class AccountService {
  constructor(
    private readonly sequelize: Sequelize,
    private readonly sessions: SessionService,
    private readonly limits: GuessingLimits,
    private readonly s: AccountSettings,
    private readonly flowOutbox: FlowOutbox,
  ) {}

  /** The password policy; `field` is the request field the password came in (named in the 400). */
  policyCheck(password: string, email?: string, name?: string, field = 'password') {
    const r = checkPassword(password, { email, name, minLength: this.s.minLength, maxLength: this.s.maxLength });
    if (!r.ok) {
      throw new AppError('validation_failed', r.reason, { errors: [{ field, message: r.reason, reason: r.code }] });
    }
  }

  /**
   * Creates a pending user. A taken address gives the same outcome to the caller (`created:
   * false` tells the route to answer identically). A taken address that is still unverified
   * becomes contested (see `contestRegistration`). Either way the verification e-mail is a flow
   * outbox row of the same transaction (a new flow, or a resend of the running one): nothing here
   * waits for Temporal, so both paths take about the same time and neither is lost while it is down.
   */
  async register(input: { email: string; password: string; name?: string }, meta: RequestMeta): Promise<{ user: User; created: boolean }> {
    const email = normaliseEmail(input.email);
    this.policyCheck(input.password, email, input.name);
    const password_hash = await hashPassword(input.password, this.s.argon2);
    try {
      // One transaction of the same statements on either path (look up, write the account, audit,
      // outbox row), so a taken address costs what a free one does.
      return await this.sequelize.transaction(async (t) => {
        const existing = await User.findOne({ where: { email }, transaction: t, lock: t.LOCK.UPDATE });
        if (existing) return { user: await this.contest(t, existing, meta), created: false };
        const u = await User.create({ id: randomUUID(), email, name: input.name?.trim() || null, password_hash }, { transaction: t });
        await audit(t, 'user.registered', u.id, meta);
        await this.flowOutbox.enqueue(t, { kind: 'email_verification.start', userId: u.id });
        return { user: u, created: true };
      });
    } catch (err) {
      // A concurrent registration of the same address committed first.
      if (err instanceof UniqueConstraintError) {
        const existing = await this.contestRegistration(email, meta).catch((e) => Promise.reject(mapDbError(e)));
        if (existing) return { user: existing, created: false };
      }
      throw mapDbError(err);
    }
  }

  /**
   * A second registration of an address whose account is still unverified: nobody has shown
   * yet that they read the mailbox, so neither registrant's password (nor name) is kept. The
   * account is marked contested, its password hash is cleared, and whoever holds the e-mailed
   * verification token chooses the password when verifying (`verifyEmail`). Verified accounts
   * are left alone.
   */
  private async contestRegistration(email: string, meta: RequestMeta): Promise<User | null> {
    return this.sequelize.transaction(async (t) => {
      const user = await User.findOne({ where: { email }, transaction: t, lock: t.LOCK.UPDATE });
      return user && this.contest(t, user, meta);
    });
  }

  /** `contestRegistration` on the row locked in `t`. */
  private async contest(t: Transaction, user: User, meta: RequestMeta): Promise<User> {
    if (user.status !== 'pending_verification') return user;
    const alreadyContested = !!user.registration_contested_at;
    await user.update(
      { registration_contested_at: user.registration_contested_at ?? new Date(), password_hash: null, name: null, updated_at: new Date() },
      { transaction: t },
    );
    await audit(t, 'user.registration_contested', user.id, meta, { already_contested: alreadyContested });
    // A fresh code to the mailbox (the running flow's resend, or a new flow).
    await this.flowOutbox.enqueue(t, { kind: 'email_verification.resend', userId: user.id, reason: 'register' });
    return user;
  }

  /** The signed-in user's own account (401 once it is gone). */
  async profile(userId: string): Promise<User> {
    const user = await User.findByPk(userId).catch((err) => Promise.reject(mapDbError(err)));
    if (!user || user.status === 'deleted') throw new AppError('unauthorized', 'the account no longer exists');
    return user;
  }

  /**
   * The claims of an account that may receive tokens now (status `active`), else undefined: what
   * the OpenID provider asks at every authorization and refresh.
   */
  async activeAccount(userId: string): Promise<{ id: string; email: string | null; email_verified: boolean; name: string | null } | undefined> {
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(userId)) return undefined;
    const user = await User.findByPk(userId, { attributes: ['id', 'email', 'email_verified_at', 'name', 'status'] }).catch((err) =>
      Promise.reject(mapDbError(err)),
    );
    if (!user || user.status !== 'active') return undefined;
    return { id: user.id, email: user.email, email_verified: !!user.email_verified_at, name: user.name };
  }

  /** The id of the account of this address when it waits for verification, else null. */
  async pendingAccountId(emailInput: string): Promise<string | null> {
    const user = await User.findOne({ where: { email: normaliseEmail(emailInput) }, attributes: ['id', 'status'] }).catch((err) =>
      Promise.reject(mapDbError(err)),
    );
    return user?.status === 'pending_verification' ? user.id : null;
  }

  /**
   * A new verification e-mail for the address if its account waits for verification (a flow
   * outbox row; the resend limit is the flow's). Nothing otherwise; the caller answers the same.
   */
  async requestVerificationResend(emailInput: string, reason: 'resend' | 'login' = 'resend'): Promise<void> {
    const userId = await this.pendingAccountId(emailInput);
    if (userId) await this.flowOutbox.enqueueNow({ kind: 'email_verification.resend', userId, reason }).catch((err) => Promise.reject(mapDbError(err)));
  }

  /** Whether the account still waits for the verification of its address (the flow outbox relay asks). */
  async awaitsVerification(userId: string): Promise<boolean> {
    const user = await User.findByPk(userId, { attributes: ['id', 'status'] }).catch((err) => Promise.reject(mapDbError(err)));
    return user?.status === 'pending_verification';
  }

  /** The verification e-mail again after the right password met an unverified account (a flow outbox row). */
  async resendAfterLogin(userId: string): Promise<void> {
    await this.flowOutbox.enqueueNow({ kind: 'email_verification.resend', userId, reason: 'login' }).catch((err) => Promise.reject(mapDbError(err)));
  }

  /**
   * Spends a verification token and activates the user. `password`, when given, becomes the
   * password of the (still pending) account; an account without one (a contested registration)
   * needs it: without it the answer is 409 `password_required` and the token stays usable. Setting
   * the password ends any session of the account.
   */
  async verifyEmail(token: string, meta: RequestMeta, password?: string): Promise<User> {
    const tokenWhere = () => ({
      token_hash: hashOpaque(token),
      purpose: 'email_verification' as const,
      used_at: null,
      superseded_at: null,
      expires_at: { [Op.gt]: new Date() },
    });
    const invalid = () => new AppError('invalid_token', 'the verification token is invalid, expired or already used');
    try {
      // Hash outside the row locks (argon2 is slow); the policy needs the account's address and name.
      let password_hash: string | undefined;
      if (password !== undefined) {
        const ott = await OneTimeToken.findOne({ where: tokenWhere() });
        const owner = ott && (await User.findByPk(ott.user_id, { attributes: ['id', 'email', 'name'] }));
        if (!owner) throw invalid();
        this.policyCheck(password, owner.email ?? undefined, owner.name ?? undefined);
        password_hash = await hashPassword(password, this.s.argon2);
      }
      return await this.sequelize.transaction(async (t) => {
        const ott = await OneTimeToken.findOne({ where: tokenWhere(), transaction: t, lock: t.LOCK.UPDATE });
        if (!ott) throw invalid();
        const user = await User.findByPk(ott.user_id, { transaction: t, lock: t.LOCK.UPDATE });
        if (!user) throw invalid();
        const pending = user.status === 'pending_verification';
        const contested = !!user.registration_contested_at;
        if (pending && !password_hash && (contested || !user.password_hash)) {
          throw new AppError('password_required', 'choose a password to finish the verification: send it with the token as `password`', {
            errors: [{ field: 'password', message: 'required for this account' }],
          });
        }
        if (!pending && password_hash) {
          throw new AppError('validation_failed', 'the address is already verified: change the password from the account or by a reset', {
            errors: [{ field: 'password', message: 'not accepted for a verified account' }],
          });
        }
        const now = new Date();
        await ott.update({ used_at: now }, { transaction: t });
        const patch = {
          email_verified_at: user.email_verified_at ?? now,
          updated_at: now,
          ...(password_hash ? { password_hash, password_changed_at: now, registration_contested_at: null } : {}),
        };
        if (pending) {
          await transition(t, user, 'verify', { meta, patch, data: password_hash ? { password_set: true, contested } : {} });
        } else {
          await user.update(patch, { transaction: t });
          await audit(t, 'user.email_verified', user.id, meta);
        }
        if (password_hash) {
          const ended = await this.sessions.revokeAllForUser(t, user.id, 'password_set_at_verification');
          await audit(t, 'password.set_at_verification', user.id, meta, { contested, sessions_ended: ended });
        }
        return user;
      });
    } catch (err) {
      throw mapDbError(err);
    }
  }

  /**
   * Checks e-mail and password through the guessing limits (domain/accounts/lockout.ts): the attempt is
   * counted before it is evaluated, and every refusal (unknown address, wrong password, a
   * throttled device, a lock in force, an unverified address, an account in another state than
   * `opts.accept`, a wrong or missing second factor) answers the same `invalid_credentials` with
   * the same detail and comparable time: a dummy hash is verified for unknown addresses and the
   * bookkeeping is one statement on every path. Only a caller who knows the password, and is not
   * throttled or locked, learns of a suspension. A success from a device clears its throttle.
   */
  async authenticatePassword(emailInput: string, password: string, meta: RequestMeta, opts: AuthenticateOptions = {}): Promise<User> {
    const email = normaliseEmail(emailInput);
    const accept = opts.accept ?? 'active';
    const user = await User.findOne({ where: { email } }).catch((err) => Promise.reject(mapDbError(err)));
    if (user && lockExpired(user)) {
      // The lock ran out: the next attempt finds the account active again (audited transition).
      await this.sequelize
        .transaction(async (t) => {
          const u = await User.findByPk(user.id, { transaction: t, lock: t.LOCK.UPDATE });
          if (u && lockExpired(u)) await transition(t, u, 'unlock', { meta, restoreTo: 'active', data: { reason: 'lock_expired' } });
        })
        .catch((err) => Promise.reject(mapDbError(err)));
      await user.reload();
    }
    const [slot, ok] = await Promise.all([
      this.limits.reserveAttempt(email, user?.id ?? null, meta),
      verifyPassword(user?.password_hash, password, this.s.argon2),
    ]);
    const refuse = async (reason: string): Promise<never> => {
      await audit(undefined, 'login.failed', user?.id ?? null, meta, { reason, ...(accept !== 'active' ? { purpose: accept } : {}) }).catch(() => undefined);
      throw new AppError('invalid_credentials', INVALID_CREDENTIALS_DETAIL);
    };
    if (!user) return refuse('unknown_email');
    if (slot.throttled) return refuse('throttled');
    // Locked, or locked meanwhile (an active account whose count was not taken has left `active`).
    if (user.status === 'locked' || (user.status === 'active' && slot.failures === null)) return refuse('locked');
    if (this.limits.capReached(slot.failures)) {
      // The attempt that reached the cap is the last one evaluated; any racing it are refused.
      const last = slot.failures === this.limits.threshold;
      if (!ok || !last) await this.limits.lockForFailures(user.id, 'password', meta);
      if (!last) return refuse('cap_reached');
    }
    if (!ok) return refuse('bad_password');
    if (accept === 'pending_deletion') {
      if (user.status !== 'pending_deletion') return refuse(`status_${user.status}`);
      if (user.status_before === 'suspended') throw new AppError('account_suspended', 'the account is suspended; contact support');
      if (opts.secondFactor) {
        try {
          await opts.secondFactor(user);
        } catch (err) {
          if (err instanceof DependencyError || !(err instanceof AppError)) throw err;
          return refuse('bad_second_factor');
        }
      }
    } else if (user.status === 'pending_verification') {
      // The owner may have lost the e-mail: send it again (out of the answer's timing).
      opts.onUnverified?.(user);
      return refuse('not_verified');
    } else if (user.status === 'suspended') {
      throw new AppError('account_suspended', 'the account is suspended');
    } else if (user.status !== 'active') {
      return refuse(`status_${user.status}`);
    }
    // MFA users' count waits for the code: only this attempt's slot is given back.
    await this.limits.settleAttempt(email, user.id, meta, user.mfa_enabled && user.status === 'active');
    if (needsRehash(user.password_hash!, this.s.argon2)) {
      await user.update({ password_hash: await hashPassword(password, this.s.argon2) });
    }
    return user;
  }

  async login(email: string, password: string, meta: RequestMeta, opts: Pick<AuthenticateOptions, 'onUnverified'> = {}): Promise<LoginResult> {
    const user = await this.authenticatePassword(email, password, meta, opts);
    if (user.mfa_enabled) return { kind: 'mfa_required', user };
    const finish = await this.sequelize
      .transaction(async (t) => {
        const f = await this.sessions.createSession(t, user, ['pwd'], meta);
        await audit(t, 'login.succeeded', user.id, meta, { amr: ['pwd'] });
        return f;
      })
      .catch((err) => Promise.reject(mapDbError(err)));
    return { kind: 'tokens', user, tokens: await finish() };
  }

  /**
   * Re-authentication of a signed-in user by password, before changing the password or the second
   * factor. Counted exactly like a login attempt (device throttle, account-wide cap, lock), so a
   * stolen session is no unlimited password oracle; a wrong password answers 401
   * `invalid_credentials` ("the current password is incorrect") whatever the reason.
   */
  async reauthenticate(userId: string, password: string, meta: RequestMeta, purpose: string): Promise<User> {
    const user = await User.findByPk(userId).catch((err) => Promise.reject(mapDbError(err)));
    if (!user || user.status !== 'active' || !user.email) throw new AppError('unauthorized', 'the account cannot do this in its current state');
    const email = normaliseEmail(user.email);
    const [slot, ok] = await Promise.all([this.limits.reserveAttempt(email, user.id, meta), verifyPassword(user.password_hash, password, this.s.argon2)]);
    const refuse = async (reason: string): Promise<never> => {
      await audit(undefined, 'reauth.failed', user.id, meta, { reason, purpose }).catch(() => undefined);
      throw new AppError('invalid_credentials', 'the current password is incorrect');
    };
    if (slot.throttled) return refuse('throttled');
    if (slot.failures === null) return refuse('locked');
    if (this.limits.capReached(slot.failures)) {
      const last = slot.failures === this.limits.threshold;
      if (!ok || !last) await this.limits.lockForFailures(user.id, 'password', meta);
      if (!last) return refuse('cap_reached');
    }
    if (!ok) return refuse('bad_password');
    // This attempt's slot only: earlier failures (someone guessing elsewhere) still count.
    await this.limits.settleAttempt(email, user.id, meta, true);
    return user;
  }

  /**
   * Changes the password: the new one is checked against the policy first (400 whatever the
   * current password, so the answer tells nothing about it), then the current one is verified
   * like a login (`reauthenticate`), then an MFA user's fresh code is checked; the code is spent
   * in the transaction that changes the password and ends every other session, so a change that
   * fails leaves it usable. `prepareCode` is MfaService.prepareSecondFactor.
   */
  async changePassword(
    userId: string,
    sessionId: string,
    current: string,
    next: string,
    meta: RequestMeta,
    prepareCode: () => Promise<SecondFactorClaim | null>,
  ): Promise<User> {
    const found = await User.findByPk(userId).catch((err) => Promise.reject(mapDbError(err)));
    if (!found || found.status !== 'active') throw new AppError('unauthorized', 'the account cannot do this in its current state');
    this.policyCheck(next, found.email ?? undefined, found.name ?? undefined, 'new_password');
    const user = await this.reauthenticate(userId, current, meta, 'password_change');
    const code = await prepareCode();
    try {
      const hash = await hashPassword(next, this.s.argon2);
      await this.sequelize.transaction(async (t) => {
        await code?.spend(t);
        await user.update({ password_hash: hash, password_changed_at: new Date(), updated_at: new Date() }, { transaction: t });
        const ended = await this.sessions.revokeAllForUser(t, user.id, 'password_changed', sessionId);
        await audit(t, 'password.changed', user.id, meta, { sessions_ended: ended });
      });
    } catch (err) {
      await code?.release();
      throw mapDbError(err);
    }
    return user;
  }
}
