/**
 * Every method on every documented path gets a client error, never a server error: methods a
 * path does not have (TRACE and made-up ones included, which `fetch` cannot send) answer 405
 * problem+json with the path's `Allow`.
 */
import { request } from 'node:http';
import { api, apiUrl } from '../helpers/stack';

function raw(method: string, path: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, apiUrl());
    const req = request({ host: url.hostname, port: url.port, method, path: url.pathname, headers: { Accept: 'application/json' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const SAMPLE_ID = '00000000-0000-4000-8000-000000000000';

describe('methods a path does not have', () => {
  test('TRACE, PROPFIND and every undocumented method answer 405 with Allow on every documented path', async () => {
    const doc = (await api('GET', '/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
    const paths = Object.entries(doc.paths);
    expect(paths.length).toBeGreaterThan(20);
    const failures: string[] = [];
    for (const [template, ops] of paths) {
      const path = template.replace(/\{[^}]+\}/g, SAMPLE_ID);
      const documented = Object.keys(ops).map((m) => m.toUpperCase());
      const others = ['GET', 'PUT', 'PATCH', 'POST', 'DELETE'].filter((m) => !documented.includes(m));
      for (const method of ['TRACE', 'PROPFIND', ...others]) {
        const r = await raw(method, path);
        const allow = String(r.headers.allow ?? '')
          .split(/,\s*/)
          .filter(Boolean);
        const body = r.body ? JSON.parse(r.body) : {};
        const ok =
          r.status === 405 &&
          /application\/problem\+json/.test(String(r.headers['content-type'])) &&
          body.code === 'method_not_allowed' &&
          documented.every((m) => allow.includes(m));
        if (!ok) failures.push(`${method} ${path} -> ${r.status} allow=[${allow.join(',')}] ${r.body.slice(0, 80)}`);
      }
    }
    expect(failures).toEqual([]);
  });

  test('an unknown path answers 404 problem+json for any method', async () => {
    for (const method of ['GET', 'TRACE', 'PATCH']) {
      const r = await raw(method, '/v1/no-such-thing');
      expect([method, r.status, JSON.parse(r.body).code]).toEqual([method, 404, 'not_found']);
    }
  });
});
