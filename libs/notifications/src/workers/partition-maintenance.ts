import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { APP_CONFIG, ROOT_LOGGER, type AppConfig } from '@app/platform';
import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import { notificationsSettings } from '../notifications.settings';

/**
 * How long a maintenance step waits for its table locks. DETACH takes an ACCESS EXCLUSIVE
 * lock on the parent tables: waiting behind a long query would queue every request
 * behind it, so the step gives up instead and the next run tries again.
 */
export const PARTITION_LOCK_TIMEOUT_MS = 2000;

/** Partitions are named `<table>_pYYYY_MM` (migrations/1764806400000-partition-notifications-by-month.ts). */
const MONTH_PARTITION = /^notifications_p(\d{4})_(\d{2})$/;

export interface PartitionsCreated {
  created: string[];
  /** Rows moved out of the DEFAULT partition into the month they belong to. */
  movedFromDefault: number;
}

export interface PartitionsDropped {
  dropped: string[];
  /** The expired month whose locks stayed busy longer than PARTITION_LOCK_TIMEOUT_MS: it and the later ones wait for the next run. */
  postponed: string[];
  /** Expired rows deleted from the DEFAULT partition (rows no month partition took). */
  deletedFromDefault: number;
}

const monthName = (month: string) => month.slice(0, 7).replace('-', '_');

/**
 * Keeps the monthly partitions of notifications and deliveries (docs/architecture.md,
 * "Notification partitions"): creates the current month and NOTIFICATIONS_PARTITIONS_AHEAD
 * more, moves rows that landed in DEFAULT into their month, and drops whole months older
 * than NOTIFICATIONS_RETENTION_DAYS. Everything runs as the module's own role, which owns
 * the tables (and so their partitions) in its own schema only.
 */
@Injectable()
export class PartitionMaintenance {
  constructor(
    @InjectDataSource('notifications') private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(ROOT_LOGGER) private readonly logger: Logger,
  ) {}

