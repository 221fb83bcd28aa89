import { Injectable } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import { durationMs, type AppConfig } from '../config/app-config';
import { execute } from '../database/sql';

/** Rows one retention statement deletes at most: short locks, bounded WAL per statement. */
export const RETENTION_BATCH = 1000;

/**
 * One table's retention: a DELETE of at most `$1` rows that are due, with the rule's own
 * `params` as `$2`…. Rows are picked `FOR UPDATE SKIP LOCKED`, so instances running the
 * same rule at once share the work instead of waiting on each other.
 */
export interface RetentionRule {
  /** The table, as it appears in logs and in `retention_deleted_rows_total{table}`. */
  table: string;
  sql: string;
  params?: unknown[];
  /**
   * Deleting these rows throws away something an operator may still want (dead letters):
   * the statement returns `event_type`, and each batch is logged at warn with the types.
   */
  reportTypes?: boolean;
}

/** What the retention rules of this instance deleted, for /metrics. */
@Injectable()
export class RetentionStats {
  readonly deleted = new Map<string, { module: string; table: string; rows: number }>();

  record(module: string, table: string, rows: number): void {
    const key = `${module}.${table}`;
    const entry = this.deleted.get(key) ?? { module, table, rows: 0 };
    entry.rows += rows;
    this.deleted.set(key, entry);
  }
}

/**
 * The rules every module with messaging tables gets: published outbox rows after
 * OUTBOX_RETENTION (kept until then so `events:replay` can publish them again; rows never
 * published, e.g. of a type nobody routes yet, are never deleted), inbox rows after
 * INBOX_RETENTION (at least OUTBOX_RETENTION, checked by loadConfig), dead letters after
 * DEAD_LETTER_RETENTION.
 */
export function messagingRetentionRules(schema: string, config: AppConfig): RetentionRule[] {
  const s = `"${schema}"`;
  return [
    {
      // Reads the partial index outbox_published_at_idx (published rows only).
      table: 'outbox',
      sql: `DELETE FROM ${s}.outbox WHERE id IN (
              SELECT id FROM ${s}.outbox WHERE published_at < now() - $2::interval
               ORDER BY published_at LIMIT $1 FOR UPDATE SKIP LOCKED)`,
      params: [interval(config.env.OUTBOX_RETENTION)],
    },
    {
      table: 'inbox',
      sql: `DELETE FROM ${s}.inbox WHERE event_id IN (
              SELECT event_id FROM ${s}.inbox WHERE handled_at < now() - $2::interval
               ORDER BY handled_at LIMIT $1 FOR UPDATE SKIP LOCKED)`,
      params: [interval(config.env.INBOX_RETENTION)],
    },
    {
      table: 'dead_letters',
      sql: `DELETE FROM ${s}.dead_letters WHERE event_id IN (
              SELECT event_id FROM ${s}.dead_letters WHERE failed_at < now() - $2::interval
               ORDER BY failed_at LIMIT $1 FOR UPDATE SKIP LOCKED)
            RETURNING event_type`,
      params: [interval(config.env.DEAD_LETTER_RETENTION)],
      reportTypes: true,
    },
  ];
}

/** A duration variable (`30d`, `36h`) as a Postgres interval literal. */
export function interval(duration: string): string {
  return `${durationMs(duration)} milliseconds`;
}

/**
 * Runs one module's retention rules every RETENTION_INTERVAL_MS on its own connection,
 * each rule batch after batch until nothing is due, so tables that grow with traffic
 * (published outbox rows, inbox, dead letters, idempotency keys, ended sessions) stay bounded. Every instance
 * runs it; SKIP LOCKED keeps them from contending. A failing rule is logged and retried at
 * the next interval; it never stops the others.
 */
export class RetentionSweeper {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;
  private stopped = false;

  constructor(
    private readonly module: string,
    private readonly dataSource: DataSource,
    private readonly rules: readonly RetentionRule[],
    private readonly intervalMs: number,
    private readonly logger: Logger,
    private readonly stats?: RetentionStats,
  ) {}

  start(): void {
    if (this.rules.length === 0) return;
    this.stopped = false;
    this.timer = setInterval(() => {
      this.running ??= this.runOnce().finally(() => (this.running = undefined));
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** Applies every rule now; resolves with the rows deleted per table. */
  async runOnce(): Promise<Map<string, number>> {
    const deleted = new Map<string, number>();
    for (const rule of this.rules) {
      try {
        deleted.set(rule.table, (deleted.get(rule.table) ?? 0) + (await this.apply(rule)));
      } catch (error) {
        this.logger.warn({ module: this.module, table: rule.table, err: error }, 'retention failed; retried at the next interval');
      }
    }
    return deleted;
  }

  private async apply(rule: RetentionRule): Promise<number> {
    let total = 0;
    for (;;) {
      const { rows, affected } = await execute<{ event_type?: string }>(this.dataSource, rule.sql, [RETENTION_BATCH, ...(rule.params ?? [])]);
      total += affected;
      if (affected > 0) {
        this.stats?.record(this.module, rule.table, affected);
        if (rule.reportTypes) {
          const byType: Record<string, number> = {};
          for (const row of rows) byType[row.event_type ?? '?'] = (byType[row.event_type ?? '?'] ?? 0) + 1;
          this.logger.warn({ module: this.module, table: rule.table, deleted: affected, byType }, 'retention deleted rows an operator never handled');
        }
      }
      if (affected < RETENTION_BATCH || this.stopped) break;
    }
    if (total > 0) this.logger.info({ module: this.module, table: rule.table, deleted: total }, 'rows past retention deleted');
    return total;
  }
}
