/** Validation with zod: the schema beside each route; failures list the offending fields. */
import { z } from 'zod';
import { AppError } from '../../platform/errors';

export function parse<S extends z.ZodType>(schema: S, input: unknown, where: 'body' | 'query' | 'path' = 'body'): z.infer<S> {
  const r = schema.safeParse(input ?? (where === 'body' ? undefined : {}));
  if (r.success) return r.data;
  // Each error names the field the client sent: the path of the value, or for an unknown member
  // the member itself (zod reports those on the enclosing object).
  const errors = r.error.issues.flatMap((i) => {
    const at = i.path.map(String);
    if (i.code === 'unrecognized_keys') return i.keys.map((k) => ({ field: [...at, k].join('.'), message: `unknown field ${k}` }));
    return [{ field: at.length ? at.join('.') : where, message: i.message }];
  });
  throw new AppError('validation_failed', `invalid ${where}: ${errors.map((e) => e.field).join(', ')}`, { errors });
}
