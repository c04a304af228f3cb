/**
 * Before the launcher starts anything: is every port the stack needs free, and if not, who holds
 * it. A server that cannot bind its port fails in its own words (or, worse, a leftover server of
 * another checkout answers in its place), so the launcher asks first and names the holder.
 * The holder comes from /proc (the listening socket's inode in /proc/net/tcp{,6}, then the process
 * with that socket among its /proc/<pid>/fd), else from `ss -ltnp`, else it is left unnamed.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';

export interface PortWanted {
  port: number;
  /** Which server wants it, as the message should name it ("vault", "temporal UI"). */
  server: string;
}

export interface PortHolder {
  pid?: number;
  command?: string;
}

/** Whether 127.0.0.1:port can be bound now (what each server of the stack is about to do). */
export function portFree(port: number): Promise<boolean> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? res(false) : rej(err)));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => res(true)));
  });
}

function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local_address rem_address st ... inode (index 9); st 0A is LISTEN.
      if (f.length < 10 || f[3] !== '0A') continue;
      if (parseInt(f[1].split(':')[1], 16) === port) inodes.add(f[9]);
    }
  }
  return inodes;
}

function commandOf(pid: number): string | undefined {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const cmd = argv.join(' ');
    return cmd.length > 200 ? `${cmd.slice(0, 200)}...` : cmd;
  } catch {
    return undefined;
  }
}

function fromProc(port: number): PortHolder | undefined {
  const inodes = listeningInodes(port);
  if (!inodes.size) return undefined;
  const wanted = new Set([...inodes].map((i) => `socket:[${i}]`));
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or another user's
    }
    for (const fd of fds) {
      try {
        if (wanted.has(readlinkSync(`/proc/${pid}/fd/${fd}`))) return { pid: Number(pid), command: commandOf(Number(pid)) };
      } catch {
        /* closed meanwhile */
      }
    }
  }
  return undefined;
}

function fromSs(port: number): PortHolder | undefined {
  const r = spawnSync('ss', ['-H', '-ltnp', `sport = :${port}`], { encoding: 'utf8', timeout: 5000 });
  if (r.status !== 0) return undefined;
  const m = /pid=(\d+)/.exec(r.stdout);
  if (!m) return undefined;
  return { pid: Number(m[1]), command: commandOf(Number(m[1])) };
}

/** The process listening on `port`, as far as this user may see it. */
export function portHolder(port: number): PortHolder {
  return fromProc(port) ?? fromSs(port) ?? {};
}

function describe(w: PortWanted, h: PortHolder): string {
  const who = h.pid ? `pid ${h.pid}${h.command ? ` (${h.command})` : ''}` : 'a process this user cannot see';
  return `port ${w.port} (${w.server}) is already in use by ${who}`;
}

/** Throws, naming every taken port, its server and its holder, unless all of `wanted` are free. */
export async function assertPortsFree(wanted: PortWanted[]): Promise<void> {
  const taken: PortWanted[] = [];
  for (const w of wanted) if (!(await portFree(w.port))) taken.push(w);
  if (!taken.length) return;
  const lines = taken.map((w) => `  ${describe(w, portHolder(w.port))}`);
  throw new Error(
    `cannot start the stack: ${taken.length === 1 ? 'a port it needs is' : 'ports it needs are'} already in use; nothing was started.\n${lines.join('\n')}\n` +
      `Stop what holds ${taken.length === 1 ? 'it' : 'them'} (a stack left running from another checkout or terminal?), or shift every port (STACK_PORT_OFFSET=N).`,
  );
}
