/**
 * "Wipe a user's credentials": the second factor (recovery codes, open MFA challenges, the TOTP
 * columns) and the known devices. One rule with one owner: the admin's account reset and the
 * erasure of a deleted account both call it, inside their own transaction.
 */
import { QueryTypes, Sequelize, Transaction } from 'sequelize';

/** The user columns of the second factor, cleared (applied by the caller with its own patch). */
export const MFA_CLEARED = { mfa_enabled: false, totp_secret_enc: null, totp_pending_enc: null, totp_last_step: null } as const;

export interface WipedCredentials {
  recoveryCodesDeleted: number;
  devicesForgotten: number;
  challengesDeleted: number;
}

/** Deletes the user's MFA recovery codes, known devices and MFA challenges in `t`. */
export async function wipeCredentials(sequelize: Sequelize, t: Transaction, userId: string): Promise<WipedCredentials> {
  const del = async (sql: string) =>
    (await sequelize.query<{ id: string }>(`${sql} RETURNING id`, { replacements: { id: userId }, type: QueryTypes.SELECT, transaction: t })).length;
  const recoveryCodesDeleted = await del('DELETE FROM mfa_recovery_codes WHERE user_id = :id');
  const devicesForgotten = await del('DELETE FROM device_fingerprints WHERE user_id = :id');
  const [{ t: challenges }] = await sequelize.query<{ t: string | null }>(`SELECT to_regclass('mfa_challenges')::text AS t`, {
    type: QueryTypes.SELECT,
    transaction: t,
  });
  const challengesDeleted = challenges ? await del('DELETE FROM mfa_challenges WHERE user_id = :id') : 0;
  return { recoveryCodesDeleted, devicesForgotten, challengesDeleted };
}
