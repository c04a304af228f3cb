/**
 * Password reset, the database half (the flow itself is workflows/password-reset.ts).
 *
 * `accountFor` decides who may receive a reset e-mail; the API calls it in the background of a
 * forgot request, so the answer and its timing never depend on the account. `reset` spends a
 * token: only the SHA-256 of the e-mailed token is stored, and a token is valid while unused, not
 * superseded by a newer one and not expired. Applying the new password, spending the token,
 * superseding the others, ending every session of the user and the audit event are one
 * transaction; the flow is told inside it (`notify`), so if Temporal cannot be told nothing
 * changes and the client gets a 503 it can retry with the same token.
 */
import { Op, Sequelize } from 'sequelize';
import type { AccountService } from './accounts';
import { audit } from '../audit';
import { mapDbError } from '../../platform/db';
import { OneTimeToken, User } from '../../platform/db/models';
import { AppError } from '../../platform/errors';
import { Argon2Params, hashPassword } from '../../crypto/argon2';
import type { RequestMeta, SessionService } from '../sessions/sessions';
import { hashOpaque } from '../../crypto/opaque-tokens';
import { normaliseEmail } from './users';

/** Users who may ask for a reset themselves (a lockout is a classic reason to). */
const MAY_REQUEST = new Set(['active', 'locked']);
/** Accounts on their way out never take a new password. */
const MAY_NOT_RESET = new Set(['deleted', 'pending_deletion']);

const invalidToken = () => new AppError('invalid_token', 'the reset token is invalid, expired or already used');

export class PasswordResetService {
  constructor(
    private readonly sequelize: Sequelize,
    private readonly sessions: SessionService,
    private readonly accounts: AccountService,
    private readonly argon2: Argon2Params,
  ) {}

  /** The id of the account a forgot request may e-mail, or undefined (unknown, unverified, suspended...). */
  async accountFor(email: string): Promise<string | undefined> {
    const user = await User.findOne({ where: { email: normaliseEmail(email) }, attributes: ['id', 'status'] }).catch((err) => Promise.reject(mapDbError(err)));
    return user && MAY_REQUEST.has(user.status) ? user.id : undefined;
  }

  private liveToken(hash: Buffer) {
    return { token_hash: hash, purpose: 'password_reset' as const, used_at: null, superseded_at: null, expires_at: { [Op.gt]: new Date() } };
  }

  /**
   * Sets a new password with a reset token. Wrong, used, superseded or expired tokens are 400
   * `invalid_token`; a password the policy refuses is 400 `validation_failed` and leaves the token
   * usable. `notify(userId)` runs inside the transaction (tell the workflow); if it throws, nothing
   * is changed.
   */
  async reset(token: string, newPassword: string, meta: RequestMeta, notify: (userId: string) => Promise<void>): Promise<{ userId: string; sessionsEnded: number }> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(token)) throw invalidToken();
    const hash = hashOpaque(token);
    const found = await OneTimeToken.findOne({ where: this.liveToken(hash) }).catch((err) => Promise.reject(mapDbError(err)));
    if (!found) throw invalidToken();
    const user = await User.findByPk(found.user_id).catch((err) => Promise.reject(mapDbError(err)));
    if (!user || MAY_NOT_RESET.has(user.status)) throw invalidToken();
    this.accounts.policyCheck(newPassword, user.email ?? undefined, user.name ?? undefined);
    const passwordHash = await hashPassword(newPassword, this.argon2);
    try {
      return await this.sequelize.transaction(async (t) => {
        // Again under a row lock: of two concurrent resets with one token exactly one proceeds.
        const ott = await OneTimeToken.findOne({ where: this.liveToken(hash), transaction: t, lock: t.LOCK.UPDATE });
        if (!ott) throw invalidToken();
        const now = new Date();
        await ott.update({ used_at: now }, { transaction: t });
        await OneTimeToken.update({ superseded_at: now }, { where: { user_id: user.id, purpose: 'password_reset', used_at: null, superseded_at: null }, transaction: t });
        await User.update({ password_hash: passwordHash, password_changed_at: now, updated_at: now }, { where: { id: user.id }, transaction: t });
        const sessionsEnded = await this.sessions.revokeAllForUser(t, user.id, 'password_reset');
        await audit(t, 'password.reset', user.id, meta, { sessions_ended: sessionsEnded });
        await notify(user.id);
        return { userId: user.id, sessionsEnded };
      });
    } catch (err) {
      throw mapDbError(err);
    }
  }
}
