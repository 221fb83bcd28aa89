import 'reflect-metadata';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { getDataSourceToken } from '@nestjs/typeorm';
import pino from 'pino';
import { Writable } from 'node:stream';
import type { DataSource, EntityManager } from 'typeorm';
import {
  inboxQueueName,
  MessagingRegistry,
  MetricsService,
  ModuleMessagingLifecycle,
  moduleDatabaseImports,
  moduleMessagingProviders,
  OutboxPublisher,
  PlatformModule,
  QueueFactory,
  type InboxEventHandler,
  type IntegrationEvent,
  type ModuleManifest,
} from '@app/platform';
import { ordersDatabase } from '@app/orders';
import { usersDatabase } from '@app/users';
import { unfinishedJobs } from '../support/settled';
import { createTestDatabase, deleteRedisPrefix, eventually, query, runId, testConfig } from '../support/test-env';

const EVENT = 'users.test-happened.v1';
interface TestPayload {
  key: string;
  failTimes?: number;
}

/** Counts calls and successes per event; fails on purpose while `failTimes` says so. */
@Injectable()
class RecordingHandler implements InboxEventHandler<TestPayload> {
  readonly eventTypes = [EVENT];
  static readonly calls = new Map<string, number>();
  static readonly successes = new Map<string, number>();

  async handle(event: IntegrationEvent<TestPayload>, manager: EntityManager): Promise<void> {
    const calls = (RecordingHandler.calls.get(event.payload.key) ?? 0) + 1;
    RecordingHandler.calls.set(event.payload.key, calls);
    await manager.query('SELECT 1');
    if (calls <= (event.payload.failTimes ?? 0)) throw new Error(`planned failure ${calls}`);
    RecordingHandler.successes.set(event.payload.key, (RecordingHandler.successes.get(event.payload.key) ?? 0) + 1);
  }
}

/**
 * Test manifests: `users` publishes EVENT, a type nobody consumes, and a type `orders`
 * declares but (like older code in a rolling deploy) has no handler for.
 */
const UNCONSUMED = 'users.nobody-listens.v1';
const NO_HANDLER = 'users.handler-not-deployed.v1';
const producerManifest: ModuleManifest = {
  name: 'users', schema: 'users', mayUse: [], queues: [],
  events: { publishes: [{ type: EVENT }, { type: UNCONSUMED }, { type: NO_HANDLER }], consumes: [] },
};
const consumerManifest: ModuleManifest = {
  name: 'orders', schema: 'orders', mayUse: ['users'], queues: [],
  events: { publishes: [], consumes: [EVENT, NO_HANDLER] },
};

/** Every log line of the test's instances, parsed (what an operator would see). */
const logLines: { msg: string; eventType?: string; module?: string; level: number }[] = [];
const logSink = new Writable({
  write(chunk: Buffer, _encoding, done) {
    for (const line of chunk.toString().split('\n').filter(Boolean)) logLines.push(JSON.parse(line));
    done();
  },
});

@Module({
  imports: [...moduleDatabaseImports(usersDatabase)],
  providers: [...moduleMessagingProviders({ manifest: producerManifest })],
  exports: [OutboxPublisher],
})
class ProducerModule {}

@Module({
  imports: [...moduleDatabaseImports(ordersDatabase)],
  providers: [...moduleMessagingProviders({ manifest: consumerManifest, handlers: [RecordingHandler] })],
})
class ConsumerModule {}

