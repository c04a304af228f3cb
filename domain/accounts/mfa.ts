/**
 * TOTP second factor: enrolment (pending secret → confirmed with a code → recovery codes), the MFA
 * step of a login (an `mfa_token` challenge that a TOTP or recovery code completes), disabling,
 * and the fresh-code check that sensitive operations of MFA users call.
 *
 * Secrets at rest: TOTP secrets are encrypted with Vault transit (`authflow-totp`, AES-256-GCM)
 * and only the `vault:vN:` ciphertext is stored (the schema refuses anything else). A Vault that
 * cannot decrypt is a 503, never a way around the second factor.
 *
 * Codes are checked in two phases: `check` decrypts and verifies without writing (so a Vault
 * failure costs the user nothing), and `claim` spends what matched inside the transaction of the
 * change it authorises: the TOTP step is recorded with a conditional UPDATE (`totp_last_step <
 * step`), a recovery code is marked used with `used_at IS NULL`, so of two concurrent requests
 * with one code exactly one succeeds (RFC 6238 §5.2: a code is accepted once).
 *
 * Every evaluated code takes a slot of the account-wide cap first (`evaluate`: the slot is
 * reserved with one conditional UPDATE before the code is checked, so a parallel burst over many
 * mfa_tokens gets at most the cap evaluated); a right code gives its slot back inside the
 * transaction of the change it authorises, which also re-checks that the account is still active.
 * Failed codes (wrong, replayed, malformed) are audited and keep their slot.
 * The one exception is confirming an enrolment: the secret there was just handed to the caller,
 * so a wrong code proves nothing about an attacker and locking the account would only punish a
 * user fumbling with the setup.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { toDataURL } from 'qrcode';
import { QueryTypes, Sequelize, Transaction } from 'sequelize';
import { audit } from '../audit';
import { mapDbError, withTx } from '../../platform/db';
import { MfaRecoveryCode, User } from '../../platform/db/models';
import { AppError, DependencyError } from '../../platform/errors';
import { deriveFingerprint } from '../sessions/fingerprint';
import type { GuessingLimits } from './lockout';
import type { IssuedTokens, RequestMeta, SessionService } from '../sessions/sessions';
import { hashOpaque } from '../../crypto/opaque-tokens';
import {
  generateRecoveryCodes,
  generateTotpSecret,
  hashRecoveryCode,
  normaliseRecoveryCode,
  otpauthUrl,
  RECOVERY_ALPHABET,
  RECOVERY_GROUP_LENGTH,
  RECOVERY_GROUPS,
  TOTP_DIGITS,
  verifyTotp,
} from '../../crypto/totp';
import type { VaultClient } from '../../platform/vault';
import { AMR } from '../sessions/authentication-methods';

export const TOTP_TRANSIT_KEY = 'authflow-totp';
export const MFA_TOKEN_PREFIX = 'mfa_';
/** The amr of a session that passed both factors (RFC 8176: password + one-time password). */
export const MFA_AMR = [AMR.password, AMR.otp];

export interface MfaSettings {
  /** Issuer shown in authenticator apps. */
  issuer: string;
  /** Seconds an mfa_token lives. */
  challengeTtl: number;
  /** Code attempts per mfa_token. */
  maxAttempts: number;
  /** Recovery codes handed out at confirmation. */
  recoveryCodes: number;
}

export interface Enrolment {
  secret: string;
  otpauth_url: string;
  qr_code: string;
}

type FailureReason = 'malformed' | 'invalid' | 'replayed';
type Verdict =
  { ok: true; method: 'totp'; step: number; secretEnc: string } | { ok: true; method: 'recovery'; codeHash: Buffer } | { ok: false; reason: FailureReason };

const TOTP_SHAPE = new RegExp(`^[0-9]{${TOTP_DIGITS}}$`);
const RECOVERY_SHAPE = new RegExp(`^[${RECOVERY_ALPHABET}]{${RECOVERY_GROUPS * RECOVERY_GROUP_LENGTH}}$`);

/** Cheap shape check of an mfa_token before any database work. */
export function looksLikeMfaToken(t: string): boolean {
  return t.length === MFA_TOKEN_PREFIX.length + 43 && t.startsWith(MFA_TOKEN_PREFIX) && /^[A-Za-z0-9_-]+$/.test(t.slice(MFA_TOKEN_PREFIX.length));
}

/** A concurrent request spent the same code first (inside a transaction: rolls it back). */
class LostRace extends Error {}

