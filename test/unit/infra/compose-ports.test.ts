/**
 * docker-compose.yml keeps Temporal's gRPC port (7233) and Postgres (5432) off the host's network
 * (finding 9): neither service publishes a port or joins the host network, and no other service
 * publishes 7233 or 5432. No YAML library is a dependency, so the file is read by indentation:
 * services at two spaces, their keys at four (the file's style; a test below checks it holds).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const COMPOSE = join(__dirname, '..', '..', '..', 'docker-compose.yml');
const INTERNAL_PORTS = ['5432', '7233'];

interface Service {
  name: string;
  /** key -> the key's lines (its own line and the more indented ones below it). */
  keys: Map<string, string[]>;
}

/** The `services:` block: each service's top-level keys with their text. */
export function composeServices(text: string): Service[] {
  const lines = text.split('\n').map((l) => l.replace(/\s+#.*$/, '').replace(/^\s*#.*$/, ''));
  const start = lines.findIndex((l) => /^services:\s*$/.test(l));
  if (start < 0) throw new Error('docker-compose.yml has no services: block');
  const services: Service[] = [];
  let current: Service | undefined;
  let key: string | undefined;
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === '') continue;
    if (/^\S/.test(line)) break; // the next top-level block
    const svc = /^ {2}([A-Za-z0-9_.-]+):\s*$/.exec(line);
    if (svc) {
      current = { name: svc[1], keys: new Map() };
      services.push(current);
      key = undefined;
      continue;
    }
    if (!current) throw new Error(`unexpected line before the first service: ${line}`);
    const k = /^ {4}([A-Za-z0-9_<>-]+)\s*:/.exec(line);
    if (k) {
      key = k[1];
      current.keys.set(key, [line]);
    } else if (/^ {5,}\S/.test(line) && key) current.keys.get(key)!.push(line);
    else throw new Error(`docker-compose.yml: service ${current.name} has a line this check cannot place: ${line}`);
  }
  return services;
}

/** Ports a `ports:` key publishes: the container port of each short-syntax entry ("8233:8233",
 * "127.0.0.1:1-2:1-2/tcp", ranges expanded), and both `target` and `published` of long-syntax
 * entries (stricter than needed: a host port 7233 counts too). */
function publishedTargets(lines: string[]): string[] {
  const out: string[] = [];
  for (const raw of lines) {
    const line = raw.replace(/^ {4}ports\s*:/, '');
    const long = /\b(?:target|published)\s*:\s*["']?(\d+)/.exec(line);
    if (long) {
      out.push(long[1]);
      continue;
    }
    for (const m of line.matchAll(/[\d.[\]:-]*\d(?:\/(?:tcp|udp))?/g)) {
      const last = m[0]
        .replace(/\/(?:tcp|udp)$/, '')
        .split(':')
        .pop()!;
      if (!/^\d+(-\d+)?$/.test(last)) continue; // an address (host_ip: 127.0.0.1)
      const [from, to] = last.split('-').map(Number);
      for (let p = from; p <= (to ?? from); p++) out.push(String(p));
    }
  }
  return out;
}

describe('docker-compose.yml keeps Temporal gRPC and Postgres off the host network', () => {
  const services = composeServices(readFileSync(COMPOSE, 'utf8'));
  const byName = new Map(services.map((s) => [s.name, s]));

  test('the file is read as expected (every service found, known keys)', () => {
    expect([...byName.keys()]).toEqual(expect.arrayContaining(['postgres', 'temporal', 'vault', 'api', 'worker']));
    expect(byName.get('api')!.keys.has('ports')).toBe(true);
    expect(publishedTargets(byName.get('api')!.keys.get('ports')!)).toEqual(['3000']);
  });

  test.each(['postgres', 'temporal'])('%s joins no host network and publishes neither 5432 nor 7233', (name) => {
    const s = byName.get(name)!;
    expect(s).toBeDefined();
    expect(s.keys.get('network_mode')?.join(' ') ?? '').not.toMatch(/host/);
    expect(s.keys.has('networks') ? s.keys.get('networks')!.join(' ') : '').not.toMatch(/\bhost\b/);
    const targets = s.keys.has('ports') ? publishedTargets(s.keys.get('ports')!) : [];
    expect(targets.filter((p) => INTERNAL_PORTS.includes(p))).toEqual([]);
  });

  test('postgres publishes nothing at all (the other services reach it on the compose network)', () => {
    expect(byName.get('postgres')!.keys.has('ports')).toBe(false);
  });

  test('no other service publishes 5432 or 7233 (a proxy in front would defeat the point)', () => {
    for (const s of services) {
      const targets = s.keys.has('ports') ? publishedTargets(s.keys.get('ports')!) : [];
      expect({ service: s.name, internal: targets.filter((p) => INTERNAL_PORTS.includes(p)) }).toEqual({ service: s.name, internal: [] });
      expect({ service: s.name, network_mode: s.keys.get('network_mode')?.join(' ') ?? '' }).not.toEqual({
        service: s.name,
        network_mode: expect.stringMatching(/host/),
      });
    }
  });

  test('the reader catches what it checks for', () => {
    const bad = composeServices(
      [
        'services:',
        '  temporal:',
        '    image: x',
        '    ports:',
        '      - "127.0.0.1:7233:7233"',
        '      - target: 5432',
        '        published: 5432',
        '  postgres:',
        '    network_mode: host',
        'volumes:',
        '  x:',
      ].join('\n'),
    );
    expect(publishedTargets(bad[0].keys.get('ports')!)).toEqual(expect.arrayContaining(['7233', '5432']));
    expect(bad[1].keys.get('network_mode')!.join(' ')).toMatch(/host/);
    expect(publishedTargets(['    ports: ["7233:7233", "8233:8233"]'])).toEqual(['7233', '8233']);
    expect(publishedTargets(['    ports: ["7000-7300:7000-7300/tcp"]'])).toContain('7233');
  });
});
