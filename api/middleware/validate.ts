/** Validation with zod: the schema beside each route; failures list the offending fields. */
import { z } from 'zod';
import { AppError } from '../../platform/errors';

export function parse<S extends z.ZodType>(schema: S, input: unknown, where: 'body' | 'query' | 'path' = 'body'): z.infer<S> {
  const r = schema.safeParse(input ?? (where === 'body' ? undefined : {}));
  if (r.success) return r.data;
  const errors = r.error.issues.map((i) => ({ field: i.path.length ? i.path.join('.') : where, message: i.message }));
  throw new AppError('validation_failed', `invalid ${where}: ${errors.map((e) => e.field).join(', ')}`, { errors });
}
