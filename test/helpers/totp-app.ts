/** An authenticator app for tests (otplib used directly, never crypto/totp.ts). */
import { authenticator } from 'otplib';
import { sleep } from './stack';

/** The App class; every secret and code it handles is pushed to `seen` (to check the logs for them). */
export function authenticatorApp(seen: string[] = []) {
  /**
   * An authenticator app: reads the otpauth URI and computes codes with otplib. It never hands out
   * a step at or before one already used (the server refuses replays) and picks a step the server
   * accepts now and still two seconds from now (its window is ±1 step), waiting for the next step
   * only when it must.
   */
  return class App {
    private lastStep = -Infinity;
    readonly period: number;
    readonly digits: number;
    constructor(
      readonly secret: string,
      url: URL,
    ) {
      this.period = Number(url.searchParams.get('period') ?? 30);
      this.digits = Number(url.searchParams.get('digits') ?? 6);
      seen.push(secret);
    }

    static fromUrl(otpauthUrl: string): App {
      const url = new URL(otpauthUrl);
      return new App(url.searchParams.get('secret')!, url);
    }

    stepNow(ms = Date.now()): number {
      return Math.floor(ms / 1000 / this.period);
    }

    codeAt(step: number): string {
      return authenticator
        .clone({ epoch: step * this.period * 1000, step: this.period, digits: this.digits, algorithm: 'sha1' as never, window: 0 })
        .generate(this.secret);
    }

    /** Marks a step as used and returns its code. */
    take(step: number): string {
      this.lastStep = Math.max(this.lastStep, step);
      const code = this.codeAt(step);
      seen.push(code);
      return code;
    }

    async fresh(): Promise<string> {
      for (;;) {
        const now = Date.now();
        const step = Math.max(this.lastStep + 1, this.stepNow(now + 2500) - 1);
        if (step <= this.stepNow(now) + 1) return this.take(step);
        await sleep((this.stepNow(now) + 1) * this.period * 1000 - now + 100);
      }
    }

    /**
     * The step after the current one, chosen when at least three seconds of the current step are
     * left (waiting for the next step otherwise), so the server still sees it as one step ahead
     * when the request lands, wherever the wall clock happens to be.
     */
    async oneStepAhead(): Promise<number> {
      for (;;) {
        const now = Date.now();
        const step = this.stepNow(now);
        if (this.stepNow(now + 3000) === step && step + 1 > this.lastStep) return step + 1;
        await sleep((step + 1) * this.period * 1000 - now + 100);
      }
    }

    /** A well-formed code of a step far from now: certainly wrong for the server. */
    wrong(): string {
      return this.codeAt(this.stepNow() + 40);
    }
  };
}
