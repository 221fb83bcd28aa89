import { jitteredBackoff } from './queue.factory';

export interface DrainLoopOptions {
  /** Handles one batch; returns how many items it handled. */
  batch(): Promise<number>;
  batchSize: number;
  /** Polling fallback: wakes the loop even when nobody calls wake(). */
  pollIntervalMs: number;
  onFailure(error: unknown, retryInMs: number, failures: number): void;
  onRecovered?(): void;
}

/**
 * The engine of every "move pending rows somewhere" worker (outbox relay, delivery
 * dispatcher): one drain at a time per process, a wake-up during a drain runs another
 * pass right after it, full batches run back to back, and a failure pauses the loop with
 * jittered exponential backoff (capped at 10 s) so a dead dependency is not hammered.
 */
export class DrainLoop {
  private pollTimer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private wakeAgain = false;
  private stopped = true;
  private failures = 0;
  private pausedUntil = 0;

  constructor(private readonly options: DrainLoopOptions) {}

  get isStopped(): boolean {
    return this.stopped;
  }

  start(): void {
    this.stopped = false;
    this.pollTimer = setInterval(() => this.wake(), this.options.pollIntervalMs);
    this.pollTimer.unref();
    this.wake();
  }

  /** Stops polling and waits for the drain in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.pollTimer);
    await this.running;
  }

  /** Drains now, or right after the drain in progress. */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.wakeAgain = true;
      return;
    }
    if (Date.now() < this.pausedUntil) return;
    this.running = this.drain().finally(() => {
      this.running = undefined;
    });
  }

  /** Resolves once drained or paused by a failure, ignoring any backoff (tests, shutdown). */
  async drainNow(): Promise<void> {
    await this.running;
    this.pausedUntil = 0;
    this.wake();
    await this.running;
  }

  private async drain(): Promise<void> {
    try {
      let handled: number;
      do {
        this.wakeAgain = false;
        handled = await this.options.batch();
      } while (!this.stopped && (handled === this.options.batchSize || this.wakeAgain));
      if (this.failures > 0) this.options.onRecovered?.();
      this.failures = 0;
    } catch (error) {
      this.failures += 1;
      const delay = jitteredBackoff(250, this.failures, 10_000);
      this.pausedUntil = Date.now() + delay;
      this.options.onFailure(error, delay, this.failures);
    }
  }
}
