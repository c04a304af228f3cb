/**
 * The OpenAPI 3.1 document, built from the same zod schemas the routes validate with, so the
 * document and the behaviour cannot drift. Each router registers its operations with `describe`.
 */
import { z } from 'zod';
import { NEW_PASSWORD_MARK } from './schemas';

type Method = 'get' | 'post' | 'put' | 'delete' | 'patch' | 'options';

export interface OperationDoc {
  summary: string;
  /** Longer prose: what the server enforces beyond the schemas. */
  description?: string;
  tags: string[];
  body?: z.ZodType;
  /** The body may be left out entirely (the server then reads `{}`). */
  bodyOptional?: boolean;
  query?: z.ZodObject;
  /** Path parameters as the route parses them (default: any non-empty string). */
  params?: z.ZodObject;
  auth?: boolean | 'admin';
  /** Request headers the operation reads (e.g. `DPoP`). */
  headers?: Array<{ name: string; description: string; required?: boolean }>;
  /** status → description, optional schema (JSON bodies) and media type. */
  responses: Record<number, { description: string; schema?: z.ZodType; mediaType?: string }>;
}

const ops = new Map<string, Map<Method, OperationDoc>>();

export function describe(method: Method, path: string, doc: OperationDoc) {
  const oapiPath = path.replace(/:([A-Za-z_]+)/g, '{$1}');
  if (!ops.has(oapiPath)) ops.set(oapiPath, new Map());
  ops.get(oapiPath)!.set(method, doc);
}

// OpenAPI 3.1 schemas are JSON Schema draft 2020-12; `$schema` is left out of each inline schema.
const toSchema = (s: z.ZodType) => {
  const { $schema: _drop, ...js } = z.toJSONSchema(s, { target: 'draft-2020-12', unrepresentable: 'any', io: 'input' }) as Record<string, unknown>;
  return js;
};

/** `get /v1/admin/users/{id}/lock` → `getAdminUsersByIdLock`: unique per operation, stable across releases. */
export function deriveOperationId(method: string, path: string): string {
  const words = path
    .split('/')
    .filter((seg) => seg && seg !== 'v1')
    .map((seg) => (seg.startsWith('{') ? `by_${seg.slice(1, -1)}` : seg))
    .flatMap((seg) => seg.split(/[^A-Za-z0-9]+/))
    .filter(Boolean);
  return [method, ...words].map((w, i) => (i === 0 ? w.toLowerCase() : w[0].toUpperCase() + w.slice(1))).join('');
}

const problemContent = { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } };

const Problem = {
  type: 'object',
  required: ['type', 'title', 'status', 'code'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string' },
    errors: { type: 'array', items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } } } },
  },
};

/** Password lengths of the configured policy, stated wherever a new password is chosen. */
function applyPasswordPolicy(node: unknown, policy: { minLength: number; maxLength: number }): void {
  if (Array.isArray(node)) for (const x of node) applyPasswordPolicy(x, policy);
  else if (node && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    if (o[NEW_PASSWORD_MARK]) {
      delete o[NEW_PASSWORD_MARK];
      o.minLength = policy.minLength;
      o.maxLength = policy.maxLength;
    }
    for (const v of Object.values(o)) applyPasswordPolicy(v, policy);
  }
}

