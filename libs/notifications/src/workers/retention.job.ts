import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { APP_CONFIG, ROOT_LOGGER, type AppConfig } from '@app/platform';
import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import { ErasurePurge } from '../application/erasure-purge';
import { notificationsSettings } from '../notifications.settings';

/** A run stops after this long; the next repeat continues where it left off. */
const MAX_RUN_MS = 60_000;

export interface RetentionResult {
  deleted: number;
  batches: number;
  tombstonesDeleted: number;
}

/**
 * Deletes read notifications older than NOTIFICATIONS_RETENTION_DAYS (their deliveries go
 * with them), in batches of NOTIFICATIONS_RETENTION_BATCH_SIZE rows. Each batch is its own
 * short statement and transaction over rows picked with `FOR UPDATE SKIP LOCKED`, so the
 * job never holds locks for long and never waits on a row a request is updating. Run as a
 * repeatable job on `notifications.retention`: one instance per interval, whichever
 * takes it. Each run also finishes erasures that are still under way (ErasurePurge.sweep);
 * erasure tombstones older than the same period go then.
 */
@Injectable()
export class RetentionJob {
  constructor(
    @InjectDataSource('notifications') private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(ROOT_LOGGER) private readonly logger: Logger,
    private readonly erasure: ErasurePurge,
  ) {}

  async run(): Promise<RetentionResult> {
    const days = notificationsSettings(this.config).NOTIFICATIONS_RETENTION_DAYS;
    const batchSize = notificationsSettings(this.config).NOTIFICATIONS_RETENTION_BATCH_SIZE;
    const started = Date.now();
    let deleted = 0;
    let batches = 0;
    for (;;) {
      const [{ count }] = await this.dataSource.query<{ count: number }[]>(
        `WITH doomed AS (
           SELECT id FROM notifications.notifications
            WHERE read_at IS NOT NULL AND created_at < now() - make_interval(days => $1)
            LIMIT $2
              FOR UPDATE SKIP LOCKED
         ), gone AS (
           DELETE FROM notifications.notifications n USING doomed WHERE n.id = doomed.id RETURNING 1
         )
         SELECT count(*)::int AS count FROM gone`,
        [days, batchSize],
      );
      batches += 1;
      deleted += count;
      if (count < batchSize || Date.now() - started > MAX_RUN_MS) break;
      // Let replicas, vacuum and other writers breathe between batches.
      await sleep(5);
    }
    // Before tombstones expire: finish erasures a crash interrupted, and remove what a handler
    // that raced an erasure wrote after it (application/erasure-purge.ts).
    const erasedUsersPurged = await this.erasure.sweep();
    if (erasedUsersPurged > 0) this.logger.info({ erasedUsersPurged }, 'erasure sweep finished interrupted erasures');
    const [{ count: tombstonesDeleted }] = await this.dataSource.query<{ count: number }[]>(
      `WITH gone AS (DELETE FROM notifications.erased_users WHERE erased_at < now() - make_interval(days => $1) RETURNING 1)
       SELECT count(*)::int AS count FROM gone`,
      [days],
    );
    const result = { deleted, batches, tombstonesDeleted };
    if (deleted > 0 || tombstonesDeleted > 0) this.logger.info({ ...result, retentionDays: days }, 'notification retention ran');
    return result;
  }
}
