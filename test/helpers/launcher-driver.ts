/**
 * Runs one Stack in a process of its own, as `npm run dev` and the suite's global setup do (plain
 * Node, not jest's module sandbox), for test/integration/launcher.test.ts. Options arrive as JSON
 * in argv[2]: { dataDir, offset, services }. It prints one JSON line per event on stdout:
 * { spawned: name, pid } for every child the launcher starts (and { pids } when the recorded pids
 * change otherwise), then { up: StackInfo } or { failed: message }. After { up }, a line on stdin
 * (or its end) stops the stack, prints { stopped: true } and exits.
 */
import { portsFor, Stack } from '../../infra/stack/stack';

const opts = JSON.parse(process.argv[2]) as { dataDir: string; offset: number; services: boolean };
const say = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);

const stack = new Stack({
  dataDir: opts.dataDir,
  ports: portsFor(opts.offset),
  services: opts.services,
  log: (m) => process.stderr.write(`[launcher-driver] ${m}\n`),
});
const spawnChild = stack.spawnChild.bind(stack);
stack.spawnChild = (...args: Parameters<Stack['spawnChild']>) => {
  const child = spawnChild(...args);
  say({ spawned: args[0], pid: child.pid });
  return child;
};
let last = '{}';
const watch = setInterval(() => {
  const now = JSON.stringify(stack.info.pids);
  if (now !== last) say({ pids: JSON.parse((last = now)) });
}, 20);

stack.start().then(
  (info) => {
    clearInterval(watch);
    say({ up: info });
    const stop = async () => {
      await stack.stop();
      say({ stopped: true });
      process.exit(0);
    };
    const onInputEnd = () => void stop();
    process.stdin.once('data', onInputEnd).once('end', onInputEnd).resume();
  },
  (err: Error) => {
    clearInterval(watch);
    say({ failed: err.message });
    process.exit(1);
  },
);
