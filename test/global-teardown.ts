import type { Stack } from '../infra/stack/stack';

export default async function globalTeardown() {
  const stack = (globalThis as { __STACK__?: Stack }).__STACK__;
  if (stack) await stack.stop();
}