interface ChallengeRow {
  id: string;
  user_id: string;
  fingerprint: Buffer;
  /** The DPoP key of the password step, if it sent a proof: the code step needs a proof of the same key. */
  jkt: string | null;
  created_at: Date;
  live: boolean;
}

/** A right second-factor code not spent yet (MfaService.prepareSecondFactor). */
export interface SecondFactorClaim {
  /** Inside the change's transaction: spends the code (401 invalid_mfa_code if a concurrent request did) and gives back its slot. */
  spend(t: Transaction): Promise<void>;
  /** The change did not happen: gives back the code's slot of the cap (the code stays usable). */
  release(): Promise<void>;
  failures: number;
}

const lockedError = (until?: Date) =>
  new AppError('account_locked', 'too many failed attempts; the account is locked', until ? { retry_at: new Date(until).toISOString() } : {});

export class MfaService {
  constructor(
    private readonly sequelize: Sequelize,
    private readonly vault: VaultClient,
    private readonly sessions: SessionService,
    private readonly limits: GuessingLimits,
    private readonly s: MfaSettings,
  ) {}

  // ---- Vault transit -------------------------------------------------------------------------

  private async encrypt(secret: string): Promise<string> {
    const res = await this.vault.transit('encrypt', `encrypt/${TOTP_TRANSIT_KEY}`, { plaintext: Buffer.from(secret, 'utf8').toString('base64') });
    if (!res?.ciphertext?.startsWith('vault:v')) throw new Error('vault transit returned no ciphertext');
    return res.ciphertext;
  }

  /** Throws DependencyError (503) when Vault is sealed or unreachable. */
  private async decrypt(ciphertext: string): Promise<string> {
    const res = await this.vault.transit('decrypt', `decrypt/${TOTP_TRANSIT_KEY}`, { ciphertext });
    if (typeof res?.plaintext !== 'string') throw new Error('vault transit returned no plaintext');
    return Buffer.from(res.plaintext, 'base64').toString('utf8');
  }

  // ---- Code checking ---------------------------------------------------------------------------

  /**
   * Phase one: what the typed code is and whether it matches, without writing anything. Six
   * digits are a TOTP code (checked against the live secret, ±1 step, replay by step); the
   * recovery-code shape is looked up by hash; anything else is malformed.
   */
  private async check(user: User, code: string): Promise<Verdict> {
    const typed = code.replace(/\s+/g, '');
    if (TOTP_SHAPE.test(typed)) {
      const enc = user.totp_secret_enc;
      if (!enc) return { ok: false, reason: 'invalid' };
      const secret = await this.decrypt(enc);
      const last = user.totp_last_step === null || user.totp_last_step === undefined ? null : Number(user.totp_last_step);
      const r = verifyTotp(secret, typed, last);
      return r.ok ? { ok: true, method: 'totp', step: r.step, secretEnc: enc } : { ok: false, reason: r.reason };
    }
    const normalised = normaliseRecoveryCode(code);
    if (RECOVERY_SHAPE.test(normalised)) {
      const codeHash = hashRecoveryCode(normalised);
      const row = await MfaRecoveryCode.findOne({ where: { user_id: user.id, code_hash: codeHash }, attributes: ['id', 'used_at'] });
      if (!row) return { ok: false, reason: 'invalid' };
      if (row.used_at) return { ok: false, reason: 'replayed' };
      return { ok: true, method: 'recovery', codeHash };
    }
    return { ok: false, reason: 'malformed' };
  }

  /**
   * Phase two, inside the caller's transaction: spend what matched. False when a concurrent
   * request spent it first (or the secret changed meanwhile): the caller treats that as a replay.
   */
  private async claim(t: Transaction, userId: string, v: Extract<Verdict, { ok: true }>): Promise<boolean> {
    if (v.method === 'totp') {
      const rows = await this.sequelize.query(
        `UPDATE users SET totp_last_step = $2
          WHERE id = $1 AND mfa_enabled AND totp_secret_enc = $3 AND (totp_last_step IS NULL OR totp_last_step < $2)
          RETURNING id`,
        { bind: [userId, v.step, v.secretEnc], transaction: t, type: QueryTypes.SELECT },
      );
      return rows.length === 1;
    }
    const rows = await this.sequelize.query(
      `UPDATE mfa_recovery_codes SET used_at = now() WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL RETURNING id`,
      { bind: [userId, v.codeHash], transaction: t, type: QueryTypes.SELECT },
    );
    return rows.length === 1;
  }