  /** The current month, the months ahead, and any unexpired month that has rows waiting in DEFAULT. */
  async createAhead(): Promise<PartitionsCreated> {
    const { NOTIFICATIONS_PARTITIONS_AHEAD: ahead, NOTIFICATIONS_RETENTION_DAYS: days } = notificationsSettings(this.config);
    const stray = await this.dataSource.query<{ month: string; rows: number; managed: boolean }[]>(
      `SELECT to_char(m, 'YYYY-MM-DD') AS month, count(*)::int AS rows,
              m >= date_trunc('month', (now() - make_interval(days => $1)) AT TIME ZONE 'UTC')
                AND m <= date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => $2) AS managed
         FROM (SELECT date_trunc('month', created_at AT TIME ZONE 'UTC') AS m FROM notifications.notifications_default) d
        GROUP BY m ORDER BY m`,
      [days, ahead],
    );
    if (stray.length) {
      // Rows here mean a month was missing when they were written (the job did not run, or a
      // clock is off). Kept months get their partition and these rows now; expired ones are
      // deleted by dropExpired; months beyond the ones kept ahead wait in DEFAULT until created.
      this.logger.warn(
        { months: stray.map((s) => ({ month: s.month.slice(0, 7), rows: s.rows, movedNow: s.managed })) },
        'notifications found in the DEFAULT partition',
      );
    }
    const wanted = await this.dataSource.query<{ month: string }[]>(
      `SELECT to_char(m, 'YYYY-MM-DD') AS month
         FROM generate_series(date_trunc('month', now() AT TIME ZONE 'UTC'),
                              date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => $1),
                              interval '1 month') AS m`,
      [ahead],
    );
    const months = [...new Set([...stray.filter((s) => s.managed).map((s) => s.month), ...wanted.map((w) => w.month)])].sort();
    const result: PartitionsCreated = { created: [], movedFromDefault: 0 };
    for (const month of months) {
      // One month per transaction: a lock timeout costs one month, retried at the next run.
      const outcome = await this.withLockTimeout(`creating the partitions of ${monthName(month)}`, async (query) => {
        const [{ present }] = await query<{ present: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS present`, [`notifications.notifications_p${monthName(month)}`]);
        if (present) return [{ created: false, moved: '0' }];
        // Parents first, in the order writers take them, as for the drops below: creating a
        // month touches both parents (ATTACH, the deliveries' foreign key) and a new table a
        // writer's INSERT must read; locked piecemeal, a writer and this step deadlock.
        await query(`LOCK TABLE ONLY notifications.notifications, notifications.deliveries IN SHARE ROW EXCLUSIVE MODE`);
        return query<{ created: boolean; moved: string }>('SELECT created, moved FROM notifications.ensure_month_partition($1::date)', [month]);
      });
      if (!outcome?.[0]?.created) continue;
      result.created.push(`notifications_p${monthName(month)}`);
      result.movedFromDefault += Number(outcome[0].moved);
    }
    if (result.created.length) this.logger.info(result, 'notification partitions created');
    return result;
  }

  /**
   * Detaches and drops every month (notifications and deliveries) that ended before
   * now − NOTIFICATIONS_RETENTION_DAYS, then deletes expired rows left in DEFAULT.
   *
   * Plain DETACH, in a transaction, not DETACH ... CONCURRENTLY: CONCURRENTLY cannot run
   * inside a transaction block and Postgres refuses it outright on a table that has a
   * DEFAULT partition. The deliveries partition must go in the same transaction, before
   * its notifications (the foreign key would refuse the detach otherwise); the ACCESS
   * EXCLUSIVE locks last only as long as these catalogue changes (milliseconds), and
   * PARTITION_LOCK_TIMEOUT_MS keeps the step from queueing requests behind a long query.
   */
  async dropExpired(): Promise<PartitionsDropped> {
    const { NOTIFICATIONS_RETENTION_DAYS: days, NOTIFICATIONS_RETENTION_BATCH_SIZE: batchSize } = notificationsSettings(this.config);
    const partitions = await this.dataSource.query<{ name: string }[]>(
      `SELECT c.relname AS name
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'notifications.notifications'::regclass
        ORDER BY c.relname`,
    );
    const [{ cutoff }] = await this.dataSource.query<{ cutoff: string }[]>(
      `SELECT to_char((now() - make_interval(days => $1)) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') AS cutoff`,
      [days],
    );
    const result: PartitionsDropped = { dropped: [], postponed: [], deletedFromDefault: 0 };
    for (const { name } of partitions) {
      const match = MONTH_PARTITION.exec(name);
      if (!match) continue;
      const [year, month] = [Number(match[1]), Number(match[2])];
      // The first instant after the month, UTC, as the cutoff's text form: compared as strings.
      const end = new Date(Date.UTC(year, month, 1)).toISOString().slice(0, 19);
      if (end > cutoff) continue;
      const suffix = `${match[1]}_${match[2]}`;
      const done = await this.withLockTimeout(`dropping the partitions of ${suffix}`, async (query) => {
        // Parents first, in the order writers take them (notification, then its deliveries),
        // so a writer in the middle of its transaction and this step cannot deadlock.
        await query(`LOCK TABLE ONLY notifications.notifications, notifications.deliveries IN ACCESS EXCLUSIVE MODE`);
        await query(`ALTER TABLE notifications.deliveries DETACH PARTITION notifications.deliveries_p${suffix}`);
        await query(`DROP TABLE notifications.deliveries_p${suffix}`);
        await query(`ALTER TABLE notifications.notifications DETACH PARTITION notifications.notifications_p${suffix}`);
        await query(`DROP TABLE notifications.notifications_p${suffix}`);
        return true;
      });
      if (!done) {
        // Busy tables: one wait of PARTITION_LOCK_TIMEOUT_MS per run, not one per month.
        result.postponed.push(name);
        break;
      }
      result.dropped.push(name);
    }
    // DEFAULT holds only strays (the job warns about them): deleted row by row, in short batches.
    for (;;) {
      const [{ count }] = await this.dataSource.query<{ count: number }[]>(
        `WITH doomed AS (
           SELECT id, created_at FROM notifications.notifications_default
            WHERE created_at < now() - make_interval(days => $1)
            LIMIT $2 FOR UPDATE SKIP LOCKED
         ), gone AS (
           DELETE FROM notifications.notifications_default n USING doomed
            WHERE n.id = doomed.id AND n.created_at = doomed.created_at RETURNING 1
         )
         SELECT count(*)::int AS count FROM gone`,
        [days, batchSize],
      );
      result.deletedFromDefault += count;
      if (count < batchSize) break;
    }
    if (result.dropped.length || result.postponed.length || result.deletedFromDefault) {
      this.logger.info({ ...result, retentionDays: days }, 'expired notification partitions dropped');
    }
    return result;
  }

  /** Runs `work` in one transaction with a lock timeout; a timeout is logged and gives undefined. */
  private async withLockTimeout<T>(
    what: string,
    work: (query: <R = unknown>(sql: string, params?: unknown[]) => Promise<R[]>) => Promise<T>,
  ): Promise<T | undefined> {
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    try {
      await runner.startTransaction();
      // Below the statement timeout, so that busy tables read as busy, not as a failure.
      const statementTimeoutMs = this.config.databases.notifications.statementTimeoutMs;
      await runner.query(`SET LOCAL lock_timeout = ${Math.min(PARTITION_LOCK_TIMEOUT_MS, Math.floor(statementTimeoutMs / 2))}`);
      const value = await work((sql, params) => runner.query(sql, params));
      await runner.commitTransaction();
      return value;
    } catch (error) {
      if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
      if ((error as { code?: string }).code === '55P03') {
        this.logger.warn({ lockTimeoutMs: PARTITION_LOCK_TIMEOUT_MS }, `${what}: tables busy, retried at the next run`);
        return undefined;
      }
      throw error;
    } finally {
      await runner.release();
    }
  }
}
