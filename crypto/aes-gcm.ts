/**
 * AES-256-GCM, the one authenticated cipher of the project: whole buffers (payload codec) and
 * streams (backups). A fresh 96-bit IV per message; the additional authenticated data binds what
 * the ciphertext belongs to (a key id, a backup part). Pure: no I/O, imports nothing of ours.
 */
import { createCipheriv, createDecipheriv, randomBytes, type CipherGCM, type DecipherGCM } from 'node:crypto';

export const AES_GCM_IV_BYTES = 12;
export const AES_GCM_TAG_BYTES = 16;

/** Encrypts a whole buffer: a fresh IV, the ciphertext and the tag. */
export function sealAesGcm(key: Buffer, plain: Uint8Array, aad: Buffer): { iv: Buffer; ciphertext: Buffer; tag: Buffer } {
  const iv = randomBytes(AES_GCM_IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plain), cipher.final()]);
  return { iv, ciphertext, tag: cipher.getAuthTag() };
}

/** Decrypts a whole buffer; throws when it does not authenticate (wrong key, AAD or tampering). */
export function openAesGcm(key: Buffer, iv: Buffer, ciphertext: Buffer, tag: Buffer, aad: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
}

/** An encrypting stream with a fresh IV; read the tag from `cipher.getAuthTag()` once it ended. */
export function aesGcmEncryptStream(key: Buffer, aad: Buffer): { iv: Buffer; cipher: CipherGCM } {
  const iv = randomBytes(AES_GCM_IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  return { iv, cipher };
}

/** A decrypting stream; it errors at its end when the tag does not verify. */
export function aesGcmDecryptStream(key: Buffer, iv: Buffer, tag: Buffer, aad: Buffer): DecipherGCM {
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  return decipher;
}
