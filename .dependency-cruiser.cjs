/**
 * Import rules of docs ARCHITECTURE "Rules a reader may rely on" 1-3 (and the models part of 4),
 * checked by `npm run check:imports` inside `npm test`. Paths are relative to the repository root.
 * Product folders are the eight below; test/, bench/ and infra/ may import anything, but nothing of
 * the product may import them. `import type` (and `import { type X }`) shows up as dependency type
 * 'type-only', `typeof import('x')` as 'type-import'; both are erased at compile time.
 */
const PRODUCT = '^(api|worker|cli|domain|platform|crypto|workflows|activities)/';
const OURS = '^(api|worker|cli|domain|platform|crypto|workflows|activities|test|bench|infra|reliability)/';
const TYPES_ONLY = ['type-only', 'type-import'];

/** Rule 1: a folder may import its own files and the listed folders, no other folder of ours. */
const edges = (name, from, allowed, comment) => ({
  name,
  severity: 'error',
  comment,
  from: typeof from === 'string' ? { path: from } : from,
  to: { path: OURS, pathNot: `^(${allowed.join('|')})/` },
});

module.exports = {
  forbidden: [
    edges(
      'api-edges',
      '^api/',
      ['api', 'domain', 'platform', 'crypto', 'workflows'],
      'api/ may import domain/, platform/, crypto/ and workflows/ (signal/update/query definitions and types only).',
    ),
    edges(
      'worker-edges',
      '^worker/',
      ['worker', 'domain', 'platform', 'crypto', 'activities', 'workflows'],
      'worker/ may import domain/, platform/, crypto/, activities/ and workflows/.',
    ),
    edges('cli-edges', '^cli/', ['cli', 'domain', 'platform', 'crypto'], 'cli/ may import domain/, platform/ and crypto/.'),
    edges('activities-edges', '^activities/', ['activities', 'domain', 'platform', 'crypto'], 'activities/ may import domain/, platform/ and crypto/.'),
    edges('domain-edges', '^domain/', ['domain', 'platform', 'crypto'], 'domain/ may import platform/ and crypto/.'),
    edges(
      'platform-edges',
      { path: '^platform/', pathNot: '^platform/temporal/flows\\.ts$' },
      ['platform', 'crypto'],
      'platform/ may import crypto/ only (platform/temporal/flows.ts also workflows/).',
    ),
    edges(
      'flows-edges',
      '^platform/temporal/flows\\.ts$',
      ['platform', 'crypto', 'workflows'],
      'platform/temporal/flows.ts may import crypto/ and workflows/ (definitions and types).',
    ),
    edges('crypto-edges', '^crypto/', ['crypto'], 'crypto/ holds pure primitives and imports nothing of ours.'),
    edges('workflows-edges', '^workflows/', ['workflows', 'activities'], 'workflows/ imports only its own folder and `import type` from activities/.'),
    {
      name: 'workflows-activities-types-only',
      severity: 'error',
      comment: 'Rule 2: workflows/ imports activities/ with `import type` only (createActivities runs in the worker, not in the sandbox).',
      from: { path: '^workflows/' },
      to: { path: '^activities/', dependencyTypesNot: TYPES_ONLY },
    },
    {
      name: 'workflows-only-temporal-workflow',
      severity: 'error',
      comment: 'Rule 2: the only package workflows/ may import is @temporalio/workflow.',
      from: { path: '^workflows/' },
      to: { path: 'node_modules/', pathNot: 'node_modules/@temporalio/workflow/' },
    },
    {
      name: 'workflows-no-node-builtins',
      severity: 'error',
      comment: 'Rule 2: workflow code runs in a deterministic sandbox; no Node built-ins.',
      from: { path: '^workflows/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'domain-no-temporal-or-koa',
      severity: 'error',
      comment: 'Rule 3: domain/ never imports @temporalio/* or koa; Temporal reaches it through ports it declares.',
      from: { path: '^domain/' },
      to: { path: ['node_modules/@temporalio/', 'node_modules/koa/', 'node_modules/@koa/', 'node_modules/@types/koa'] },
    },
    {
      name: 'routes-activities-no-models',
      severity: 'error',
      comment: 'Rules 4/5: routes and activities call services; no sequelize, no models.',
      from: { path: '^(api/routes|activities)/' },
      to: { path: ['node_modules/(@types/)?sequelize/', '^platform/db/models(\\.ts)?$'] },
    },
    {
      name: 'not-to-entry-folders',
      severity: 'error',
      comment: 'Rule 1: nothing imports api/, worker/ or cli/ (each may import its own files).',
      from: { path: '^(domain|platform|crypto|workflows|activities)/' },
      to: { path: '^(api|worker|cli)/' },
    },
    {
      name: 'product-not-to-test-bench-infra',
      severity: 'error',
      comment: 'test/, bench/, reliability/ and infra/ may import the product, never the other way round.',
      from: { path: PRODUCT },
      to: { path: '^(test|bench|infra|reliability)/' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No circular dependencies (type-only imports included: they are design cycles too).',
      from: { path: OURS },
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that cannot be resolved would slip past every rule above.',
      from: { path: OURS },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|coverage|\\.data)/' },
    // Keep `import type` edges (they are erased by tsc) so the type-only rules can see them.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    // node_modules is a symlink in worktrees; report packages under node_modules/ all the same.
    preserveSymlinks: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['require', 'node', 'types', 'default'],
      extensions: ['.ts', '.d.ts', '.js', '.cjs', '.json'],
      mainFields: ['types', 'typings', 'main'],
    },
    skipAnalysisNotInRules: true,
    reporterOptions: { text: { highlightFocused: true } },
  },
};
