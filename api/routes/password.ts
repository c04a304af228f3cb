/** Routes of this feature area (filled in by its issue). */
import Router from '@koa/router';
import type { AppDeps } from '../context';

export function passwordRouter(_deps: AppDeps): Router {
  return new Router();
}
