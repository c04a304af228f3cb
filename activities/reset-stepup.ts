/** Activities of this feature area (filled in by its issue). */
import type { ActivityDeps } from './index';

export function createResetStepUpActivities(_deps: ActivityDeps) {
  return {};
}
