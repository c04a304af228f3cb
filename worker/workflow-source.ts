/** Where the worker takes its workflow code from: the bundle `npm run build` made, when this is the
 * compiled worker and the bundle is there; otherwise the workflow sources, bundled at start. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkerOptions } from '@temporalio/worker';

export const WORKFLOW_BUNDLE_FILE = 'workflow-bundle.js';

export function workflowSource(): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> & { from: string } {
  const compiled = __filename.endsWith('.js');
  const bundle = join(__dirname, '..', WORKFLOW_BUNDLE_FILE);
  if (compiled && existsSync(bundle)) return { workflowBundle: { codePath: bundle }, from: bundle };
  const workflowsPath = require.resolve('../workflows');
  return { workflowsPath, from: `${workflowsPath} (bundled at start)` };
}
