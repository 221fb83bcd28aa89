import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { APP_CONFIG, ROOT_LOGGER, type AppConfig } from '@app/platform';
import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import { ErasurePurge } from '../application/erasure-purge';
import { notificationsSettings } from '../notifications.settings';
import { PartitionMaintenance } from './partition-maintenance';

export interface RetentionResult {
  /** Months (notifications and deliveries) created ahead, or for rows found in DEFAULT. */
  partitionsCreated: string[];
  movedFromDefault: number;
  /** Whole months older than NOTIFICATIONS_RETENTION_DAYS, detached and dropped. */
  partitionsDropped: string[];
  /** Months whose locks were busy: dropped at a later run. */
  partitionsPostponed: string[];
  deletedFromDefault: number;
  tombstonesDeleted: number;
}

/**
 * Notification retention, a repeatable job on `notifications.retention` (one instance per
 * interval, whichever takes it): keeps the monthly partitions ahead, detaches and drops the
 * months older than NOTIFICATIONS_RETENTION_DAYS (read or unread: a notification lives
 * between that and one month more) instead of deleting rows (docs/architecture.md,
 * "Notification partitions"). Each run also finishes erasures that are still under way
 * (ErasurePurge.sweep); erasure tombstones older than the same period go then.
 */
@Injectable()
export class RetentionJob {
  constructor(
    @InjectDataSource('notifications') private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(ROOT_LOGGER) private readonly logger: Logger,
    private readonly erasure: ErasurePurge,
    private readonly partitions: PartitionMaintenance,
  ) {}

  async run(): Promise<RetentionResult> {
    const days = notificationsSettings(this.config).NOTIFICATIONS_RETENTION_DAYS;
    // Ahead first: a month that is missing now would send rows to DEFAULT.
    const created = await this.partitions.createAhead();
    const dropped = await this.partitions.dropExpired();
    // Before tombstones expire: finish erasures a crash interrupted, and remove what a handler
    // that raced an erasure wrote after it (application/erasure-purge.ts).
    const erasedUsersPurged = await this.erasure.sweep();
    if (erasedUsersPurged > 0) this.logger.info({ erasedUsersPurged }, 'erasure sweep finished interrupted erasures');
    const [{ count: tombstonesDeleted }] = await this.dataSource.query<{ count: number }[]>(
      `WITH gone AS (DELETE FROM notifications.erased_users WHERE erased_at < now() - make_interval(days => $1) RETURNING 1)
       SELECT count(*)::int AS count FROM gone`,
      [days],
    );
    return {
      partitionsCreated: created.created,
      movedFromDefault: created.movedFromDefault,
      partitionsDropped: dropped.dropped,
      partitionsPostponed: dropped.postponed,
      deletedFromDefault: dropped.deletedFromDefault,
      tombstonesDeleted,
    };
  }
}