export function buildDocument(serverUrl: string, policy: { minLength: number; maxLength: number } = { minLength: 12, maxLength: 128 }) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [path, methods] of [...ops.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    paths[path] = {};
    for (const [method, d] of methods) {
      const pathSchemas = d.params ? ((toSchema(d.params) as { properties?: Record<string, unknown> }).properties ?? {}) : {};
      const params: Array<{ name: string; in: string; required: boolean; description?: string; schema: unknown }> = [...path.matchAll(/\{([A-Za-z_]+)\}/g)].map(
        (m) => ({ name: m[1], in: 'path', required: true, schema: pathSchemas[m[1]] ?? { type: 'string', minLength: 1 } }),
      );
      for (const h of d.headers ?? [])
        params.push({ name: h.name, in: 'header', required: h.required ?? false, description: h.description, schema: { type: 'string' } });
      if (d.query) {
        const js = toSchema(d.query) as { properties?: Record<string, unknown>; required?: string[] };
        for (const [name, schema] of Object.entries(js.properties ?? {})) {
          params.push({ name, in: 'query', required: (js.required ?? []).includes(name), schema });
        }
      }
      const responses: Record<string, unknown> = {};
      for (const [status, r] of Object.entries(d.responses)) {
        const mediaType = r.mediaType ?? (Number(status) >= 400 ? 'application/problem+json' : 'application/json');
        responses[status] = {
          description: r.description,
          ...(r.schema || Number(status) >= 400
            ? { content: { [mediaType]: { schema: r.schema ? toSchema(r.schema) : { $ref: '#/components/schemas/Problem' } } } }
            : {}),
        };
      }
      const validated = d.body || d.query || d.params || path.includes('{');
      if (validated)
        responses['400'] ??= {
          description: 'validation_failed: the request does not match this document (`errors` names each field)',
          content: problemContent,
        };
      if (d.auth)
        responses['401'] ??= {
          description:
            'Missing, invalid or expired access token, or its session has ended (logout, revocation, suspension, lock: refused on every instance within 2 s)',
          content: problemContent,
        };
      if (d.auth === 'admin')
        responses['403'] ??= {
          description:
            'forbidden: the access token is valid but its user is not an administrator; mfa_enrolment_required: the session signed in without a second factor ' +
            '(WWW-Authenticate error="insufficient_user_authentication", RFC 9470): enrol TOTP and sign in again with it',
          content: problemContent,
        };
      if (d.body) {
        responses['413'] ??= { description: 'payload_too_large: the body is larger than the limit (64 KiB)', content: problemContent };
        responses['415'] ??= { description: 'unsupported_media_type: the body is not application/json', content: problemContent };
      }
      responses['503'] ??= {
        description: d.auth
          ? 'A dependency is unavailable; also when the revocation feed lags and the database cannot confirm the session (Retry-After)'
          : 'A dependency is unavailable',
        content: problemContent,
      };
      paths[path][method] = {
        operationId: deriveOperationId(method, path),
        summary: d.summary,
        ...(d.description ? { description: d.description } : {}),
        tags: d.tags,
        ...(params.length ? { parameters: params } : {}),
        ...(d.body ? { requestBody: { required: !d.bodyOptional, content: { 'application/json': { schema: toSchema(d.body) } } } } : {}),
        ...(d.auth ? { security: [{ bearer: [] }, { dpop: [] }] } : {}),
        responses,
      };
    }
  }
  applyPasswordPolicy(paths, policy);
  return {
    openapi: '3.1.0',
    info: {
      title: 'Authflow',
      version: '1.0.0',
      description:
        'Workflow-driven authentication service. Errors are RFC 9457 problem details with a stable `code`. ' +
        'Browser apps on the origins configured in API_CORS_ORIGINS may call /v1/* cross-origin (CORS preflight answered with 204; no credentials: send the token yourself).',
    },
    servers: [{ url: serverUrl }],
    paths,
    components: {
      schemas: { Problem },
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'Access tokens of sessions not bound to a key (token_type Bearer).' },
        dpop: {
          type: 'http',
          scheme: 'DPoP',
          bearerFormat: 'JWT',
          description:
            'RFC 9449: access tokens of key-bound sessions (token_type DPoP, claim cnf.jkt) as `Authorization: DPoP <token>`, with a `DPoP` proof header of the same key ' +
            'for this method and URL carrying `ath` (base64url SHA-256 of the token). Missing, wrong-key, replayed or stale proofs answer 401 invalid_dpop_proof with ' +
            '`WWW-Authenticate: DPoP error="invalid_dpop_proof", algs="ES256 EdDSA"`; a DPoP-bound token sent as Bearer is refused.',
        },
      },
    },
  };
}
