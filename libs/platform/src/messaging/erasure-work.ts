import type { DataSource, EntityManager } from 'typeorm';
import type { Logger } from 'pino';
import { afterCommit } from '../database/after-commit';
import type { CacheAside } from '../cache/cache-aside';
import { removeQueuedEvents } from './queued-event-removal';
import type { QueueFactory } from './queue.factory';

/** How often every instance looks for erasure work that is due (a crash's leftovers, retries). */
export const ERASURE_WORK_INTERVAL_MS = 30_000;
/** Rows looked at per sweep query. */
const SWEEP_PAGE = 100;
/** Retry delay after a failed attempt: doubles per attempt, capped. */
const RETRY_BASE_MS = 1_000;
const RETRY_MAX_MS = 5 * 60_000;

export interface ErasureWorkItem {
  /** The payload field that names the subject (`userId`) and its value. */
  payloadField: string;
  value: string;
  /** Queues of the recording module whose failed, delayed, waiting and paused jobs about the subject are removed. */
  queues?: string[];
  /** A job (the event being handled) that is not removed. */
  exceptEventId?: string;
  /** Cache entries (CacheAside names) to drop. */
  cacheEntries?: { cache: string; key: string }[];
  /** Not before this many ms after the commit (a second cache drop past a late refill). */
  delayMs?: number;
}

interface WorkRow {
  id: string;
  subject_field: string;
  subject: string;
  queues: string[];
  except_event_id: string | null;
  cache_entries: { cache: string; key: string }[];
  attempts: number;
}

/**
 * The erasure steps outside Postgres, made durable: a module records them in the
 * transaction that erases its rows (`<schema>.erasure_work`, erasureSupportUp), so they
 * exist exactly when the erasure committed. After the commit the recording instance runs
 * them at once; every instance also sweeps due rows at boot and every
 * ERASURE_WORK_INTERVAL_MS, so a step a crash (or a Redis outage) cut short is finished
 * by whichever instance comes next. A row is deleted only once all its steps succeeded;
 * a failure is retried with a growing delay (docs/architecture.md, "Erasure and retention").
 *
 * Every step is idempotent (removing jobs by subject, deleting cache keys), so running a
 * row twice is harmless. While one instance runs a row it holds a session advisory lock
 * on it (not a transaction: removing 10 000 jobs may outlast the idle-in-transaction
 * timeout); a crashed holder's lock ends with its connection, so no lease must expire.
 */
export class ErasureWork {
  private timer?: NodeJS.Timeout;
  private readonly delayed = new Set<NodeJS.Timeout>();
  private sweeping?: Promise<number>;
  private stopped = false;

