import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { getDataSourceToken } from '@nestjs/typeorm';
import pino from 'pino';
import request from 'supertest';
import type { DataSource, EntityManager } from 'typeorm';
import {
  DeadLetterNotFoundError,
  EventOperations,
  inboxQueueName,
  moduleDatabaseImports,
  moduleMessagingProviders,
  OutboxPublisher,
  parseIsoTime,
  PlatformModule,
  QueueFactory,
  UsageError,
  type AppConfig,
  type InboxEventHandler,
  type IntegrationEvent,
  type ModuleManifest,
} from '@app/platform';
import { ordersDatabase } from '@app/orders';
import { usersDatabase } from '@app/users';
import { runCli } from '../support/cli';
import { freePort } from '../support/processes';
import { eventsSettled } from '../support/settled';
import { createTestDatabase, deleteRedisPrefix, eventually, query, runId, startApi, testConfig, uniqueEmail, type RunningApi } from '../support/test-env';
import { MODULE_MANIFESTS } from '@app/manifests';

const EVENT = 'users.test-happened.v1';
const OTHER = 'users.test-other.v1';
const UNCONSUMED = 'users.nobody-listens.v1';
const MAX_ATTEMPTS = 3;

interface TestPayload {
  key: string;
  /** Fails on every attempt until the test puts the key in RecordingHandler.fixed. */
  broken?: boolean;
}

/** Counts calls and successes per key; a `broken` event fails until its key is fixed. */
@Injectable()
class RecordingHandler implements InboxEventHandler<TestPayload> {
  readonly eventTypes = [EVENT, OTHER];
  static readonly calls = new Map<string, number>();
  static readonly successes = new Map<string, number>();
  static readonly fixed = new Set<string>();

  async handle(event: IntegrationEvent<TestPayload>, manager: EntityManager): Promise<void> {
    const { key, broken } = event.payload;
    RecordingHandler.calls.set(key, (RecordingHandler.calls.get(key) ?? 0) + 1);
    await manager.query('SELECT 1');
    if (broken && !RecordingHandler.fixed.has(key)) throw new Error(`handler for ${key} is broken\nsecond line of the error`);
    RecordingHandler.successes.set(key, (RecordingHandler.successes.get(key) ?? 0) + 1);
  }
}

/** Test manifests: `users` publishes EVENT and OTHER (consumed by `orders`) and one type nobody consumes. */
const producerManifest: ModuleManifest = {
  name: 'users', schema: 'users', mayUse: [], queues: [],
  events: { publishes: [{ type: EVENT }, { type: OTHER }, { type: UNCONSUMED }], consumes: [] },
};
const consumerManifest: ModuleManifest = {
  name: 'orders', schema: 'orders', mayUse: ['users'], queues: [],
  events: { publishes: [], consumes: [EVENT, OTHER] },
};
const MANIFESTS = [producerManifest, consumerManifest];

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


const MODULES = MODULE_MANIFESTS.map((m) => m.name).join(', ');

