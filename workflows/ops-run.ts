/** What the Vault-operations flows (key-rotation, backups) share for their run records. */

/** The message of the innermost cause (an activity's own error rather than "activity failed"). */
export function rootMessage(err: unknown): string {
  let e = err as { message?: string; cause?: unknown } | undefined;
  while (e?.cause) e = e.cause;
  return String(e?.message ?? err).slice(0, 500);
}
