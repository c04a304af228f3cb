/** Audit events, written in the same transaction as the change they record. */
import type { Transaction } from 'sequelize';
import { AuditEvent } from '../platform/db/models';

export interface AuditMeta {
  ip?: string | null;
  requestId?: string | null;
  actorId?: string | null;
}

export async function audit(
  t: Transaction | undefined,
  type: string,
  userId: string | null,
  meta: AuditMeta = {},
  data: Record<string, unknown> = {},
): Promise<void> {
  await AuditEvent.create(
    { type, user_id: userId, actor_id: meta.actorId ?? null, ip: meta.ip ?? null, request_id: meta.requestId ?? null, data },
    { transaction: t },
  );
}
