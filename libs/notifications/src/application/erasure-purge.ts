import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { ROOT_LOGGER } from '@app/platform';
import type { DataSource, EntityManager } from 'typeorm';
import type { Logger } from 'pino';

/** Notifications (and, by cascade, their deliveries) deleted per statement. */
export const ERASURE_BATCH_SIZE = 1000;

/** The smallest batch a purge falls back to when batches run into the statement timeout. */
const MIN_ERASURE_BATCH_SIZE = 50;

/** Statement timeouts one purge absorbs (halving its batch each time) before it gives up until the next sweep. */
const MAX_BATCH_TIMEOUTS = 8;

/** Tombstones looked at per statement by the sweep. */
const SWEEP_PAGE = 1000;

/**
 * Deletes an erased user's notifications in batches, each its own short statement, so that
 * a user with 100 000 notifications is erased without one statement (or transaction)
 * running into DB_STATEMENT_TIMEOUT_MS.
 *
 * The erasure handler does the part that must be atomic with its inbox row: the tombstone
 * (`erased_users`), the address and preferences, and the first batch of notifications. It
 * then starts `purgeUser` after the commit; `sweep`, run by the retention job, finishes
 * any purge a crash or shutdown interrupted, and removes what a handler that raced the
 * erasure (it checked for the tombstone before it was committed) wrote afterwards. The
 * tombstone is the durable work list: every step deletes by user id, so running it twice,
 * or on two instances at once, is harmless. While rows are left, nothing can reach them:
 * the account's sessions are revoked, and without an address or preferences no delivery
 * can be sent.
 */
@Injectable()
export class ErasurePurge {
  private readonly running = new Map<string, Promise<number>>();

  constructor(
    @InjectDataSource('notifications') private readonly dataSource: DataSource,
    @Inject(ROOT_LOGGER) private readonly logger: Logger,
  ) {}

  /**
   * Deletes the user's address, preferences and up to `limit` notifications (deliveries
   * cascade) through `db` (the handler's transaction, or the module's connection).
   * Returns how many notifications went.
   */
  async deleteBatch(db: DataSource | EntityManager, userId: string, limit = ERASURE_BATCH_SIZE): Promise<number> {
    await db.query('DELETE FROM notifications.preferences WHERE user_id = $1', [userId]);
    await db.query('DELETE FROM notifications.recipients WHERE user_id = $1', [userId]);
    const [{ count }] = await db.query<{ count: number }[]>(
      // The oldest `limit` rows by (user_id, created_at), deleted as one index range per
      // month: joining the batch back by id makes the planner hash-join every partition of
      // the table on each batch. Ties at the boundary go in the same batch (a few more rows).
      `WITH gone AS (
         DELETE FROM notifications.notifications
          WHERE user_id = $1
            AND created_at <= (SELECT max(created_at) FROM (
                  SELECT created_at FROM notifications.notifications WHERE user_id = $1 ORDER BY created_at LIMIT $2) AS batch)
         RETURNING 1
       )
       SELECT count(*)::int AS count FROM gone`,
      [userId, limit],
    );
    // Deliveries always belong to a notification of the same user; a cascade removes them.
    // This catches any written by a handler that raced the erasure without its notification.
    if (count < limit) await db.query('DELETE FROM notifications.deliveries WHERE user_id = $1', [userId]);
    return count;
  }

  /** Deletes everything left of an erased user, batch after batch. Resolves with the notifications deleted. */
  purgeUser(userId: string): Promise<number> {
    // One purge per user per process: a second call joins the one under way.
    let purge = this.running.get(userId);
    if (!purge) {
      purge = this.purgeAll(userId).finally(() => this.running.delete(userId));
      this.running.set(userId, purge);
    }
    return purge;
  }

  /** Purges every erased user that still has rows here. Returns the users purged. */
  async sweep(): Promise<number> {
    let purged = 0;
    let after = '00000000-0000-0000-0000-000000000000';
    for (;;) {
      // Keyset pages of tombstones; per tombstone one probe of the (user_id, ...) indexes.
      const page = await this.dataSource.query<{ user_id: string; pending: boolean }[]>(
        `SELECT e.user_id,
                EXISTS (SELECT 1 FROM notifications.notifications n WHERE n.user_id = e.user_id)
                  OR EXISTS (SELECT 1 FROM notifications.recipients r WHERE r.user_id = e.user_id)
                  OR EXISTS (SELECT 1 FROM notifications.preferences p WHERE p.user_id = e.user_id)
                  OR EXISTS (SELECT 1 FROM notifications.deliveries d WHERE d.user_id = e.user_id) AS pending
           FROM notifications.erased_users e
          WHERE e.user_id > $1
          ORDER BY e.user_id
          LIMIT $2`,
        [after, SWEEP_PAGE],
      );
      for (const { user_id, pending } of page) {
        if (!pending) continue;
        try {
          await this.purgeUser(user_id);
          purged += 1;
        } catch (error) {
          // One user's rows (say, a lock held too long) must not stop the others; the next sweep retries.
          this.logger.warn({ err: error }, 'erasure sweep: a purge failed; retried at the next run');
        }
      }
      if (page.length < SWEEP_PAGE) return purged;
      after = page[page.length - 1].user_id;
    }
  }

  private async purgeAll(userId: string): Promise<number> {
    let deleted = 0;
    let batches = 0;
    let batchSize = ERASURE_BATCH_SIZE;
    let timeouts = 0;
    for (;;) {
      let count: number;
      try {
        count = await this.deleteBatch(this.dataSource, userId, batchSize);
      } catch (error) {
        // A batch that runs into the statement timeout (a busy database, a slow disk) is
        // retried smaller at once rather than left to the next sweep, hours away.
        if (!isStatementTimeout(error) || ++timeouts > MAX_BATCH_TIMEOUTS) throw error;
        batchSize = Math.max(MIN_ERASURE_BATCH_SIZE, Math.floor(batchSize / 2));
        this.logger.warn({ batchSize, timeouts }, 'erasure batch ran into the statement timeout; retrying with a smaller batch');
        await sleep(50 * timeouts);
        continue;
      }
      deleted += count;
      batches += 1;
      if (count < batchSize) break;
      // Let other writers, replicas and vacuum breathe between batches.
      await sleep(5);
    }
    if (deleted > 0) this.logger.info({ deleted, batches, batchSize }, 'erased user: remaining notifications deleted');
    return deleted;
  }
}

/** Postgres `query_canceled`: what a statement timeout raises. */
function isStatementTimeout(error: unknown): boolean {
  return (error as { code?: string } | undefined)?.code === '57014';
}