describe('Outbox → relay → inbox backbone', () => {
  let db: string;
  const redisPrefix = `${runId()}:backbone`;
  const contexts: INestApplicationContext[] = [];

  async function startInstance(): Promise<INestApplicationContext> {
    const config = testConfig(db, { redisPrefix, env: { INBOX_MAX_ATTEMPTS: '4', MODULES_ENABLED: 'users,orders' } });
    @Module({ imports: [PlatformModule.forRoot(config, pino({ level: 'info' }, logSink), [producerManifest, consumerManifest]), ProducerModule, ConsumerModule] })
    class InstanceModule {}
    const context = await NestFactory.createApplicationContext(InstanceModule, { logger: false });
    await context.init();
    contexts.push(context);
    return context;
  }

  let app: INestApplicationContext;
  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startInstance();
  });
  afterAll(async () => {
    await Promise.all(contexts.map((c) => c.close()));
    await deleteRedisPrefix(process.env.TEST_REDIS_URL!, redisPrefix);
  });

  async function publish(context: INestApplicationContext, payloads: TestPayload[], type = EVENT): Promise<string[]> {
    const dataSource = context.get<DataSource>(getDataSourceToken('users'));
    const publisher = context.select(ProducerModule).get(OutboxPublisher, { strict: true });
    return dataSource.transaction((manager) => publisher.publish(manager, payloads.map((payload) => ({ type, payload }))));
  }

  const inboxRows = (eventId: string) => query(db, 'SELECT 1 FROM orders.inbox WHERE event_id = $1', [eventId]);

  it('refuses to publish outside a transaction (events must commit with the use case)', async () => {
    const dataSource = app.get<DataSource>(getDataSourceToken('users'));
    const publisher = app.select(ProducerModule).get(OutboxPublisher, { strict: true });
    await expect(publisher.publish(dataSource.manager, [{ type: EVENT, payload: { key: 'x' } }])).rejects.toThrow(/inside the use case transaction/);
  });

  it('delivers an event once and ignores a redelivery of the same event id', async () => {
    const [id] = await publish(app, [{ key: 'redelivery' }]);
    await eventually(() => Promise.resolve(RecordingHandler.successes.get('redelivery') === 1));
    expect(await inboxRows(id)).toHaveLength(1);
    // Kept for replay, marked published.
    await eventually(async () => (await query(db, 'SELECT 1 FROM users.outbox WHERE id = $1 AND published_at IS NOT NULL', [id])).length === 1);

    // Redeliver the same event under another job id, as after a crash between add and mark.
    const queue = app.get(QueueFactory).get(inboxQueueName('orders'));
    const envelope: IntegrationEvent = { id, type: EVENT, producer: 'users', occurredAt: new Date().toISOString(), payload: { key: 'redelivery' }, metadata: {} };
    const job = await queue.add(EVENT, envelope, { jobId: `${id}-again`, attempts: 1, removeOnComplete: false });
    await job.finished();
    expect(RecordingHandler.calls.get('redelivery')).toBe(1);
    expect(RecordingHandler.successes.get('redelivery')).toBe(1);
    expect(await inboxRows(id)).toHaveLength(1);
  });

  it('retries a failing handler with backoff and counts the event delivered only once it succeeds', async () => {
    const [id] = await publish(app, [{ key: 'flaky', failTimes: 2 }]);
    await eventually(() => Promise.resolve(RecordingHandler.successes.get('flaky') === 1));
    expect(RecordingHandler.calls.get('flaky')).toBe(3);
    expect(await inboxRows(id)).toHaveLength(1);
    expect(await query(db, 'SELECT 1 FROM orders.dead_letters WHERE event_id = $1', [id])).toHaveLength(0);
  });

  it('stops after INBOX_MAX_ATTEMPTS and leaves a visible dead letter (table and Bull failed set)', async () => {
    const [id] = await publish(app, [{ key: 'doomed', failTimes: 1000 }]);
    const [dead] = await eventually(async () => {
      const rows = await query<{ attempts: number; error: string; event_type: string }>(db, 'SELECT attempts, error, event_type FROM orders.dead_letters WHERE event_id = $1', [id]);
      return rows.length ? rows : undefined;
    });
    expect(dead).toEqual({ attempts: 4, error: 'Error: planned failure 4', event_type: EVENT });
    expect(RecordingHandler.calls.get('doomed')).toBe(4);
    expect(await inboxRows(id)).toHaveLength(0);
    const job = await app.get(QueueFactory).get(inboxQueueName('orders')).getJob(id);
    // Failed with every attempt used: Bull schedules no further one, so 4 calls is final.
    expect(await job?.getState()).toBe('failed');
    expect(job?.attemptsMade).toBe(4);
    expect(RecordingHandler.calls.get('doomed')).toBe(4);
  });

  it('clears the dead letter when its failed job is retried by hand (as from Bull Board) and then succeeds', async () => {
    const [id] = await publish(app, [{ key: 'retried-by-hand', failTimes: 4 }]);
    await eventually(async () => (await query(db, 'SELECT 1 FROM orders.dead_letters WHERE event_id = $1', [id])).length === 1);
    const job = (await app.get(QueueFactory).get(inboxQueueName('orders')).getJob(id))!;
    await eventually(async () => (await job.getState()) === 'failed');
    await job.retry();
    await eventually(() => Promise.resolve(RecordingHandler.successes.get('retried-by-hand') === 1));
    expect(await inboxRows(id)).toHaveLength(1);
    expect(await query(db, 'SELECT 1 FROM orders.dead_letters WHERE event_id = $1', [id])).toHaveLength(0);
  });

  it('never skips an event whose transaction commits after a later one', async () => {
    const dataSource = app.get<DataSource>(getDataSourceToken('users'));
    const publisher = app.select(ProducerModule).get(OutboxPublisher, { strict: true });
    const slow = dataSource.createQueryRunner();
    await slow.connect();
    await slow.startTransaction();
    const [slowId] = await publisher.publish(slow.manager, [{ type: EVENT, payload: { key: 'early-seq-late-commit' } }]);
    await publish(app, [{ key: 'late-seq-early-commit' }]);
    await eventually(() => Promise.resolve(RecordingHandler.successes.get('late-seq-early-commit') === 1));
    expect(RecordingHandler.calls.get('early-seq-late-commit')).toBeUndefined();
    await slow.commitTransaction();
    await slow.release();
    await eventually(() => Promise.resolve(RecordingHandler.successes.get('early-seq-late-commit') === 1));
    expect(await inboxRows(slowId)).toHaveLength(1);
  });

  it('runs safely with several instances: every event is handled exactly once', async () => {
    const second = await startInstance();
    const keys = Array.from({ length: 120 }, (_, i) => `multi-${i}`);
    // Produce from both instances at once, in batches, while both relays and consumers run.
    await Promise.all(
      Array.from({ length: 12 }, (_, batch) => publish(batch % 2 ? second : app, keys.slice(batch * 10, batch * 10 + 10).map((key) => ({ key })))),
    );
    await eventually(() => Promise.resolve(keys.every((key) => RecordingHandler.successes.get(key) === 1)), 20_000);
    await Promise.all(contexts.map((c) => c.get(MessagingRegistry).drainAll()));
    // Both instances share the queue: once nothing is waiting, active or delayed, no
    // redelivery can still come.
    await eventually(async () => Object.keys(await unfinishedJobs(app, inboxQueueName('orders'))).length === 0);
    expect(keys.filter((key) => RecordingHandler.calls.get(key) !== 1)).toEqual([]);
    expect(await query(db, 'SELECT 1 FROM users.outbox WHERE published_at IS NULL AND event_type = $1', [EVENT])).toHaveLength(0);
  });

  describe('nothing is lost or acknowledged unhandled', () => {
    it('refuses to publish a type the producer manifest does not declare (the use case fails, nothing is written)', async () => {
      await expect(publish(app, [{ key: 'undeclared' }], 'users.not-in-manifest.v1')).rejects.toThrow(
        'Module "users" publishes "users.not-in-manifest.v1", which its manifest does not declare under events.publishes',
      );
      expect(await query(db, `SELECT 1 FROM users.outbox WHERE event_type = 'users.not-in-manifest.v1'`)).toHaveLength(0);
    });

    it('leaves an event no manifest routes in the outbox, logs its type once and counts it in outbox_unrouted_events', async () => {
      const ids = [...(await publish(app, [{ key: 'unrouted-1' }], UNCONSUMED)), ...(await publish(app, [{ key: 'unrouted-2' }], UNCONSUMED))];
      // A routed event published after them is relayed: the unrouted rows do not block the relay.
      const [after] = await publish(app, [{ key: 'after-unrouted' }]);
      await eventually(() => Promise.resolve(RecordingHandler.successes.get('after-unrouted') === 1));
      await app.get(MessagingRegistry).drainAll();
      const rows = await query<{ published_at: Date | null }>(db, 'SELECT published_at FROM users.outbox WHERE id = ANY($1::uuid[])', [ids]);
      expect(rows).toEqual([{ published_at: null }, { published_at: null }]);
      expect(await query(db, 'SELECT 1 FROM users.outbox WHERE id = $1 AND published_at IS NOT NULL', [after])).toHaveLength(1);

      const relay = app.get(MessagingRegistry).relays.get('users')!;
      expect(await relay.unroutedEvents()).toEqual(new Map([[UNCONSUMED, 2]]));
      await relay.unroutedEvents();
      const logged = logLines.filter((l) => l.eventType === UNCONSUMED && /no declared consumer/.test(l.msg));
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatchObject({ module: 'users', level: 50 });

      const metrics = await app.get(MetricsService).scrape();
      expect(metrics).toContain(`outbox_unrouted_events{module="users",event_type="${UNCONSUMED}"} 2`);
      expect(metrics).toMatch(/outbox_pending_events\{module="users"\} 2\b/);
    });

    it('retries an event its consumer declares but has no handler for, then dead-letters it (never acknowledges it)', async () => {
      const [id] = await publish(app, [{ key: 'no-handler' }], NO_HANDLER);
      const [dead] = await eventually(async () => {
        const found = await query<{ attempts: number; error: string }>(db, 'SELECT attempts, error FROM orders.dead_letters WHERE event_id = $1', [id]);
        return found.length ? found : undefined;
      });
      expect(dead).toEqual({ attempts: 4, error: `NoInboxHandlerError: module "orders" has no inbox handler for "${NO_HANDLER}" in this version of its code` });
      expect(await inboxRows(id)).toHaveLength(0);
      const job = await app.get(QueueFactory).get(inboxQueueName('orders')).getJob(id);
      expect(await job?.getState()).toBe('failed');
      expect(job?.attemptsMade).toBe(4);
      // Only the last attempt's stack trace is kept (JOB_STACK_TRACES): a failed set at its
      // count bound would otherwise hold one per attempt for every job.
      expect(job?.stacktrace).toHaveLength(1);
      expect(job?.stacktrace[0]).toContain('NoInboxHandlerError');
      expect(await app.get(MetricsService).scrape()).toMatch(/dead_letter_events\{module="orders"\} [1-9]/);
    });

    it('keeps published events for OUTBOX_RETENTION, then the retention sweeper deletes them in batches; unpublished ones never', async () => {
      const old = await query<{ id: string }>(
        db,
        `INSERT INTO users.outbox (id, event_type, payload, occurred_at, published_at)
         SELECT gen_random_uuid(), $1, '{}'::jsonb, now() - interval '9 days', now() - interval '8 days' FROM generate_series(1, 1500)
         RETURNING id`,
        [EVENT],
      );
      const [recent] = await query<{ id: string }>(
        db,
        `INSERT INTO users.outbox (id, event_type, payload, occurred_at, published_at) VALUES (gen_random_uuid(), $1, '{}'::jsonb, now() - interval '6 days', now() - interval '6 days') RETURNING id`,
        [EVENT],
      );
      // Old but never published (e.g. unrouted): retention must not touch it.
      const [stuck] = await query<{ id: string }>(
        db,
        `INSERT INTO users.outbox (id, event_type, payload, occurred_at) VALUES (gen_random_uuid(), $1, '{}'::jsonb, now() - interval '30 days') RETURNING id`,
        [UNCONSUMED],
      );
      // The module's sweeper, run now (its timer, RETENTION_INTERVAL_MS, is an hour here).
      const sweeper = app.select(ProducerModule).get(ModuleMessagingLifecycle, { strict: true }).retention;
      expect((await sweeper.runOnce()).get('outbox')).toBe(1500);
      expect(await query(db, 'SELECT 1 FROM users.outbox WHERE id = ANY($1::uuid[])', [old.map((r) => r.id)])).toHaveLength(0);
      expect(await query(db, 'SELECT 1 FROM users.outbox WHERE id = ANY($1::uuid[])', [[recent.id, stuck.id]])).toHaveLength(2);
      expect(await app.get(MetricsService).scrape()).toMatch(/^retention_deleted_rows_total\{module="users",table="outbox"\} 1500$/m);
    });
  });
});