describe('Event operations: outbox replay and dead letters (platform, test modules)', () => {
  let db: string;
  let config: AppConfig;
  let app: INestApplicationContext;
  let ops: EventOperations;
  const redisPrefix = `${runId()}:event-ops`;
  /** Job ids the consumer finished (handled or ignored as a duplicate), in order. */
  const completed: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    config = testConfig(db, { redisPrefix, env: { INBOX_MAX_ATTEMPTS: String(MAX_ATTEMPTS), MODULES_ENABLED: 'users,orders' } });
    @Module({ imports: [PlatformModule.forRoot(config, pino({ level: 'silent' }), MANIFESTS), ProducerModule, ConsumerModule] })
    class InstanceModule {}
    app = await NestFactory.createApplicationContext(InstanceModule, { logger: false });
    await app.init();
    inbox().on('completed', (job: { id: string | number }) => completed.push(String(job.id)));
    ops = new EventOperations(config, MANIFESTS);
  });
  afterAll(async () => {
    await ops?.close();
    await app?.close();
    await deleteRedisPrefix(process.env.TEST_REDIS_URL!, redisPrefix);
  });

  const inbox = () => app.get(QueueFactory).get(inboxQueueName('orders'));
  const timesCompleted = (id: string) => completed.filter((c) => c === id).length;
  const inboxRows = (id: string) => query(db, 'SELECT 1 FROM orders.inbox WHERE event_id = $1', [id]);
  const deadLetterRows = (id: string) => query(db, 'SELECT 1 FROM orders.dead_letters WHERE event_id = $1', [id]);

  /** Nothing more can happen: relays done, inbox queue idle (test/support/settled.ts). */
  const settled = () => eventsSettled(app, db);

  async function publish(payload: TestPayload, type = EVENT): Promise<{ id: string; occurredAt: Date }> {
    const dataSource = app.get<DataSource>(getDataSourceToken('users'));
    const publisher = app.select(ProducerModule).get(OutboxPublisher, { strict: true });
    const [id] = await dataSource.transaction((manager) => publisher.publish(manager, [{ type, payload }]));
    const [row] = await query<{ occurred_at: Date }>(db, 'SELECT occurred_at FROM users.outbox WHERE id = $1', [id]);
    return { id, occurredAt: row.occurred_at };
  }

  /** A row as the relay leaves it after publishing: kept, marked published at `publishedAt`. */
  async function keptRow(payload: TestPayload, type: string, occurredAt: string): Promise<string> {
    const id = randomUUID();
    await query(db, `INSERT INTO users.outbox (id, event_type, payload, occurred_at, published_at) VALUES ($1, $2, $3, $4, now())`, [id, type, JSON.stringify(payload), occurredAt]);
    return id;
  }

  async function deadLetter(key: string): Promise<string> {
    const { id } = await publish({ key, broken: true });
    await eventually(async () => (await deadLetterRows(id)).length === 1, 15_000);
    // The consumer records the dead letter just before Bull marks the job failed.
    await eventually(async () => (await inbox().getJob(id))?.getState().then((s) => s === 'failed'));
    return id;
  }

  it('replaying a handled event has no second effect: the inbox deduplicates it', async () => {
    const { id, occurredAt } = await publish({ key: 'handled' });
    await eventually(async () => timesCompleted(id) === 1);

    const result = await ops.replayOutbox({ module: 'users', since: occurredAt });
    expect(result).toMatchObject({ module: 'users', total: 1 });
    expect([...result.byType]).toEqual([[EVENT, 1]]);

    // Published again (the relay picked it up) and consumed again, as a duplicate.
    await eventually(async () => timesCompleted(id) === 2);
    expect(await query(db, 'SELECT 1 FROM users.outbox WHERE id = $1 AND published_at IS NOT NULL', [id])).toHaveLength(1);
    expect(RecordingHandler.calls.get('handled')).toBe(1);
    expect(RecordingHandler.successes.get('handled')).toBe(1);
    expect(await inboxRows(id)).toHaveLength(1);
  });

  it('replay delivers an event whose job Redis lost after the relay published it', async () => {
    const queue = inbox();
    await queue.pause(); // for every worker: the relay's job waits in Redis
    try {
      const { id, occurredAt } = await publish({ key: 'lost' });
      const job = await eventually(() => queue.getJob(id));
      await job.remove();
      expect(await query(db, 'SELECT 1 FROM users.outbox WHERE id = $1 AND published_at IS NOT NULL', [id])).toHaveLength(1);
      await queue.resume();
      await settled();
      expect(RecordingHandler.calls.get('lost')).toBeUndefined();

      const result = await ops.replayOutbox({ module: 'users', since: occurredAt, type: EVENT });
      expect(result.total).toBe(1);
      await eventually(async () => RecordingHandler.successes.get('lost') === 1);
      expect(await inboxRows(id)).toHaveLength(1);
      await settled();
      expect(RecordingHandler.calls.get('lost')).toBe(1);
    } finally {
      await queue.resume();
    }
  });

  it('replays only rows with since <= occurred_at < until, of the --type asked for', async () => {
    const before = await keptRow({ key: 'window-before' }, EVENT, '2001-01-01T00:59:59.999Z');
    const atSince = await keptRow({ key: 'window-at-since' }, EVENT, '2001-01-01T01:00:00Z');
    const other = await keptRow({ key: 'window-other-type' }, OTHER, '2001-01-01T01:30:00Z');
    const atUntil = await keptRow({ key: 'window-at-until' }, EVENT, '2001-01-01T02:00:00Z');
    const since = parseIsoTime('2001-01-01T01:00:00Z', '--since');
    const until = parseIsoTime('2001-01-01T02:00:00Z', '--until');

    const onlyEvent = await ops.replayOutbox({ module: 'users', since, until, type: EVENT });
    expect([...onlyEvent.byType]).toEqual([[EVENT, 1]]);
    await eventually(async () => RecordingHandler.successes.get('window-at-since') === 1);

    const both = await ops.replayOutbox({ module: 'users', since, until });
    expect(both.total).toBe(2);
    expect([...both.byType]).toEqual([[EVENT, 1], [OTHER, 1]]);
    await eventually(async () => RecordingHandler.successes.get('window-other-type') === 1);
    await eventually(async () => timesCompleted(atSince) === 2);
    await ops.replayOutbox({ module: 'users', since: until, type: OTHER }); // nothing of OTHER from 02:00 on: a no-op

    await settled();
    expect(RecordingHandler.calls.get('window-at-since')).toBe(1);
    expect(RecordingHandler.calls.get('window-other-type')).toBe(1);
    expect(RecordingHandler.calls.get('window-before')).toBeUndefined();
    expect(RecordingHandler.calls.get('window-at-until')).toBeUndefined();
    expect(timesCompleted(before) + timesCompleted(atUntil)).toBe(0);
    expect(timesCompleted(other)).toBe(1);
  });

  it('replays thousands of rows in batches, each delivered once', async () => {
    const count = 2500;
    await query(
      db,
      `INSERT INTO users.outbox (id, event_type, payload, occurred_at, published_at)
       SELECT gen_random_uuid(), $1, jsonb_build_object('key', 'bulk-' || i), '2002-01-01T00:00:00Z'::timestamptz + i * interval '1 ms', now()
         FROM generate_series(1, $2) AS i`,
      [EVENT, count],
    );
    const result = await ops.replayOutbox({ module: 'users', since: parseIsoTime('2002-01-01', '--since'), until: parseIsoTime('2002-01-02', '--until') });
    expect(result.total).toBe(count);
    await eventually(async () => {
      const [{ n }] = await query<{ n: number }>(db, `SELECT count(*)::int AS n FROM orders.inbox i JOIN users.outbox o ON o.id = i.event_id WHERE o.occurred_at >= '2002-01-01' AND o.occurred_at < '2002-01-02'`);
      return n === count;
    }, 30_000, 200);
    expect([...Array(count).keys()].filter((i) => RecordingHandler.calls.get(`bulk-${i + 1}`) !== 1)).toEqual([]);
  }, 60_000);

  it('refuses an unknown module, a type the module does not publish or nobody consumes, and an empty window', async () => {
    const since = new Date();
    await expect(ops.replayOutbox({ module: 'nope', since })).rejects.toThrow(new UsageError('unknown module "nope" (known: users, orders)'));
    await expect(ops.replayOutbox({ module: 'orders', since })).rejects.toThrow('module "orders" publishes no events: nothing to replay');
    await expect(ops.replayOutbox({ module: 'users', since, type: 'orders.order-placed.v1' })).rejects.toThrow(
      `module "users" does not publish event type "orders.order-placed.v1" (it publishes: ${EVENT}, ${OTHER}, ${UNCONSUMED})`,
    );
    await expect(ops.replayOutbox({ module: 'users', since, type: UNCONSUMED })).rejects.toThrow(/has no declared consumer/);
    await expect(ops.replayOutbox({ module: 'users', since, until: since })).rejects.toThrow(/--until .* must be later than --since/);
    expect(() => parseIsoTime('yesterday', '--since')).toThrow(UsageError);
    expect(() => parseIsoTime('2024-02-30', '--since')).toThrow(/is not an ISO 8601 time/);
    expect(() => parseIsoTime('2024-05-01T12:00:00', '--since')).toThrow('--since "2024-05-01T12:00:00" has no time zone: add Z or an offset, e.g. 2024-05-01T12:00:00Z');
    expect(parseIsoTime('2024-05-01T14:00:00+02:00', '--since').toISOString()).toBe('2024-05-01T12:00:00.000Z');
    expect(parseIsoTime('2024-05-01', '--since').toISOString()).toBe('2024-05-01T00:00:00.000Z');
  });

  it('a dead letter is listed, then replayed exactly once after the handler is fixed, and its row goes', async () => {
    const id = await deadLetter('dead-then-fixed');
    expect(RecordingHandler.calls.get('dead-then-fixed')).toBe(MAX_ATTEMPTS);

    const groups = await ops.deadLetterGroups({ module: 'orders', type: EVENT });
    expect(groups).toEqual([expect.objectContaining({ module: 'orders', eventType: EVENT, count: 1, lastError: expect.stringContaining('handler for dead-then-fixed is broken') })]);
    expect((await ops.listDeadLetters({ type: EVENT })).map((r) => r.eventId)).toEqual([id]);
    const [shown] = await ops.findDeadLetters(id);
    expect(shown).toMatchObject({ module: 'orders', attempts: MAX_ATTEMPTS, envelope: { id, type: EVENT, producer: 'users', payload: { key: 'dead-then-fixed' } } });

    // A replay of the outbox does not reach it: Bull ignores a job id still in the failed set.
    await ops.replayOutbox({ module: 'users', since: new Date(shown.envelope.occurredAt), type: EVENT });
    await eventually(async () => (await query(db, 'SELECT 1 FROM users.outbox WHERE id = $1 AND published_at IS NOT NULL', [id])).length === 1);
    await settled();
    expect(RecordingHandler.calls.get('dead-then-fixed')).toBe(MAX_ATTEMPTS);

    RecordingHandler.fixed.add('dead-then-fixed');
    expect(await ops.replayDeadLetter(id)).toEqual([{ module: 'orders', eventId: id, eventType: EVENT }]);
    expect(await deadLetterRows(id)).toHaveLength(0);
    await eventually(async () => RecordingHandler.successes.get('dead-then-fixed') === 1);
    await settled();
    expect(RecordingHandler.calls.get('dead-then-fixed')).toBe(MAX_ATTEMPTS + 1);
    expect(await inboxRows(id)).toHaveLength(1);
    expect(await inbox().getJob(id)).toBeNull();
    await expect(ops.replayDeadLetter(id)).rejects.toThrow(new DeadLetterNotFoundError(`no dead letter with event id ${id} in any module (users, orders)`));
  });

  it('a failed replay leaves the dead letter in place (the row goes only once Redis has the job)', async () => {
    const id = await deadLetter('redis-unreachable');
    const unreachable = testConfig(db, { redisUrl: `redis://127.0.0.1:${await freePort()}`, redisPrefix });
    const offline = new EventOperations(unreachable, MANIFESTS);
    try {
      await expect(offline.replayDeadLetter(id)).rejects.toThrow();
    } finally {
      await offline.close();
    }
    expect(await deadLetterRows(id)).toHaveLength(1);
    expect(await inbox().getJob(id).then((job) => job?.getState())).toBe('failed');

    RecordingHandler.fixed.add('redis-unreachable');
    await ops.replayDeadLetter(id, 'orders');
    await eventually(async () => RecordingHandler.successes.get('redis-unreachable') === 1);
  });

  it('discard deletes the dead letter and its failed job; --all discards one module\'s, by type', async () => {
    const id = await deadLetter('discarded');
    expect(await ops.discardDeadLetter(id)).toEqual([{ module: 'orders', eventId: id, eventType: EVENT }]);
    expect(await deadLetterRows(id)).toHaveLength(0);
    expect(await inbox().getJob(id)).toBeNull();
    await expect(ops.discardDeadLetter(id, 'orders')).rejects.toThrow(`no dead letter with event id ${id} in module "orders"`);

    const [a, b] = [await deadLetter('discard-all-a'), await deadLetter('discard-all-b')];
    expect((await ops.discardDeadLetters({ module: 'orders', type: OTHER })).done).toEqual([]);
    const result = await ops.discardDeadLetters({ module: 'orders', type: EVENT });
    expect(result.done.map((d) => d.eventId).sort()).toEqual([a, b].sort());
    expect(result.failed).toEqual([]);
    expect(await ops.deadLetterGroups()).toEqual([]);
    await settled();
    expect(RecordingHandler.successes.get('discarded')).toBeUndefined();
  });

  it('replay --all replays every selected dead letter', async () => {
    const [a, b] = [await deadLetter('replay-all-a'), await deadLetter('replay-all-b')];
    RecordingHandler.fixed.add('replay-all-a');
    RecordingHandler.fixed.add('replay-all-b');
    const result = await ops.replayDeadLetters({ type: EVENT });
    expect(result.done.map((d) => d.eventId).sort()).toEqual([a, b].sort());
    await eventually(async () => RecordingHandler.successes.get('replay-all-a') === 1 && RecordingHandler.successes.get('replay-all-b') === 1);
    expect(await ops.listDeadLetters()).toEqual([]);
  });
});

