/**
 * Password acceptance rules after NIST SP 800-63B §5.1.1.2 (memorized secrets). Pure: no I/O
 * beyond loading the bundled list of common passwords once.
 *
 * What is checked, in this order, and why:
 *  1. Length, in Unicode code points after NFKC normalisation (the same normalisation
 *     passwords.ts applies before hashing), between `minLength` and `maxLength`. NIST asks for a
 *     minimum of 8 (this service defaults to 12) and for allowing at least 64; every printable
 *     character, spaces and emoji included, counts as one.
 *     → 'too_short' / 'too_long'
 *  2. Repetitive or sequential: the whole password is one character repeated ("aaaaaaaaaaaa"), a
 *     short block of up to 4 characters repeated ("abcabcabcabc", "12121212"), or a straight run
 *     up or down the alphabet or the digits ("abcdefghijkl", "987654321098"). NIST names
 *     "repetitive or sequential characters" explicitly; these are the first guesses of any cracker.
 *     → 'repetitive'
 *  3. Context-specific words: the password contains the local part of the user's e-mail address
 *     (before any "+tag" too), case-insensitively, when that part has at least 3 characters; or a
 *     word of the user's name of at least 4 characters (shorter name words such as "Al" or "de"
 *     would reject too many unrelated passwords). NIST: "context-specific words, such as … the
 *     username". Both are reported as 'contains_email' (personal identifier from the account).
 *     → 'contains_email'
 *  4. Common / breached passwords: the lowercased password is in the list of ~49,000 most common
 *     leaked passwords shipped by @zxcvbn-ts/language-common (the list zxcvbn-ts uses), or it is
 *     such a password followed only by digits and symbols ("Sunshine2024!", "football!!1"). The
 *     stripped form must be at least 8 characters for that second test, so a long password that
 *     merely starts with a short common word ("dragon" + 10 digits) is not rejected by it.
 *     NIST: "passwords obtained from previous breach corpuses".
 *     → 'common'
 *
 * Deliberately not checked (NIST says SHALL NOT): composition rules (must contain a digit, an
 * upper-case letter, a symbol…), hints, periodic expiry.
 */
import { dictionary } from '@zxcvbn-ts/language-common';

export type PasswordPolicyCode = 'too_short' | 'too_long' | 'common' | 'contains_email' | 'repetitive';

export type PasswordCheck = { ok: true } | { ok: false; reason: string; code: PasswordPolicyCode };

export interface PasswordPolicyOptions {
  email?: string;
  name?: string;
  minLength: number;
  maxLength: number;
}

let commonPasswords: Set<string> | undefined;

/** The common-password list, lowercased, built on first use (about 49k entries, ~30 ms). */
function common(): Set<string> {
  if (!commonPasswords) {
    commonPasswords = new Set(dictionary['passwords-common'].map((p) => p.toLowerCase()));
  }
  return commonPasswords;
}

/** True when the (lowercased) password is on the common list, exactly or as word + digits/symbols. */
export function isCommonPassword(password: string): boolean {
  const lower = password.normalize('NFKC').toLowerCase();
  const list = common();
  if (list.has(lower)) return true;
  // Strip a trailing run of digits, punctuation, symbols and spaces: "Password123!" → "password".
  const stripped = lower.replace(/[\p{N}\p{P}\p{S}\p{Z}]+$/u, '');
  return stripped !== lower && [...stripped].length >= 8 && list.has(stripped);
}

function codePoints(s: string): number[] {
  return Array.from(s, (ch) => ch.codePointAt(0)!);
}

const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;

/** Next character of a straight run: +1 / -1, with the digits wrapping 9→0 and 0→9. */
function stepsBy(a: number, b: number, dir: 1 | -1): boolean {
  if (b - a === dir) return true;
  if (dir === 1 && a === DIGIT_9 && b === DIGIT_0) return true;
  if (dir === -1 && a === DIGIT_0 && b === DIGIT_9) return true;
  return false;
}

function isAlnum(cp: number): boolean {
  return (cp >= DIGIT_0 && cp <= DIGIT_9) || (cp >= 0x61 && cp <= 0x7a);
}

/** Whole password is a repetition of a block of 1–4 characters, or a straight run. */
export function isRepetitive(password: string): boolean {
  const cps = codePoints(password.normalize('NFKC').toLowerCase());
  const n = cps.length;
  if (n < 2) return false;
  for (let block = 1; block <= 4 && block * 2 <= n; block++) {
    let repeats = true;
    for (let i = block; i < n; i++) {
      if (cps[i] !== cps[i - block]) {
        repeats = false;
        break;
      }
    }
    if (repeats) return true;
  }
  if (!cps.every(isAlnum)) return false;
  for (const dir of [1, -1] as const) {
    let run = true;
    for (let i = 1; i < n; i++) {
      if (!stepsBy(cps[i - 1], cps[i], dir)) {
        run = false;
        break;
      }
    }
    if (run) return true;
  }
  return false;
}

/** Lowercased identifiers from the account that must not appear in the password. */
function personalWords(opts: Pick<PasswordPolicyOptions, 'email' | 'name'>): string[] {
  const words: string[] = [];
  if (opts.email) {
    const at = opts.email.lastIndexOf('@');
    const local = (at >= 0 ? opts.email.slice(0, at) : opts.email).normalize('NFKC').toLowerCase();
    if ([...local].length >= 3) words.push(local);
    const beforeTag = local.split('+')[0];
    if (beforeTag !== local && [...beforeTag].length >= 3) words.push(beforeTag);
  }
  if (opts.name) {
    for (const w of opts.name
      .normalize('NFKC')
      .toLowerCase()
      .split(/[\s\p{P}]+/u)) {
      if ([...w].length >= 4) words.push(w);
    }
  }
  return words;
}

export function checkPassword(password: string, opts: PasswordPolicyOptions): PasswordCheck {
  const pw = password.normalize('NFKC');
  // Length in code points as sent (NIST SP 800-63B: each code point counts as one character), the
  // way JSON Schema's minLength/maxLength in the OpenAPI document count it; NFKC could lengthen
  // (U+00AF → space + combining macron) or shorten it. The other checks look at the normalised form.
  const length = [...password].length;
  if (length < opts.minLength) {
    return {
      ok: false,
      code: 'too_short',
      reason: `Password must be at least ${opts.minLength} characters long.`,
    };
  }
  if (length > opts.maxLength) {
    return {
      ok: false,
      code: 'too_long',
      reason: `Password must be at most ${opts.maxLength} characters long.`,
    };
  }
  if (isRepetitive(pw)) {
    return {
      ok: false,
      code: 'repetitive',
      reason: 'Password must not be a repeated character, a repeated pattern or a simple sequence.',
    };
  }
  const lower = pw.toLowerCase();
  if (personalWords(opts).some((w) => lower.includes(w))) {
    return {
      ok: false,
      code: 'contains_email',
      reason: 'Password must not contain your e-mail address or name.',
    };
  }
  if (isCommonPassword(pw)) {
    return {
      ok: false,
      code: 'common',
      reason: 'This password is too common; it appears in lists of leaked passwords.',
    };
  }
  return { ok: true };
}
