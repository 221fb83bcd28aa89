import type { DataSource, QueryRunner } from 'typeorm';
import { withTimeout } from '../redis/redis-connection';
import type { QueueFactory } from './queue.factory';

export interface EnqueuedJob {
  name?: string;
  data: unknown;
  opts: object;
}

/** One table that hands rows to Bull: how to claim them, what to enqueue, how to mark them. */
export interface ClaimEnqueueMark<Row> {
  /** Claims a batch in the transaction: `SELECT … FOR UPDATE SKIP LOCKED`. */
  claim(runner: QueryRunner): Promise<Row[]>;
  /** The jobs for the claimed rows, by queue. A job's id must be its row's id. */
  jobs(rows: Row[]): Map<string, EnqueuedJob[]>;
  /** Marks the rows as handed to Bull, in the same transaction. */
  mark(runner: QueryRunner, rows: Row[]): Promise<void>;
  /** For the timeout's message, e.g. `publishing outbox events to Redis`. */
  what: string;
  timeoutMs: number;
}

/**
 * The transactional hand-over from a Postgres table to Bull, shared by the outbox relay
 * and the notifications delivery dispatcher: claim (rows locked, other instances skip
 * them), enqueue (job id = row id) and mark at once, commit. A crash or Redis failure before the
 * commit leaves the rows unmarked, so they are claimed again and re-added under the same
 * job ids, which Bull ignores; nothing is marked that was not enqueued. Returns the rows
 * handed over (none: nothing to do).
 */
export async function claimEnqueueMark<Row>(dataSource: DataSource, queues: QueueFactory, step: ClaimEnqueueMark<Row>): Promise<Row[]> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  await runner.startTransaction();
  try {
    const rows = await step.claim(runner);
    if (rows.length === 0) {
      await runner.commitTransaction();
      return rows;
    }
    // The mark runs in Postgres while Redis takes the jobs; the commit waits for both, and
    // a failure of either rolls the mark back, so nothing is marked that was not enqueued.
    // (Serially, the mark's UPDATE sat on every batch's critical path: keeping published
    // rows made it a new row version plus index entries, ~9 µs of Postgres CPU per event.)
    await Promise.all([
      withTimeout(
        // Then, if configured, until replicas hold them (a failover must not lose them).
        Promise.all([...step.jobs(rows)].map(([queue, jobs]) => queues.get(queue).addBulk(jobs))).then(() => queues.replicated(Math.floor(step.timeoutMs / 2))),
        step.timeoutMs,
        step.what,
      ),
      step.mark(runner, rows),
    ]);
    await runner.commitTransaction();
    return rows;
  } catch (error) {
    await runner.rollbackTransaction().catch(() => undefined);
    throw error;
  } finally {
    await runner.release();
  }
}
