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
  'client_secret',
  '*.client_secret',
  'secret_sha256',
  '*.secret_sha256',
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

/** Fields of database errors (Sequelize's and pg's) that carry the statement, its bind parameters
 * or row values; never logged. */
const DB_ERROR_FIELDS = [
  'sql',
  'parameters',
  'original',
  'parent',
  'fields',
  'errors',
  'instance',
  'value',
  'detail',
  'where',
  'hint',
  'internalQuery',
  'bind',
];
/** What identifies a database error without any data: SQLSTATE, the server routine, the names involved. */
const DB_ERROR_KEPT = ['routine', 'constraint', 'table', 'column', 'schema', 'dataType'] as const;

function isDatabaseError(e: Record<string, unknown>): boolean {
  return (
    typeof e.sql === 'string' ||
    'parameters' in e ||
    'original' in e ||
    (typeof e.name === 'string' && e.name.startsWith('Sequelize')) ||
    (typeof e.severity === 'string' && typeof e.routine === 'string') // pg's own DatabaseError
  );
}

/**
 * The `err` serializer of every logger: pino's, except that a database error is reduced to its
 * type, SQLSTATE (`sqlstate`), routine and object names. Its message is dropped too (Postgres puts input values
 * in some messages: `invalid input syntax for type uuid: "..."`), and so is the stack's first line.
 */
export function serializeError(err: unknown, depth = 0): unknown {
  if (!err || typeof err !== 'object') return err;
  const e = err as Record<string, unknown>;
  if (!isDatabaseError(e)) {
    const out = { ...(pino.stdSerializers.err(err as Error) as unknown as Record<string, unknown>) }; // a copy: never edit the logged object
    if (e.cause && typeof e.cause === 'object' && isDatabaseError(e.cause as Record<string, unknown>)) {
      // pino folds a cause's message and stack into these: rebuild them without the cause's.
      out.message = typeof e.message === 'string' ? e.message : '';
      out.stack = typeof e.stack === 'string' ? e.stack : undefined;
      out.cause = depth < 3 ? serializeError(e.cause, depth + 1) : undefined;
    }
    for (const k of DB_ERROR_FIELDS) delete out[k];
    return out;
  }
  const pgErr = ((e.original ?? e.parent ?? e) as Record<string, unknown>) || e;
  const type = typeof e.name === 'string' ? e.name : 'DatabaseError';
  const out: Record<string, unknown> = { type };
  // `sqlstate`, not `code`: `*.code` is a redacted path (one-time codes).
  const sqlstate = typeof pgErr.code === 'string' ? pgErr.code : undefined;
  if (sqlstate) out.sqlstate = sqlstate;
  for (const k of DB_ERROR_KEPT) if (typeof pgErr[k] === 'string') out[k] = pgErr[k];
  const routine = typeof pgErr.routine === 'string' ? pgErr.routine : undefined;
  out.message = `${type}${sqlstate ? ` (SQLSTATE ${sqlstate})` : ''}${routine ? ` in ${routine}` : ''}`;
  if (typeof e.stack === 'string') out.stack = e.stack.split('\n').slice(1).join('\n');
  return out;
}

export function createLogger(level: string, name: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      name,
      level,
      base: { service: name },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { err: serializeError },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
