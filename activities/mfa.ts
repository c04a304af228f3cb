/** Activities of this feature area (filled in by its issue). */
import type { ActivityDeps } from './index';

export function createMfaActivities(_deps: ActivityDeps) {
  return {};
}
