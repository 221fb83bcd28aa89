import type { INestApplicationContext } from '@nestjs/common';
import { Client } from 'pg';
import { APP_CONFIG, EventRouting, MessagingRegistry, QueueFactory, type AppConfig, type DomainModuleName } from '@app/platform';
import { eventually, query } from './test-env';

/**
 * Positive signals that the system has finished what it would do, for tests that assert
 * "exactly N" or "nothing more": instead of sleeping and hoping a duplicate would have shown
 * up by then, wait until every place work can still be waiting in is empty, then count.
 */

/** Bull states of a job that has not finished yet, so may still have an effect. */
const UNFINISHED = ['waiting', 'active', 'delayed', 'paused'] as const;

/** The notifications module's delivery queues (notifications.queues.ts; not the retention queue, which is always delayed). */
const DELIVERY_QUEUES = ['notifications.email', 'notifications.webhook'];

/** The queue's jobs that are not finished, by state; empty when the queue is idle. */
export async function unfinishedJobs(app: INestApplicationContext, queueName: string): Promise<Record<string, number>> {
  // getJobCounts reads every state in one MULTI, so a job moving between states is seen
  // exactly once (its typing omits `paused`, which it counts too).
  const counts = (await app.get(QueueFactory).get(queueName).getJobCounts()) as unknown as Record<string, number>;
  return Object.fromEntries(UNFINISHED.filter((state) => counts[state] > 0).map((state) => [state, counts[state]]));
}

/** Resolves once `<schema>.inbox` holds every one of `eventIds` (the consumer's transaction committed). */
export async function inboxHas(db: string, schema: string, eventIds: string[], timeoutMs = 10_000): Promise<void> {
  await eventually(async () => {
    const rows = await query(db, `SELECT 1 FROM "${schema}".inbox WHERE event_id = ANY($1::uuid[])`, [eventIds]);
    return rows.length === new Set(eventIds).size;
  }, timeoutMs);
}

/**
 * Resolves once the event flow of `app` is at rest: every routable outbox row published,
 * every inbox queue idle, and, where the notifications module runs, every delivery row
 * handed to its queue and both delivery queues idle (each delivery finished: sent or dead,
 * retries included, since a retry waits as a delayed job).
 *
 * The stages are checked in the order work flows through them, so an item moving on while
 * it is being looked for is met further down (every hand-over overlaps: a row is marked
 * published in the transaction that added its job, a job stays active until its
 * transaction commits). A handler may publish further events (an erasure cancels orders),
 * which flow back to an outbox; so the check must pass twice in a row.
 */
export async function eventsSettled(app: INestApplicationContext, db: string, timeoutMs = 15_000): Promise<void> {
  const registry = app.get(MessagingRegistry);
  const routing = app.get(EventRouting);
  const config = app.get<AppConfig>(APP_CONFIG);
  const outboxes = [...registry.relays.keys()].map((module) => ({
    schema: config.databases[module as DomainModuleName].schema,
    types: routing.routableTypes(module),
  }));
  const inboxQueues = [...registry.consumers.values()].map((consumer) => consumer.queueName);
  const deliveryQueues = DELIVERY_QUEUES.filter((queue) => registry.queueOwners.get(queue) === 'notifications');

  const client = new Client({ connectionString: db });
  await client.connect();
  const count = async (sql: string, params: unknown[] = []) => Number((await client.query<{ n: string }>(sql, params)).rows[0].n);

  /** What is still under way, stage by stage; empty when nothing is. */
  async function pending(): Promise<string[]> {
    const found: string[] = [];
    for (const { schema, types } of outboxes) {
      const n = await count(`SELECT count(*) AS n FROM "${schema}".outbox WHERE published_at IS NULL AND event_type = ANY($1::text[])`, [types]);
      if (n) found.push(`${n} unpublished event(s) in ${schema}.outbox`);
    }
    for (const queue of inboxQueues) {
      const jobs = await unfinishedJobs(app, queue);
      if (Object.keys(jobs).length) found.push(`${queue}: ${JSON.stringify(jobs)}`);
    }
    if (deliveryQueues.length) {
      const n = await count('SELECT count(*) AS n FROM notifications.deliveries WHERE enqueued_at IS NULL');
      if (n) found.push(`${n} delivery row(s) not enqueued yet`);
    }
    for (const queue of deliveryQueues) {
      const jobs = await unfinishedJobs(app, queue);
      if (Object.keys(jobs).length) found.push(`${queue}: ${JSON.stringify(jobs)}`);
    }
    return found;
  }

  let cleanPasses = 0;
  try {
    await eventually(async () => {
      // Publish what is committed now rather than at the relay's next poll.
      await registry.drainAll();
      const left = await pending();
      cleanPasses = left.length ? 0 : cleanPasses + 1;
      // Thrown, so that a timeout names what was still under way.
      if (left.length) throw new Error(`events not settled: ${left.join('; ')}`);
      return cleanPasses === 2;
    }, timeoutMs);
  } finally {
    await client.end();
  }
}

/**
 * Resolves once `isQuiet` answers true twice in a row: a job or row may move between two
 * stages while one look is under way. For processes the test does not host (where
 * eventsSettled cannot reach the app), with the test's own view of their queues.
 */
export async function quietTwice(isQuiet: () => Promise<boolean>, timeoutMs = 20_000, intervalMs = 250): Promise<void> {
  let quietLooks = 0;
  await eventually(async () => {
    quietLooks = (await isQuiet()) ? quietLooks + 1 : 0;
    return quietLooks >= 2;
  }, timeoutMs, intervalMs);
}
