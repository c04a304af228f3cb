/** Sequelize models over the schema in migrations/. The schema is the source of truth. */
import { CreationOptional, DataTypes, InferAttributes, InferCreationAttributes, Model, Sequelize } from 'sequelize';

export const USER_STATUSES = ['pending_verification', 'active', 'locked', 'suspended', 'pending_deletion', 'deleted'] as const;
export type UserStatus = (typeof USER_STATUSES)[number];

export class User extends Model<InferAttributes<User>, InferCreationAttributes<User>> {
  declare id: string;
  declare email: string | null;
  declare name: string | null;
  declare password_hash: string | null;
  declare status: CreationOptional<UserStatus>;
  declare roles: CreationOptional<string[]>;
  declare email_verified_at: CreationOptional<Date | null>;
  declare mfa_enabled: CreationOptional<boolean>;
  declare totp_secret_enc: CreationOptional<string | null>;
  declare totp_pending_enc: CreationOptional<string | null>;
  declare totp_last_step: CreationOptional<string | null>;
  declare failed_logins: CreationOptional<number>;
  declare lock_level: CreationOptional<number>;
  declare locked_until: CreationOptional<Date | null>;
  declare failed_window_start: CreationOptional<Date | null>;
  declare last_lock_ended_at: CreationOptional<Date | null>;
  declare status_before: CreationOptional<string | null>;
  declare deletion_due_at: CreationOptional<Date | null>;
  declare created_at: CreationOptional<Date>;
  declare updated_at: CreationOptional<Date>;
  declare password_changed_at: CreationOptional<Date | null>;
  /** Set when a second registration hit the still-unverified address (migrations/006). */
  declare registration_contested_at: CreationOptional<Date | null>;
}

export class Session extends Model<InferAttributes<Session>, InferCreationAttributes<Session>> {
  declare id: string;
  declare user_id: string;
  declare amr: string[];
  declare device_id: CreationOptional<string | null>;
  declare created_at: CreationOptional<Date>;
  declare last_used_at: CreationOptional<Date>;
  declare expires_at: Date;
  declare revoked_at: CreationOptional<Date | null>;
  declare revoke_reason: CreationOptional<string | null>;
  declare ip: CreationOptional<string | null>;
  declare user_agent: CreationOptional<string | null>;
}

export class RefreshToken extends Model<InferAttributes<RefreshToken>, InferCreationAttributes<RefreshToken>> {
  declare id: string;
  declare session_id: string;
  declare token_hash: Buffer;
  declare created_at: CreationOptional<Date>;
  declare expires_at: Date;
  declare spent_at: CreationOptional<Date | null>;
  declare replaced_by: CreationOptional<string | null>;
}

export class OneTimeToken extends Model<InferAttributes<OneTimeToken>, InferCreationAttributes<OneTimeToken>> {
  declare id: string;
  declare user_id: string;
  declare purpose: 'email_verification' | 'password_reset' | 'step_up';
  declare token_hash: Buffer;
  declare flow_id: CreationOptional<string | null>;
  declare created_at: CreationOptional<Date>;
  declare expires_at: Date;
  declare used_at: CreationOptional<Date | null>;
  declare superseded_at: CreationOptional<Date | null>;
}

export class AuditEvent extends Model<InferAttributes<AuditEvent>, InferCreationAttributes<AuditEvent>> {
  declare id: CreationOptional<string>;
  declare user_id: string | null;
  declare actor_id: CreationOptional<string | null>;
  declare type: string;
  declare ip: CreationOptional<string | null>;
  declare request_id: CreationOptional<string | null>;
  declare data: CreationOptional<Record<string, unknown>>;
  declare created_at: CreationOptional<Date>;
}

export class EmailOutbox extends Model<InferAttributes<EmailOutbox>, InferCreationAttributes<EmailOutbox>> {
  declare idempotency_key: string;
  declare user_id: string | null;
  declare template: string;
  declare status: 'pending' | 'sent';
  declare message_id: CreationOptional<string | null>;
  declare created_at: CreationOptional<Date>;
  declare sent_at: CreationOptional<Date | null>;
}

export class DeviceFingerprint extends Model<InferAttributes<DeviceFingerprint>, InferCreationAttributes<DeviceFingerprint>> {
  declare id: string;
  declare user_id: string;
  declare fingerprint: Buffer;
  declare label: string | null;
  declare trusted: CreationOptional<boolean>;
  declare first_seen_at: CreationOptional<Date>;
  declare last_seen_at: CreationOptional<Date>;
  declare last_ip: CreationOptional<string | null>;
}

