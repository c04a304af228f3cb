/**
 * Device fingerprint for "new sign-in from …" notices and known-device checks. Pure string
 * parsing and one SHA-256; no dependency.
 *
 * What goes into the hash (a canonical, versioned JSON array of the fields below):
 *  - `device`: the client's X-Device-Id (trimmed, at most 200 characters) when sent. Our own apps
 *    send a random id kept in local storage; it is the strongest signal, and distinguishes two
 *    identical phones.
 *  - `ua`: the User-Agent reduced to what is stable for one device: browser or client family and
 *    its MAJOR version, and the OS family. Minor/patch versions, build numbers and OS versions are
 *    dropped, so Chrome 120.0.6099.109 → 120.0.6099.129 is not a "new device", while a jump to
 *    Chrome 121 is (once every few weeks, acceptable). Unrecognised user agents keep their first
 *    product token and its major version, so two unknown clients still differ.
 *  - `lang`: the first Accept-Language tag, lowercased ("en-us"): it is a user setting, rarely
 *    changed, and separates e.g. two household browsers.
 * Not the IP address: mobile and laptop clients change it all the time (cell towers, Wi-Fi, VPN),
 * which would turn every network change into a new device. Location belongs in a separate signal.
 *
 * The version prefix (`fp1`) lets the recipe change later without old hashes silently matching
 * new ones.
 */
import { createHash } from 'node:crypto';

export interface FingerprintHeaders {
  userAgent?: string;
  acceptLanguage?: string;
  deviceId?: string;
}

export interface Fingerprint {
  hash: Buffer;
  label: string;
}

export const FINGERPRINT_VERSION = 'fp1';
const MAX_DEVICE_ID = 200;
/** Longer User-Agent headers are cut before parsing; real ones are well under this. */
const MAX_UA = 1024;

export interface ParsedUserAgent {
  /** Stable family name, e.g. "Firefox", "Chrome", "curl"; "" when nothing recognisable. */
  family: string;
  /** Major version as digits, "" when unknown. */
  major: string;
  /** OS family, e.g. "Windows", "macOS", "Linux", "Android", "iOS"; "" when unknown. */
  os: string;
  /** True for browsers (label "X N on OS"), false for HTTP libraries and tools (label "curl"). */
  browser: boolean;
  /** False when the family was not one of the known ones (label "Unknown device"). */
  known: boolean;
}