describe('Operator CLI events:* (the built process, real module manifests)', () => {
  let db: string;
  let api: RunningApi;
  let env: Record<string, string>;

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startApi(db);
    env = {
      DATABASE_URL: db,
      DB_ROLE_PREFIX: runId(),
      REDIS_URL: api.config.env.REDIS_URL,
      REDIS_KEY_PREFIX: api.config.env.REDIS_KEY_PREFIX,
      LOG_LEVEL: 'silent',
    };
  });
  afterAll(async () => {
    await api?.close();
  });

  const cli = (...args: string[]) => runCli(args, env);
  const welcomes = (userId: string) => query(db, `SELECT 1 FROM notifications.notifications WHERE user_id = $1 AND kind = 'welcome'`, [userId]);

  it('argument errors exit 64 with a message naming the problem', async () => {
    const cases: [string[], string][] = [
      [['events:replay', '--module', 'nope', '--since', '2024-01-01'], `unknown module "nope" (known: ${MODULES})`],
      [['events:replay', '--module', 'users'], '--since needs an ISO 8601 time'],
      [['events:replay', '--module', 'users', '--since', 'yesterday'], '--since "yesterday" is not an ISO 8601 time'],
      [['events:replay', '--module', 'users', '--since', '2024-01-01', '--type', 'orders.order-placed.v1'], 'module "users" does not publish event type "orders.order-placed.v1"'],
      [['events:replay', '--module', 'users', '--since', '2024-01-01', '--frobnicate'], "events:replay: Unknown option '--frobnicate' (it takes --module, --since, --until, --type)"],
      [['events:dead-letters'], 'events:dead-letters needs an action: list, show, replay or discard'],
      [['events:dead-letters', 'show', 'not-a-uuid'], '"not-a-uuid" is not an event id (expected a UUID)'],
      [['events:dead-letters', 'replay'], 'events:dead-letters replay needs an event id or --all'],
      [['events:dead-letters', 'discard', '--all'], 'discard --all needs --module <module>'],
      [['events:dead-letters', 'list', '--module', 'shop'], 'unknown module "shop"'],
      [['events:frobnicate'], 'unknown command "events:frobnicate"'],
    ];
    // Concurrently: each run is a whole process start.
    const results = await Promise.all(cases.map(([args]) => cli(...args)));
    results.forEach((result, i) => {
      const [args, message] = cases[i];
      expect({ args, code: result.code, stdout: result.stdout, stderr: result.stderr })
        .toEqual({ args, code: 64, stdout: '', stderr: expect.stringContaining(message) });
    });
  });

  it('events:replay republishes a module\'s events, per type, and a handled one has no second effect', async () => {
    const user = (await request(api.url).post('/v1/users').send({ email: uniqueEmail('replay'), password: 'correct horse battery', name: 'Replay' }).expect(201)).body as { id: string };
    await eventually(async () => (await welcomes(user.id)).length === 1);
    const [event] = await query<{ id: string; occurred_at: Date; published_at: Date }>(
      db, `SELECT id, occurred_at, published_at FROM users.outbox WHERE payload->>'userId' = $1`, [user.id]);
    const completions: string[] = [];
    api.app.get(QueueFactory).get(inboxQueueName('notifications')).on('completed', (job: { id: string | number }) => completions.push(String(job.id)));

    const result = await cli('events:replay', '--module', 'users', '--since', event.occurred_at.toISOString());
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`1 event(s) of module users occurred at or after ${event.occurred_at.toISOString()} queued for replay:`);
    expect(result.stdout).toMatch(/users\.user-registered\.v1\s+1\n/);

    await eventually(async () => completions.includes(event.id));
    expect(await welcomes(user.id)).toHaveLength(1);
    const [again] = await query<{ published_at: Date }>(db, 'SELECT published_at FROM users.outbox WHERE id = $1', [event.id]);
    expect(again.published_at.getTime()).toBeGreaterThan(event.published_at.getTime());

    const none = await cli('events:replay', '--module', 'users', '--since', '2001-01-01', '--until', '2001-01-02', '--type', 'users.user-registered.v1');
    expect(none.code).toBe(0);
    expect(none.stdout).toContain('no published users.user-registered.v1 events of module users occurred at or after 2001-01-01T00:00:00.000Z and before 2001-01-02T00:00:00.000Z: nothing queued for replay');
  });

  it('events:dead-letters list, show, replay (delivered once) and discard', async () => {
    /** A welcome event the notifications module gave up on (as its consumer records it). */
    async function deadWelcome(name: string) {
      const envelope = {
        id: randomUUID(), type: 'users.user-registered.v1', producer: 'users', occurredAt: new Date().toISOString(),
        payload: { userId: randomUUID(), email: uniqueEmail('dead'), name, registeredAt: new Date().toISOString() }, metadata: {},
      };
      await query(db, `INSERT INTO notifications.dead_letters (event_id, event_type, envelope, error, attempts) VALUES ($1, $2, $3, $4, 8)`,
        [envelope.id, envelope.type, JSON.stringify(envelope), `Error: template store unreachable (${name})\n    at stack line`]);
      return envelope;
    }
    const replayed = await deadWelcome('Replayed');
    const discarded = await deadWelcome('Discarded');

    const list = await cli('events:dead-letters', 'list');
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/notifications\s+users\.user-registered\.v1\s+2\s+\S+Z\s+Error: template store unreachable/);
    expect(list.stdout).toContain(replayed.id);
    expect(list.stdout).toContain(discarded.id);
    expect(list.stdout).not.toContain('at stack line');

    const show = await cli('events:dead-letters', 'show', replayed.id);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain(`dead letter ${replayed.id} in module notifications`);
    expect(show.stdout).toContain('at stack line');
    expect(show.stdout).toContain(`"userId": "${replayed.payload.userId}"`);

    const replay = await cli('events:dead-letters', 'replay', replayed.id);
    expect(replay.stdout).toContain(`replayed ${replayed.id} (users.user-registered.v1) in module notifications`);
    expect(replay.code).toBe(0);
    await eventually(async () => (await welcomes(replayed.payload.userId)).length === 1);
    expect(await query(db, 'SELECT 1 FROM notifications.dead_letters WHERE event_id = $1', [replayed.id])).toHaveLength(0);

    const discard = await cli('events:dead-letters', 'discard', '--all', '--module', 'notifications', '--type', 'users.user-registered.v1');
    expect(discard.code).toBe(0);
    expect(discard.stdout).toContain('1 dead letter(s) discarded (module notifications, type users.user-registered.v1)');
    expect((await cli('events:dead-letters', 'list')).stdout).toBe('no dead letters\n');

    const missing = await cli('events:dead-letters', 'replay', discarded.id);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`no dead letter with event id ${discarded.id} in any module (${MODULES})`);
    await eventsSettled(api.app, db);
    expect(await welcomes(replayed.payload.userId)).toHaveLength(1);
    expect(await welcomes(discarded.payload.userId)).toHaveLength(0);
  });
});
