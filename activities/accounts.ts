/** Activities of this feature area (filled in by its issue). */
import type { ActivityDeps } from './index';

export function createAccountActivities(_deps: ActivityDeps) {
  return {};
}