/** Order matters: Edge, Opera, Samsung Internet and others also claim "Chrome/" and "Safari/". */
const BROWSERS: ReadonlyArray<readonly [family: string, re: RegExp]> = [
  ['Edge', /\b(?:Edg|Edge|EdgA|EdgiOS)\/(\d+)/],
  ['Opera', /\b(?:OPR|OPT|OPiOS)\/(\d+)/],
  ['Opera', /\bOpera[/ ](\d+)/],
  ['Samsung Internet', /\bSamsungBrowser\/(\d+)/],
  ['Vivaldi', /\bVivaldi\/(\d+)/],
  ['Yandex Browser', /\bYaBrowser\/(\d+)/],
  ['Firefox', /\b(?:Firefox|FxiOS)\/(\d+)/],
  ['Chrome', /\b(?:Chrome|CriOS)\/(\d+)/],
  ['Chromium', /\bChromium\/(\d+)/],
  ['Internet Explorer', /\bMSIE (\d+)/],
  ['Internet Explorer', /\bTrident\/.*\brv:(\d+)/],
  // Safari's own version is in "Version/17.1"; "Safari/605.1.15" is the WebKit build.
  ['Safari', /\bVersion\/(\d+)(?:[.\d]*)? (?:Mobile\/\S+ )?Safari\//],
];

const TOOLS: ReadonlyArray<readonly [family: string, re: RegExp]> = [
  ['curl', /^curl\/(\d+)/i],
  ['Wget', /^Wget\/(\d+)/i],
  ['okhttp', /\bokhttp\/(\d+)/i],
  ['Node.js', /^(?:node|node-fetch|undici)(?![\w-])(?:\/(\d+))?/i],
  ['axios', /^axios\/(\d+)/i],
  ['Python requests', /^python-requests\/(\d+)/i],
  ['Python', /^Python-urllib\/(\d+)/i],
  ['Go', /^Go-http-client\/(\d+)/i],
  ['Postman', /^PostmanRuntime\/(\d+)/i],
  ['HTTPie', /^HTTPie\/(\d+)/i],
];

/** Order matters: Android UAs contain "Linux", iOS UAs contain "like Mac OS X". */
const OSES: ReadonlyArray<readonly [os: string, re: RegExp]> = [
  ['Windows Phone', /\bWindows Phone\b/],
  ['Windows', /\bWindows\b|\bWin(?:32|64)\b/],
  ['Android', /\bAndroid\b/],
  ['iOS', /\b(?:iPhone|iPad|iPod)\b/],
  ['macOS', /\bMac OS X\b|\bMacintosh\b/],
  ['ChromeOS', /\bCrOS\b/],
  ['Linux', /\bLinux\b|\bX11\b|\bUbuntu\b|\bFedora\b/],
];

/** Browser/client family + major version and OS family; everything else is dropped. */
export function parseUserAgent(userAgent: string | undefined): ParsedUserAgent {
  const ua = (userAgent ?? '').slice(0, MAX_UA).trim();
  let os = '';
  for (const [name, re] of OSES) {
    if (re.test(ua)) {
      os = name;
      break;
    }
  }
  if (!ua) return { family: '', major: '', os, browser: false, known: false };
  for (const [family, re] of BROWSERS) {
    const m = re.exec(ua);
    if (m) return { family, major: m[1] ?? '', os, browser: true, known: true };
  }
  for (const [family, re] of TOOLS) {
    const m = re.exec(ua);
    if (m) return { family, major: m[1] ?? '', os, browser: false, known: true };
  }
  // Unknown client: keep its first product token ("MyApp/3.2.1 (…)" → "myapp" 3) for the hash only.
  const m = /^([A-Za-z0-9._-]{1,40})(?:\/v?(\d+))?/.exec(ua);
  return { family: m ? m[1].toLowerCase() : '', major: m?.[2] ?? '', os, browser: false, known: false };
}

/** First language tag of Accept-Language, lowercased ("en-US,en;q=0.9" → "en-us"); "" if none. */
export function primaryLanguage(acceptLanguage: string | undefined): string {
  const first = (acceptLanguage ?? '').slice(0, 256).split(',')[0].split(';')[0].trim().toLowerCase();
  return /^[a-z]{1,8}(?:-[a-z0-9]{1,8})*$/.test(first) ? first : '';
}

function normaliseDeviceId(deviceId: string | undefined): string {
  const id = (deviceId ?? '').trim();
  return Array.from(id).slice(0, MAX_DEVICE_ID).join('');
}

function labelFor(p: ParsedUserAgent): string {
  if (!p.known) return 'Unknown device';
  if (!p.browser) return p.family;
  const name = p.major ? `${p.family} ${p.major}` : p.family;
  return p.os ? `${name} on ${p.os}` : name;
}

/** The canonical string that is hashed; exported for tests and debugging. */
export function fingerprintInput(h: FingerprintHeaders): string {
  const p = parseUserAgent(h.userAgent);
  // JSON keeps the fields unambiguous whatever characters a client puts in its device id.
  return JSON.stringify([
    FINGERPRINT_VERSION,
    { device: normaliseDeviceId(h.deviceId) },
    { ua: [p.family, p.major, p.os] },
    { lang: primaryLanguage(h.acceptLanguage) },
  ]);
}

export function deriveFingerprint(h: FingerprintHeaders): Fingerprint {
  const hash = createHash('sha256').update(fingerprintInput(h), 'utf8').digest();
  return { hash, label: labelFor(parseUserAgent(h.userAgent)) };
}
