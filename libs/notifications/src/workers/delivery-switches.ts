import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, Flags, QueueFactory, ROOT_LOGGER, withTimeout, type AppConfig } from '@app/platform';
import type { Logger } from 'pino';
import { NOTIFICATIONS_FLAGS } from '../notifications.flags';
import { DELIVERY_QUEUE, type DeliveryQueue } from '../notifications.queues';

const SWITCHES: readonly [flag: string, queue: DeliveryQueue][] = [
  [NOTIFICATIONS_FLAGS.emailDelivery, DELIVERY_QUEUE.email],
  [NOTIFICATIONS_FLAGS.webhookDelivery, DELIVERY_QUEUE.webhook],
];

/**
 * Kill switches of email and webhook delivery (docs/architecture.md, "Feature flags"):
 * while a switch is off its Bull queue is paused globally, for every instance at once.
 * Nothing is lost: the dispatcher keeps moving delivery rows into the paused queue, retries
 * whose delay ends wait there too, and the delivery rows stay `pending`/`failed` in
 * Postgres; when the switch is back on the queue resumes and they go out in order. A job
 * already in progress when the switch goes off finishes.
 *
 * Every instance applies the flag's current value at start-up and on each change it sees
 * (pause and resume are idempotent), so the queue follows the flag even if one instance
 * missed the notification, and after a restart. The flag, not Bull Board's pause button,
 * is the authority over these two queues.
 */
@Injectable()
export class DeliverySwitches implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly unwatch: (() => void)[] = [];
  /** One apply at a time per queue, so an older value never lands after a newer one. */
  private readonly chains = new Map<DeliveryQueue, Promise<void>>();
  private readonly retries = new Map<DeliveryQueue, NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly queues: QueueFactory,
    private readonly flags: Flags,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(ROOT_LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap(): void {
    for (const [flag, queue] of SWITCHES) {
      this.unwatch.push(this.flags.watch(flag, () => this.apply(flag, queue)));
      this.apply(flag, queue);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    for (const stop of this.unwatch.splice(0)) stop();
    for (const timer of this.retries.values()) clearTimeout(timer);
    await Promise.allSettled(this.chains.values());
  }

  /** Settles once the queues follow the flags as this instance sees them now (tests). */
  async settled(): Promise<void> {
    await Promise.allSettled(this.chains.values());
  }

  private apply(flag: string, name: DeliveryQueue): void {
    clearTimeout(this.retries.get(name));
    const previous = this.chains.get(name) ?? Promise.resolve();
    const next = previous.then(async () => {
      if (this.stopped) return;
      // Read at run time: the latest value wins, whatever order the changes came in.
      const enabled = this.flags.enabledForAll(flag);
      const queue = this.queues.get(name);
      try {
        // isLocal = false: the pause is kept in Redis and holds for every instance's workers.
        await withTimeout(enabled ? queue.resume(false) : queue.pause(false), 5_000, `${enabled ? 'resuming' : 'pausing'} ${name}`);
        this.logger.info({ flag, queue: name, enabled }, enabled ? 'delivery switch on: queue resumed' : 'delivery switch off: queue paused; deliveries wait');
      } catch (error) {
        const retryInMs = this.config.env.FLAGS_REFRESH_INTERVAL_MS;
        this.logger.warn({ err: error, flag, queue: name, enabled, retryInMs }, 'delivery switch not applied to its queue (Redis unavailable?); retrying');
        if (!this.stopped) {
          const timer = setTimeout(() => this.apply(flag, name), retryInMs);
          timer.unref();
          this.retries.set(name, timer);
        }
      }
    });
    this.chains.set(name, next);
  }
}