  private async remainingRecoveryCodes(t: Transaction, userId: string): Promise<number> {
    return MfaRecoveryCode.count({ where: { user_id: userId, used_at: null }, transaction: t });
  }

  /**
   * A failed code, whose slot was reserved by `evaluate`: audit it and answer. When the slot was
   * the cap's last the account is locked and the answer is `account_locked`; otherwise
   * `invalid_mfa_code` (the same for wrong, replayed and malformed codes, so the answer does not
   * help a guesser).
   */
  private async fail(
    userId: string,
    reason: FailureReason,
    purpose: string,
    meta: RequestMeta,
    failures: number,
    extra: Record<string, unknown> = {},
  ): Promise<never> {
    await audit(undefined, 'mfa.code_rejected', userId, meta, { reason, purpose }).catch(() => undefined);
    if (failures >= this.limits.threshold) {
      const lock = await this.limits.lockForFailures(userId, 'mfa', meta);
      if (lock.locked) throw lockedError(lock.lockedUntil);
    }
    throw new AppError('invalid_mfa_code', 'the code is wrong, expired or was already used', extra);
  }

  /**
   * Reserve, then check: the code's slot of the account-wide cap is taken before the code is
   * evaluated. No slot left: the account is locked (or already was) and the code is not looked
   * at. A wrong code keeps its slot (`fail`); a check that could not run (Vault away) gives it
   * back. Returns the matching verdict and the failures count including this attempt.
   */
  private async evaluate(
    user: User,
    code: string,
    purpose: string,
    meta: RequestMeta,
    extra: Record<string, unknown> = {},
  ): Promise<{ v: Extract<Verdict, { ok: true }>; failures: number }> {
    const status = user.status === 'pending_deletion' ? 'pending_deletion' : 'active';
    let failures = await this.limits.reserveMfaAttempt(user.id, status);
    if (failures === null) {
      // The cap is reached (lock it now) or a lock ran out (unlocked by the same call): try once more.
      const lock = await this.limits.lockForFailures(user.id, 'mfa', meta);
      if (!lock.locked) failures = await this.limits.reserveMfaAttempt(user.id, status);
      if (failures === null) {
        await audit(undefined, 'mfa.attempt_refused', user.id, meta, { purpose, reason: 'cap_reached' }).catch(() => undefined);
        throw lockedError(lock.lockedUntil);
      }
    }
    let v: Verdict;
    try {
      v = await this.check(user, code);
    } catch (err) {
      await this.limits.releaseAttempt(user.id).catch(() => undefined);
      throw err;
    }
    if (!v.ok) return this.fail(user.id, v.reason, purpose, meta, failures, extra);
    return { v, failures };
  }

  /** Inside a success transaction: the account must still be in `status` (a racing failure may have locked it). */
  private async stillActive(t: Transaction, userId: string, status: 'active' | 'pending_deletion' = 'active'): Promise<void> {
    const [row] = await this.sequelize.query<{ status: string; locked_until: Date | null }>(`SELECT status, locked_until FROM users WHERE id = $1 FOR UPDATE`, {
      bind: [userId],
      transaction: t,
      type: QueryTypes.SELECT,
    });
    if (row?.status === 'locked') throw lockedError(row.locked_until ?? undefined);
    if (row?.status !== status) throw new AppError('unauthorized', 'the account cannot do this in its current state');
  }

  // ---- Enrolment -------------------------------------------------------------------------------

  private async activeUser(userId: string, t?: Transaction): Promise<User> {
    const user = await User.findByPk(userId, t ? { transaction: t, lock: t.LOCK.UPDATE } : {});
    if (!user || user.status !== 'active') throw new AppError('unauthorized', 'the account cannot do this in its current state');
    return user;
  }

  /**
   * Starts (or restarts) an enrolment: a new 160-bit secret, stored encrypted as the pending
   * secret until a code confirms it. Any earlier pending secret is replaced.
   */
  async beginEnrolment(userId: string, meta: RequestMeta): Promise<Enrolment> {
    const user = await this.activeUser(userId);
    if (user.mfa_enabled) throw new AppError('conflict', 'two-factor authentication is already on; turn it off first to enrol again');
    const secret = generateTotpSecret();
    const enc = await this.encrypt(secret);
    await withTx(this.sequelize, async (t) => {
      const rows = await this.sequelize.query(`UPDATE users SET totp_pending_enc = $2, updated_at = now() WHERE id = $1 AND NOT mfa_enabled RETURNING id`, {
        bind: [user.id, enc],
        transaction: t,
        type: QueryTypes.SELECT,
      });
      if (rows.length !== 1) throw new AppError('conflict', 'two-factor authentication is already on');
      await audit(t, 'mfa.enrolment_started', user.id, meta);
    });
    const url = otpauthUrl(secret, user.email ?? user.id, this.s.issuer);
    const qr = await toDataURL(url, { errorCorrectionLevel: 'M', margin: 2, width: 256 });
    return { secret, otpauth_url: url, qr_code: qr };
  }

