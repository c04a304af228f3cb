/** JSON logs (pino). Levels: error needs a human, warn is a security or degraded event, info a
 * state change, debug detail. Known secret-bearing fields are redacted wherever they appear. */
import pino from 'pino';

export const REDACT_PATHS = [
  'password',
  '*.password',
  'new_password',
  '*.new_password',
  'current_password',
  'token',
  '*.token',
  'refresh_token',
  '*.refresh_token',
  'access_token',
  '*.access_token',
  'code',
  '*.code',
  'secret',
  '*.secret',
  'secret_id',
  '*.secret_id',
  'client_token',
  '*.client_token',
  'mfa_token',
  '*.mfa_token',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
];

export type Logger = pino.Logger;

export function createLogger(level: string, name: string): Logger {
  return pino({
    name,
    level,
    base: { service: name },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    formatters: { level: (label) => ({ level: label }) },
  });
}
