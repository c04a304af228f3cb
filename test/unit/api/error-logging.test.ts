/** An unhandled database error is logged without its SQL, bind parameters or input values, and
 * the client gets a bare 500 problem. The error is a real Sequelize DatabaseError around the shape
 * of pg's error (no server involved). */
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import Koa from 'koa';
import { DatabaseError, UniqueConstraintError } from 'sequelize';
import { errorMiddleware } from '../../../api/middleware/errors';
import { requestContext } from '../../../api/middleware/request';
import { createLogger, serializeError } from '../../../platform/logger';

const SECRET_VALUE = 'victim@example.com-s3cr3t';

function pgError(): Error & Record<string, unknown> {
  const e = new Error(`invalid input syntax for type uuid: "${SECRET_VALUE}"`) as Error & Record<string, unknown>;
  Object.assign(e, {
    name: 'error',
    severity: 'ERROR',
    code: '22P02',
    routine: 'string_to_uuid',
    where: `unnamed portal parameter $1 = '${SECRET_VALUE}'`,
    detail: `Key (email)=(${SECRET_VALUE}) already exists.`,
    sql: `SELECT * FROM users WHERE id = '${SECRET_VALUE}'`,
    parameters: [SECRET_VALUE],
  });
  return e;
}

function dbError(): DatabaseError {
  const parent = pgError() as unknown as ConstructorParameters<typeof DatabaseError>[0];
  return new DatabaseError(parent);
}

async function serve(thrown: () => unknown): Promise<{ lines: string[]; status: number; body: string }> {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  const app = new Koa();
  app.silent = true;
  app.use(requestContext(createLogger('debug', 'test', sink)));
  app.use(errorMiddleware());
  app.use(() => {
    throw thrown();
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/x`);
    return { lines, status: res.status, body: await res.text() };
  } finally {
    await new Promise((r) => server.close(r));
  }
}

describe('unhandled-error logs', () => {
  test('a Sequelize DatabaseError is logged with SQLSTATE and routine, never its SQL, parameters or values', async () => {
    const { lines, status, body } = await serve(dbError);
    expect(status).toBe(500);
    expect(body).not.toContain(SECRET_VALUE);
    const entry = lines.map((l) => JSON.parse(l) as Record<string, any>).find((l) => l.msg === 'unhandled error');
    expect(entry).toBeDefined();
    expect(entry!.err).toMatchObject({ type: 'SequelizeDatabaseError', sqlstate: '22P02', routine: 'string_to_uuid' });
    expect(entry!.err.stack).toMatch(/error-logging\.test/);
    expect(lines.join('\n')).not.toContain(SECRET_VALUE);
    expect(lines.join('\n')).not.toMatch(/SELECT|parameters|"sql"/);
  });

  test('a unique-constraint error keeps the constraint name, not the row values', () => {
    const parent = Object.assign(pgError(), { code: '23505', constraint: 'users_email_key', table: 'users' });
    const err = new UniqueConstraintError({ parent: parent as never, fields: { email: SECRET_VALUE }, message: 'Validation error' });
    const out = serializeError(err) as Record<string, unknown>;
    expect(out).toMatchObject({ sqlstate: '23505', constraint: 'users_email_key', table: 'users' });
    expect(JSON.stringify(out)).not.toContain(SECRET_VALUE);
  });

  test('an error caused by a database error keeps its own message, the cause reduced', () => {
    const outer = new Error('loading the session failed', { cause: dbError() });
    const out = serializeError(outer) as Record<string, unknown>;
    expect(out.message).toBe('loading the session failed');
    expect(out.cause).toMatchObject({ type: 'SequelizeDatabaseError', sqlstate: '22P02' });
    expect(JSON.stringify(out)).not.toContain(SECRET_VALUE);
  });

  test('other errors are logged as before', () => {
    const out = serializeError(Object.assign(new Error('vault said no'), { status: 403 })) as Record<string, unknown>;
    expect(out).toMatchObject({ type: 'Error', message: 'vault said no', status: 403 });
  });
});
