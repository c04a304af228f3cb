/**
 * The refresh grace (RFC 9700 §4.14.2) keeps a spent refresh token's successor for a few seconds,
 * so that a retry or a second tab presenting the same token with a proof of the same key gets the
 * same successor instead of ending the session. The successor is never stored in plaintext: it is
 * sealed with AES-256-GCM under a key derived (HKDF-SHA256) from the spent token itself, which the
 * database does not hold (only its SHA-256), with that hash as additional data. Whoever reads the
 * row cannot open it; whoever presents the spent token can. Pure: no I/O.
 */
import { hkdfSync } from 'node:crypto';
import { AES_GCM_IV_BYTES, AES_GCM_TAG_BYTES, openAesGcm, sealAesGcm } from './aes-gcm';

const INFO = Buffer.from('authflow refresh grace v1');

function graceKey(presented: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(presented), Buffer.alloc(0), INFO, 32));
}

/** The sealed successor of `presented` (whose stored hash is `presentedHash`): iv ‖ tag ‖ ciphertext. */
export function sealSuccessor(presented: string, presentedHash: Buffer, successor: string): Buffer {
  const { iv, ciphertext, tag } = sealAesGcm(graceKey(presented), Buffer.from(successor), presentedHash);
  return Buffer.concat([iv, tag, ciphertext]);
}

/** The successor sealed by `sealSuccessor`, or undefined when `sealed` does not open with this token. */
export function openSuccessor(presented: string, presentedHash: Buffer, sealed: Buffer): string | undefined {
  if (sealed.length <= AES_GCM_IV_BYTES + AES_GCM_TAG_BYTES) return undefined;
  try {
    const iv = sealed.subarray(0, AES_GCM_IV_BYTES);
    const tag = sealed.subarray(AES_GCM_IV_BYTES, AES_GCM_IV_BYTES + AES_GCM_TAG_BYTES);
    return openAesGcm(graceKey(presented), iv, sealed.subarray(AES_GCM_IV_BYTES + AES_GCM_TAG_BYTES), tag, presentedHash).toString();
  } catch {
    return undefined;
  }
}
