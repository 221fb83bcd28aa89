import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { APP_CONFIG, ROOT_LOGGER, type AppConfig } from '@app/platform';
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import { OrderLifecycleService } from '../application/order-lifecycle.service';
import { ordersSettings } from '../orders.settings';

/**
 * Safety net for the saga: expires pending orders whose time has passed but whose job
 * never ran (Redis was down when they were placed, or lost its data). Runs at start-up,
 * so expiries missed while the service was down are caught on the next start, and then
 * every ORDER_EXPIRY_SWEEP_INTERVAL_MS. Safe in every instance at once.
 */
@Injectable()
export class OrderExpirySweeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer?: NodeJS.Timeout;
  private running?: Promise<number>;

  constructor(
    @InjectDataSource('orders') private readonly dataSource: DataSource,
    private readonly lifecycle: OrderLifecycleService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(ROOT_LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap(): void {
    void this.sweep();
    this.timer = setInterval(() => void this.sweep(), ordersSettings(this.config).ORDER_EXPIRY_SWEEP_INTERVAL_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  async sweep(): Promise<number> {
    if (this.running) return this.running;
    this.running = (async () => {
      let expired = 0;
      try {
        const due = await this.dataSource.query<{ id: string }[]>(
          `SELECT id FROM orders.orders WHERE status = 'pending' AND expires_at <= now() ORDER BY expires_at LIMIT 500`,
        );
        for (const { id } of due) if (await this.lifecycle.expire(id)) expired += 1;
        if (expired) this.logger.info({ expired }, 'expired overdue pending orders');
      } catch (error) {
        this.logger.warn({ err: error }, 'order expiry sweep failed; will retry');
      }
      return expired;
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }
}