export class MfaRecoveryCode extends Model<InferAttributes<MfaRecoveryCode>, InferCreationAttributes<MfaRecoveryCode>> {
  declare id: string;
  declare user_id: string;
  declare code_hash: Buffer;
  declare used_at: CreationOptional<Date | null>;
}

const uuid = { type: DataTypes.UUID, primaryKey: true };
const ts = (allowNull = true) => ({ type: DataTypes.DATE, allowNull });

export function initModels(sequelize: Sequelize) {
  const opts = (tableName: string) => ({ sequelize, tableName, timestamps: false, underscored: true });
  User.init(
    {
      id: uuid,
      email: DataTypes.TEXT,
      name: DataTypes.TEXT,
      password_hash: DataTypes.TEXT,
      status: { type: DataTypes.TEXT, allowNull: false, defaultValue: 'pending_verification' },
      roles: { type: DataTypes.ARRAY(DataTypes.TEXT), allowNull: false, defaultValue: ['user'] },
      email_verified_at: ts(),
      mfa_enabled: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
      totp_secret_enc: DataTypes.TEXT,
      totp_pending_enc: DataTypes.TEXT,
      totp_last_step: DataTypes.BIGINT,
      failed_logins: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
      lock_level: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
      locked_until: ts(),
      failed_window_start: ts(),
      last_lock_ended_at: ts(),
      status_before: DataTypes.TEXT,
      deletion_due_at: ts(),
      created_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
      updated_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
      password_changed_at: ts(),
      registration_contested_at: ts(),
    },
    opts('users'),
  );
  Session.init(
    {
      id: uuid,
      user_id: { type: DataTypes.UUID, allowNull: false },
      amr: { type: DataTypes.ARRAY(DataTypes.TEXT), allowNull: false },
      device_id: DataTypes.UUID,
      created_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
      last_used_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
      expires_at: ts(false),
      revoked_at: ts(),
      revoke_reason: DataTypes.TEXT,
      ip: DataTypes.TEXT,
      user_agent: DataTypes.TEXT,
    },
    opts('sessions'),
  );
  RefreshToken.init(
    {
      id: uuid,
      session_id: { type: DataTypes.UUID, allowNull: false },
      token_hash: { type: DataTypes.BLOB, allowNull: false },
      created_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
      expires_at: ts(false),
      spent_at: ts(),
      replaced_by: DataTypes.UUID,
    },
    opts('refresh_tokens'),
  );
  OneTimeToken.init(
    {
      id: uuid,
      user_id: { type: DataTypes.UUID, allowNull: false },
      purpose: { type: DataTypes.TEXT, allowNull: false },
      token_hash: { type: DataTypes.BLOB, allowNull: false },
      flow_id: DataTypes.TEXT,
      created_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
      expires_at: ts(false),
      used_at: ts(),
      superseded_at: ts(),
    },
    opts('one_time_tokens'),
  );
  AuditEvent.init(
    {
      id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
      user_id: DataTypes.UUID,
      actor_id: DataTypes.UUID,
      type: { type: DataTypes.TEXT, allowNull: false },
      ip: DataTypes.TEXT,
      request_id: DataTypes.TEXT,
      data: { type: DataTypes.JSONB, allowNull: false, defaultValue: {} },
      created_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
    },
    opts('audit_events'),
  );
  EmailOutbox.init(
    {
      idempotency_key: { type: DataTypes.TEXT, primaryKey: true },
      user_id: DataTypes.UUID,
      template: { type: DataTypes.TEXT, allowNull: false },
      status: { type: DataTypes.TEXT, allowNull: false },
      message_id: DataTypes.TEXT,
      created_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
      sent_at: ts(),
    },
    opts('email_outbox'),
  );
  DeviceFingerprint.init(
    {
      id: uuid,
      user_id: { type: DataTypes.UUID, allowNull: false },
      fingerprint: { type: DataTypes.BLOB, allowNull: false },
      label: DataTypes.TEXT,
      trusted: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: true },
      first_seen_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
      last_seen_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
      last_ip: DataTypes.TEXT,
    },
    opts('device_fingerprints'),
  );
  MfaRecoveryCode.init(
    {
      id: uuid,
      user_id: { type: DataTypes.UUID, allowNull: false },
      code_hash: { type: DataTypes.BLOB, allowNull: false },
      used_at: ts(),
    },
    opts('mfa_recovery_codes'),
  );
}
