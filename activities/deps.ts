/**
 * What every activity factory receives: the worker's runtime (platform/runtime.ts), passed in
 * (tests pass real ones). Activities hand its clients to the domain services they build and never
 * query them themselves.
 */
import type { Runtime } from '../platform/runtime';

export type ActivityDeps = Pick<Runtime, 'sequelize' | 'vault' | 'mailer' | 'config' | 'logger'>;