  /**
   * Confirms the pending secret with a code from the app: MFA is on from here, and the user gets
   * fresh recovery codes (only their hashes are stored; earlier ones are deleted).
   */
  async confirmEnrolment(userId: string, code: string, meta: RequestMeta): Promise<{ recovery_codes: string[] }> {
    const user = await this.activeUser(userId);
    if (user.mfa_enabled) throw new AppError('conflict', 'two-factor authentication is already on');
    const pending = user.totp_pending_enc;
    if (!pending) throw new AppError('conflict', 'there is no pending enrolment; start one with POST /v1/me/mfa/totp');
    const typed = code.replace(/\s+/g, '');
    const result = TOTP_SHAPE.test(typed) ? verifyTotp(await this.decrypt(pending), typed, null) : ({ ok: false, reason: 'malformed' } as const);
    if (!result.ok) {
      await audit(undefined, 'mfa.code_rejected', user.id, meta, { reason: result.reason, purpose: 'enrolment' }).catch(() => undefined);
      throw new AppError('invalid_mfa_code', 'the code does not match the new secret; check the device clock and try the current code');
    }
    const codes = generateRecoveryCodes(this.s.recoveryCodes);
    await withTx(this.sequelize, async (t) => {
      const locked = await this.activeUser(user.id, t);
      if (locked.mfa_enabled || locked.totp_pending_enc !== pending) {
        throw new AppError('conflict', 'the enrolment changed meanwhile; start again');
      }
      await locked.update(
        { mfa_enabled: true, totp_secret_enc: pending, totp_pending_enc: null, totp_last_step: String(result.step), updated_at: new Date() },
        { transaction: t },
      );
      await MfaRecoveryCode.destroy({ where: { user_id: user.id }, transaction: t });
      await MfaRecoveryCode.bulkCreate(
        codes.map((c) => ({ id: randomUUID(), user_id: user.id, code_hash: hashRecoveryCode(c) })),
        { transaction: t },
      );
      await audit(t, 'mfa.enabled', user.id, meta, { method: 'totp', recovery_codes: codes.length });
    });
    return { recovery_codes: codes };
  }

  /** Turns MFA off after a fresh code (TOTP or recovery); secrets, recovery codes and open login challenges go.
   * The caller has re-authenticated the user with the password (AccountService.reauthenticate). */
  async disable(userId: string, code: string, meta: RequestMeta): Promise<void> {
    const user = await this.activeUser(userId);
    if (!user.mfa_enabled) throw new AppError('conflict', 'two-factor authentication is not on');
    const { v, failures } = await this.evaluate(user, code, 'disable', meta);
    try {
      await withTx(this.sequelize, async (t) => {
        await this.stillActive(t, user.id);
        if (!(await this.claim(t, user.id, v))) throw new LostRace();
        await this.sequelize.query(
          `UPDATE users SET mfa_enabled = false, totp_secret_enc = NULL, totp_pending_enc = NULL, totp_last_step = NULL, updated_at = now() WHERE id = $1`,
          { bind: [user.id], transaction: t },
        );
        await MfaRecoveryCode.destroy({ where: { user_id: user.id }, transaction: t });
        await this.sequelize.query(`UPDATE mfa_challenges SET used_at = now() WHERE user_id = $1 AND used_at IS NULL`, { bind: [user.id], transaction: t });
        await this.limits.releaseAttempt(user.id, t);
        await audit(t, 'mfa.disabled', user.id, meta, { method: v.method });
      });
    } catch (err) {
      if (err instanceof LostRace) return this.fail(user.id, 'replayed', 'disable', meta, failures);
      throw err;
    }
  }