  constructor(
    private readonly schema: string,
    private readonly dataSource: DataSource,
    private readonly queues: QueueFactory,
    private readonly cache: CacheAside,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.stopped = false;
    const sweep = () =>
      void this.runDue().catch((error: unknown) =>
        this.logger.warn({ schema: this.schema, err: error }, 'erasure work sweep failed; retried at the next interval'),
      );
    sweep();
    this.timer = setInterval(sweep, ERASURE_WORK_INTERVAL_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    for (const timer of this.delayed) clearTimeout(timer);
    this.delayed.clear();
    await this.sweeping?.catch(() => undefined);
  }

  /** Records `item` in the caller's transaction; it runs once that transaction has committed. */
  async record(manager: EntityManager, item: ErasureWorkItem): Promise<string> {
    const delayMs = item.delayMs ?? 0;
    const [{ id }] = await manager.query<{ id: string }[]>(
      `INSERT INTO "${this.schema}".erasure_work (subject_field, subject, queues, except_event_id, cache_entries, run_after)
       VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))
       RETURNING id`,
      [item.payloadField, item.value, item.queues ?? [], item.exceptEventId ?? null, JSON.stringify(item.cacheEntries ?? []), delayMs / 1000],
    );
    afterCommit(manager, () => this.runLater(id, delayMs));
    return id;
  }

  /** Runs every row that is due; resolves with how many were completed. One sweep at a time per instance. */
  runDue(): Promise<number> {
    if (!this.sweeping) this.sweeping = this.sweep().finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  /** Rows still to do (operations, tests). */
  async pending(): Promise<number> {
    const [{ count }] = await this.dataSource.query<{ count: number }[]>(`SELECT count(*)::int AS count FROM "${this.schema}".erasure_work`);
    return count;
  }

  private runLater(id: string, delayMs: number): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      this.delayed.delete(timer);
      void this.runOne(id).catch((error: unknown) =>
        this.logger.warn({ schema: this.schema, err: error }, 'erasure work failed; the sweep retries it'),
      );
    }, delayMs);
    timer.unref();
    this.delayed.add(timer);
  }

  private async sweep(): Promise<number> {
    let done = 0;
    let after = '0';
    for (;;) {
      const rows = await this.dataSource.query<{ id: string }[]>(
        `SELECT id FROM "${this.schema}".erasure_work WHERE run_after <= now() AND id > $1 ORDER BY id LIMIT $2`,
        [after, SWEEP_PAGE],
      );
      for (const { id } of rows) {
        if (this.stopped) return done;
        if ((await this.runOne(id)) === 'done') done += 1;
      }
      if (rows.length < SWEEP_PAGE) return done;
      after = rows[rows.length - 1].id;
    }
  }

  /** Runs one row if it is due and no other instance is running it. */
  async runOne(id: string): Promise<'done' | 'busy' | 'gone' | 'failed'> {
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    // Two-key advisory lock: (this schema's erasure work, row id).
    const key = [`${this.schema}.erasure_work`, id];
    let locked = false;
    try {
      const [{ ok }] = (await runner.query(`SELECT pg_try_advisory_lock(hashtext($1), ($2::bigint % 2147483647)::int) AS ok`, key)) as { ok: boolean }[];
      locked = ok;
      if (!locked) return 'busy';
      const [row] = (await runner.query(
        `SELECT id, subject_field, subject, queues, except_event_id, cache_entries, attempts
           FROM "${this.schema}".erasure_work WHERE id = $1 AND run_after <= now()`,
        [id],
      )) as WorkRow[];
      if (!row) return 'gone';
      try {
        await this.perform(row);
      } catch (error) {
        const retryMs = Math.min(RETRY_BASE_MS * 2 ** row.attempts, RETRY_MAX_MS);
        await runner.query(
          `UPDATE "${this.schema}".erasure_work
              SET attempts = attempts + 1, last_error = $2, run_after = now() + make_interval(secs => $3)
            WHERE id = $1`,
          [id, String(error instanceof Error ? error.message : error).slice(0, 1000), retryMs / 1000],
        );
        this.logger.warn({ schema: this.schema, err: error, attempts: row.attempts + 1, retryMs }, 'erasure work failed; retried later');
        return 'failed';
      }
      await runner.query(`DELETE FROM "${this.schema}".erasure_work WHERE id = $1`, [id]);
      return 'done';
    } finally {
      if (locked) await runner.query(`SELECT pg_advisory_unlock(hashtext($1), ($2::bigint % 2147483647)::int)`, key).catch(() => undefined);
      await runner.release();
    }
  }

  private async perform(row: WorkRow): Promise<void> {
    const subject = { payloadField: row.subject_field, value: row.subject };
    for (const queue of row.queues) {
      const result = await removeQueuedEvents(this.queues.get(queue), subject, { exceptEventId: row.except_event_id ?? undefined });
      if (result.removed > 0 || result.truncated) {
        // The subject is not logged: the id of an erased user is what is being erased.
        this.logger[result.truncated ? 'warn' : 'info']({ queue, ...result }, 'erasure removed queued jobs of the subject');
      }
    }
    for (const { cache, key } of row.cache_entries) {
      if (!(await this.cache.invalidate(cache, key))) throw new Error(`cache entry ${cache} could not be dropped (Redis unreachable)`);
    }
  }
}
