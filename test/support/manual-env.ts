import type { Env } from '../../src/index.js';

/** An Env whose clock moves only when the test says so, and whose timers fire when the clock passes them. */
export class ManualEnv implements Env {
  time = 1_000_000;
  online = true;
  randomValue = 0.5;
  private timers: Array<{ at: number; fn: () => void }> = [];

  now = () => this.time;
  random = () => this.randomValue;
  private ids = 0;
  newId = () => `id-${++this.ids}`;
  isOnline = () => this.online;

  setTimer = (fn: () => void, ms: number) => {
    const timer = { at: this.time + ms, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t !== timer);
    };
  };

  /** Move the clock forward, firing every timer that comes due. */
  advance(ms: number): void {
    this.time += ms;
    const due = this.timers.filter((t) => t.at <= this.time);
    this.timers = this.timers.filter((t) => t.at > this.time);
    due.forEach((t) => t.fn());
  }

  /** When the earliest timer fires, or undefined. */
  get nextTimerAt(): number | undefined {
    return this.timers.length ? Math.min(...this.timers.map((t) => t.at)) : undefined;
  }
}
