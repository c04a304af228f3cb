/**
 * The OpenAPI 3.1 document, built from the same zod schemas the routes validate with, so the
 * document and the behaviour cannot drift. Each router registers its operations with `describe`.
 */
import { z } from 'zod';

type Method = 'get' | 'post' | 'put' | 'delete' | 'patch';

export interface OperationDoc {
  summary: string;
  /** Longer prose: what the server enforces beyond the schemas. */
  description?: string;
  tags: string[];
  body?: z.ZodType;
  query?: z.ZodObject;
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

const toSchema = (s: z.ZodType) => z.toJSONSchema(s, { target: 'openapi-3.0', unrepresentable: 'any', io: 'input' }) as Record<string, unknown>;

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

export function buildDocument(serverUrl: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [path, methods] of [...ops.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    paths[path] = {};
    for (const [method, d] of methods) {
      const params: Array<{ name: string; in: string; required: boolean; description?: string; schema: { type: string } }> = [
        ...path.matchAll(/\{([A-Za-z_]+)\}/g),
      ].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
      for (const h of d.headers ?? [])
        params.push({ name: h.name, in: 'header', required: h.required ?? false, description: h.description, schema: { type: 'string' } });
      if (d.query) {
        const js = toSchema(d.query) as { properties?: Record<string, unknown>; required?: string[] };
        for (const [name, schema] of Object.entries(js.properties ?? {})) {
          params.push({ name, in: 'query', required: (js.required ?? []).includes(name), schema: schema as { type: string } });
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
      if (d.body)
        responses['400'] ??= { description: 'Invalid input', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } };
      if (d.auth)
        responses['401'] ??= {
          description:
            'Missing, invalid or expired access token, or its session has ended (logout, revocation, suspension, lock: refused on every instance within 2 s)',
          content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
        };
      responses['503'] ??= {
        description: d.auth
          ? 'A dependency is unavailable; also when the revocation feed lags and the database cannot confirm the session (Retry-After)'
          : 'A dependency is unavailable',
        content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
      };
      paths[path][method] = {
        summary: d.summary,
        ...(d.description ? { description: d.description } : {}),
        tags: d.tags,
        ...(params.length ? { parameters: params } : {}),
        ...(d.body ? { requestBody: { required: true, content: { 'application/json': { schema: toSchema(d.body) } } } } : {}),
        ...(d.auth ? { security: [{ bearer: [] }, { dpop: [] }] } : {}),
        responses,
      };
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Authflow',
      version: '1.0.0',
      description: 'Workflow-driven authentication service. Errors are RFC 9457 problem details with a stable `code`.',
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
