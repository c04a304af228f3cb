/**
 * Which database errors mean "Postgres is unavailable" (503 with Retry-After) rather than a bug
 * (500). Seen in the reliability fault matrix: a refresh in flight while Postgres did a fast
 * shutdown failed with node-postgres' "Connection terminated unexpectedly", wrapped by Sequelize
 * as a DatabaseError without a SQLSTATE, and answered 500.
 */
import { DatabaseError, UniqueConstraintError } from 'sequelize';
import { isConnectionFailure, mapDbError } from '../../../platform/db';
import { DependencyError } from '../../../platform/errors';

const dbError = (message: string, code?: string) => {
  const parent = Object.assign(new Error(message), code ? { code } : {}, { sql: 'SELECT 1' });
  return new DatabaseError(parent);
};

describe('isConnectionFailure', () => {
  it.each([
    ['Connection terminated unexpectedly', undefined],
    ['Client has encountered a connection error and is not queryable', undefined],
    ['Client was closed and is not queryable', undefined],
    ['terminating connection due to administrator command', '57P01'],
    ['the database system is shutting down', '57P03'],
    ['connection failure', '08006'],
    ['write EPIPE', 'EPIPE'],
  ])('"%s" (%s) is an outage, answered 503', (message, code) => {
    const err = dbError(message, code);
    expect(isConnectionFailure(err)).toBe(true);
    expect(mapDbError(err)).toBeInstanceOf(DependencyError);
  });

  it.each([
    ['syntax error at or near "x"', '42601'],
    ['division by zero', '22012'],
    ['Connection terminated unexpectedly', '23505'],
  ])('"%s" (%s) is not an outage', (message, code) => {
    expect(isConnectionFailure(dbError(message, code))).toBe(false);
  });

  it('a unique violation stays what it is', () => {
    expect(isConnectionFailure(new UniqueConstraintError({}))).toBe(false);
  });
});