  /**
   * For sensitive operations (change password, delete account, ...): null for users without MFA;
   * for MFA users a fresh code (TOTP or recovery) must come with the request. Missing → 401
   * `mfa_required`; wrong or replayed → 401 `invalid_mfa_code` (its slot of the cap kept). A right
   * code is not spent yet: the caller spends it with `spend(t)` inside the transaction of the
   * change it authorises (so a change that fails leaves the code usable), or `release()`s it.
   */
  async prepareSecondFactor(userId: string, code: string | undefined, meta: RequestMeta, purpose = 'sensitive_operation'): Promise<SecondFactorClaim | null> {
    const user = await User.findByPk(userId).catch((err) => Promise.reject(mapDbError(err)));
    if (!user || !user.mfa_enabled) return null;
    if (code === undefined || code.trim() === '') {
      throw new AppError('mfa_required', 'this operation needs a current code from your authenticator app (field `code`)');
    }
    const { v, failures } = await this.evaluate(user, code, purpose, meta);
    let settled = false;
    return {
      spend: async (t: Transaction) => {
        await this.stillActive(t, user.id, user.status === 'pending_deletion' ? 'pending_deletion' : 'active');
        if (!(await this.claim(t, user.id, v))) {
          settled = true;
          // Spent by a concurrent request: a replay, whose slot stays counted.
          await audit(undefined, 'mfa.code_rejected', user.id, meta, { reason: 'replayed', purpose }).catch(() => undefined);
          throw new AppError('invalid_mfa_code', 'the code is wrong, expired or was already used');
        }
        await this.limits.releaseAttempt(user.id, t);
        await audit(t, 'mfa.verified', user.id, meta, { method: v.method, purpose });
        t.afterCommit(() => {
          settled = true;
        });
      },
      release: async () => {
        if (settled) return;
        settled = true;
        await this.limits.releaseAttempt(user.id).catch(() => undefined);
      },
      failures,
    };
  }

  /** `prepareSecondFactor` and its spend in a transaction of its own (operations that run after it). */
  async assertFreshSecondFactor(userId: string, code: string | undefined, meta: RequestMeta, purpose = 'sensitive_operation'): Promise<void> {
    const claim = await this.prepareSecondFactor(userId, code, meta, purpose);
    if (!claim) return;
    try {
      await withTx(this.sequelize, (t) => claim.spend(t));
    } catch (err) {
      await claim.release();
      throw err;
    }
  }

  /** A step-up's TOTP path: true only for a user who still has MFA on and a fresh, right code (counted like any code). */
  async confirmsStepUp(userId: string, code: string, meta: RequestMeta): Promise<boolean> {
    const user = await User.findByPk(userId, { attributes: ['id', 'mfa_enabled'] }).catch((err) => Promise.reject(mapDbError(err)));
    if (!user?.mfa_enabled) return false;
    try {
      await this.assertFreshSecondFactor(userId, code, meta, 'step_up');
      return true;
    } catch (err) {
      if (err instanceof AppError && ['invalid_mfa_code', 'mfa_required', 'account_locked'].includes(err.code)) return false;
      throw err;
    }
  }

  // ---- Login -----------------------------------------------------------------------------------

  /**
   * After a correct password of an MFA user: a challenge bound to this attempt (user, device
   * fingerprint of this request, a moment in time). The token goes to the client, its hash to
   * the table. The user's spent or expired challenges are cleared on the way.
   */
  async startLoginChallenge(user: { id: string }, meta: RequestMeta): Promise<{ mfa_required: true; mfa_token: string; expires_in: number }> {
    const token = MFA_TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const fp = deriveFingerprint(meta).hash;
    await withTx(this.sequelize, async (t) => {
      await this.sequelize.query(`DELETE FROM mfa_challenges WHERE user_id = $1 AND (used_at IS NOT NULL OR expires_at < now())`, {
        bind: [user.id],
        transaction: t,
      });
      await this.sequelize.query(
        `INSERT INTO mfa_challenges (id, user_id, token_hash, fingerprint, expires_at, ip, jkt) VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5), $6, $7)`,
        { bind: [randomUUID(), user.id, hashOpaque(token), fp, this.s.challengeTtl, meta.ip ?? null, meta.dpopJkt ?? null], transaction: t },
      );
      await audit(t, 'login.mfa_challenged', user.id, meta);
    });
    return { mfa_required: true, mfa_token: token, expires_in: this.s.challengeTtl };
  }

