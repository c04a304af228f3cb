/** Activities of this feature area (filled in by its issue). */
import type { ActivityDeps } from './index';

export function createVaultOpsActivities(_deps: ActivityDeps) {
  return {};
}