  /**
   * The second step of an MFA login. The token must be live (not used, not expired, attempts
   * left) and presented from the device that did the password step; the user must still be
   * active with MFA on and the same password. Each code attempt uses one of the token's attempts;
   * a Vault failure while decrypting is a 503 and uses none. Success spends the token and the
   * code and opens a session with amr ["pwd","otp"], all in one transaction.
   */
  async completeLogin(mfaToken: string, code: string, meta: RequestMeta): Promise<IssuedTokens> {
    const invalidToken = () => new AppError('invalid_grant', 'the MFA token is invalid, expired or used up; sign in again');
    if (!looksLikeMfaToken(mfaToken)) throw invalidToken();
    const hash = hashOpaque(mfaToken);
    const rows = await this.sequelize
      .query<ChallengeRow>(
        `SELECT id, user_id, fingerprint, jkt, created_at,
              (used_at IS NULL AND expires_at > now() AND attempts < $2) AS live
         FROM mfa_challenges WHERE token_hash = $1`,
        { bind: [hash, this.s.maxAttempts], type: QueryTypes.SELECT },
      )
      .catch((err) => Promise.reject(mapDbError(err)));
    const ch = rows[0];
    if (!ch || !ch.live || !deriveFingerprint(meta).hash.equals(ch.fingerprint)) throw invalidToken();
    // RFC 9449: an mfa_token of a key-bound password step is good only with a proof of that key.
    if (ch.jkt && meta.dpopJkt !== ch.jkt) {
      await audit(undefined, 'login.mfa_dpop_refused', ch.user_id, meta, { reason: meta.dpopJkt ? 'other_key' : 'no_proof' }).catch(() => undefined);
      throw new AppError('invalid_dpop_proof', 'this mfa_token is bound to a key: send a fresh DPoP proof made with it');
    }

    const user = await User.findByPk(ch.user_id).catch((err) => Promise.reject(mapDbError(err)));
    if (!user) throw invalidToken();
    if (user.status === 'locked') {
      throw new AppError('account_locked', 'the account is locked', user.locked_until ? { retry_at: user.locked_until.toISOString() } : {});
    }
    if (user.status === 'suspended') throw new AppError('account_suspended', 'the account is suspended');
    const passwordChangedSince = user.password_changed_at && new Date(user.password_changed_at) > new Date(ch.created_at);
    if (user.status !== 'active' || !user.mfa_enabled || passwordChangedSince) throw invalidToken();

    // One attempt of this token used before the code is looked at, committed whatever happens next.
    const used = await this.sequelize
      .query<{ attempts: number }>(
        `UPDATE mfa_challenges SET attempts = attempts + 1
        WHERE id = $1 AND used_at IS NULL AND expires_at > now() AND attempts < $2
        RETURNING attempts`,
        { bind: [ch.id, this.s.maxAttempts], type: QueryTypes.SELECT },
      )
      .catch((err) => Promise.reject(mapDbError(err)));
    if (!used[0]) throw invalidToken();
    const attemptsLeft = this.s.maxAttempts - used[0].attempts;

    let evaluated: { v: Extract<Verdict, { ok: true }>; failures: number };
    try {
      evaluated = await this.evaluate(user, code, 'login', meta, { attempts_remaining: attemptsLeft });
    } catch (err) {
      // A check that could not run (Vault away: 503) uses none of the token's attempts.
      if (!(err instanceof AppError) || err instanceof DependencyError) {
        await this.sequelize
          .query(`UPDATE mfa_challenges SET attempts = attempts - 1 WHERE id = $1 AND attempts > 0`, { bind: [ch.id] })
          .catch(() => undefined);
      }
      throw err;
    }
    const { v, failures } = evaluated;

    let finish: () => Promise<IssuedTokens>;
    try {
      finish = await withTx(this.sequelize, async (t) => {
        // The account first (a racing failure may have locked it), then the code: losing its race
        // rolls everything back, and the token stays usable.
        await this.stillActive(t, user.id);
        if (!(await this.claim(t, user.id, v))) throw new LostRace();
        const spent = await this.sequelize.query(
          `UPDATE mfa_challenges SET used_at = now() WHERE id = $1 AND used_at IS NULL AND expires_at > now() RETURNING id`,
          { bind: [ch.id], transaction: t, type: QueryTypes.SELECT },
        );
        if (spent.length !== 1) throw invalidToken();
        const f = await this.sessions.createSession(t, user, MFA_AMR, meta);
        const left = v.method === 'recovery' ? { recovery_codes_left: await this.remainingRecoveryCodes(t, user.id) } : {};
        await audit(t, 'login.succeeded', user.id, meta, { amr: MFA_AMR, mfa_method: v.method, ...left });
        await this.limits.clearFailedAttempts(user.id, t);
        return f;
      });
    } catch (err) {
      if (err instanceof LostRace) return this.fail(user.id, 'replayed', 'login', meta, failures, { attempts_remaining: attemptsLeft });
      throw err;
    }
    return finish();
  }
}
