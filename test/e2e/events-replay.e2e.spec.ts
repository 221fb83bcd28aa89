import Redis from 'ioredis';
import request from 'supertest';
import { keyPairEnv } from '../support/auth-helpers';
import { runCli } from '../support/cli';
import { AppProcess, freePort, ThrowawayRedis } from '../support/processes';
import { createTestDatabase, eventually, query, runId, uniqueEmail } from '../support/test-env';
import { quietTwice } from '../support/settled';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A deadline that never keeps the test process alive by itself. */
const deadline = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());

interface Tally {
  user_id: string;
  welcomes: number;
  placed_notifications: number;
  orders: number;
}

/**
 * Redis loses its data while orders flow and the notifications service is down (a deploy):
 * the events the relays had already published were only in Redis. `events:replay` from the
 * outboxes brings every one back, and the inboxes make sure nothing is notified twice.
 * Real processes: the API (users, orders), the notifications service, the CLI, and a
 * redis-server of the test's own, the only one a test may FLUSHALL.
 */
describe('events:replay after Redis lost its data (real processes)', () => {
  const prefix = `${runId()}:replay-e2e`;
  let db: string;
  let redis: ThrowawayRedis;
  let admin: Redis;
  let api: AppProcess;
  const services: AppProcess[] = [];
  let common: Record<string, string>;
  let servicePort: number;
  let apiUrl: string;
  const keys = keyPairEnv();

  async function startService(): Promise<AppProcess> {
    const service = new AppProcess({ ...common, PORT: String(servicePort) }, 'notifications-service');
    services.push(service);
    service.start();
    await service.waitForLog(/"msg":"notifications-service listening"/);
    return service;
  }

  async function stopService(service: AppProcess): Promise<void> {
    service.signal('SIGTERM');
    await service.exit;
  }

  beforeAll(async () => {
    redis = new ThrowawayRedis(await freePort());
    await redis.start();
    admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    db = await createTestDatabase();
    const apiPort = await freePort();
    servicePort = await freePort();
    apiUrl = `http://127.0.0.1:${apiPort}`;
    common = {
      DATABASE_URL: db,
      DB_ROLE_PREFIX: runId(),
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: prefix,
      // Public key only: the service verifies, only the API (users) signs.
      ...keys.verifier,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      OUTBOX_POLL_INTERVAL_MS: '250',
      RATE_LIMIT_PER_MINUTE: '1000000',
    };
    await startService();
    api = new AppProcess({ ...common, PORT: String(apiPort), MODULES_ENABLED: 'users,orders', ...keys.signer });
    api.start();
    await api.waitForLog(/"msg":"api listening"/);
  }, 60_000);

  afterAll(async () => {
    api?.signal('SIGTERM');
    for (const service of services) service.signal('SIGTERM');
    const exits = Promise.all([api?.exit, ...services.map((s) => s.exit)]);
    // Bounded: a process that hangs on shutdown is killed, never left behind.
    await Promise.race([exits, deadline(15_000)]);
    api?.kill();
    for (const service of services) service.kill();
    admin?.disconnect();
    await redis?.stop();
  }, 30_000);

  /** Places orders, one new customer each, until stopped; returns the ids of the orders placed. */
  function placeOrdersContinuously(productId: string, workers = 2): { stop(): Promise<string[]>; count(): number } {
    const placed: string[] = [];
    let running = true;
    let failure: unknown;
    const loops = Array.from({ length: workers }, async () => {
      while (running) {
        const customer = { email: uniqueEmail('replay-e2e'), password: 'correct horse battery', name: 'Replay Customer' };
        await request(apiUrl).post('/v1/users').send(customer).expect(201);
        const token = (await request(apiUrl).post('/v1/auth/login').send({ email: customer.email, password: customer.password }).expect(200)).body.accessToken;
        const order = await request(apiUrl).post('/v1/orders').set('Authorization', `Bearer ${token}`)
          .send({ items: [{ productId, quantity: 1 }] }).expect(201);
        placed.push(order.body.id as string);
      }
    }).map((loop) => loop.catch((error: unknown) => {
      failure ??= error;
      running = false;
    }));
    return {
      // Polled by eventually(): a failed request is the error its timeout reports.
      count: () => {
        if (failure) throw failure;
        return placed.length;
      },
      stop: async () => {
        running = false;
        await Promise.all(loops);
        if (failure) throw failure;
        return placed;
      },
    };
  }

  /** Per account: welcome notifications, order-placed notifications and orders. */
  const tally = () => query<Tally>(db, `
    SELECT u.id AS user_id,
      (SELECT count(*)::int FROM notifications.notifications n WHERE n.user_id = u.id AND n.kind = 'welcome') AS welcomes,
      (SELECT count(*)::int FROM notifications.notifications n WHERE n.user_id = u.id AND n.kind = 'order-placed') AS placed_notifications,
      (SELECT count(*)::int FROM orders.orders o WHERE o.user_id = u.id) AS orders
    FROM users.users u ORDER BY u.created_at`);
  const wrong = (rows: Tally[]) => rows.filter((r) => r.welcomes !== 1 || r.placed_notifications !== r.orders);
  /** notifications.inbox has nothing waiting, active or delayed, twice in a row: the service has done all it will. */
  async function inboxDrained(): Promise<void> {
    const key = (state: string) => `${prefix}:bull:notifications.inbox:${state}`;
    await quietTwice(async () => {
      const [waiting, active, delayed] = await Promise.all([admin.llen(key('wait')), admin.llen(key('active')), admin.zcard(key('delayed'))]);
      return waiting + active + delayed === 0;
    });
  }

  it('every order ends with exactly one order-placed notification and every account with one welcome', async () => {
    const startedAt = new Date();
    const boss = { email: uniqueEmail('replay-boss'), password: 'correct horse battery', name: 'Boss' };
    await request(apiUrl).post('/v1/users').send(boss).expect(201);
    await query(db, `UPDATE users.users SET role = 'admin' WHERE lower(email) = lower($1)`, [boss.email]);
    const bossToken = (await request(apiUrl).post('/v1/auth/login').send({ email: boss.email, password: boss.password }).expect(200)).body.accessToken;
    const product = (await request(apiUrl).post('/v1/products').set('Authorization', `Bearer ${bossToken}`)
      .send({ sku: 'REPLAY-1', name: 'Replayed mug', priceCents: 900, currency: 'EUR', stock: 1_000_000 }).expect(201)).body as { id: string };

    const flow = placeOrdersContinuously(product.id);
    await eventually(async () => flow.count() >= 5, 20_000, 100);

    // The consumer goes away (a deploy); the relays keep publishing into Redis.
    await stopService(services[0]);
    const placedBeforeOutage = flow.count();
    const waiting = `${prefix}:bull:notifications.inbox:wait`;
    await eventually(async () => flow.count() >= placedBeforeOutage + 5 && (await admin.llen(waiting)) >= 10, 20_000, 100);

    // Redis loses everything: the waiting jobs were the only copy outside the outboxes.
    const lost = await admin.llen(waiting);
    await admin.flushall();
    await sleep(500);
    await startService();
    await eventually(async () => flow.count() >= placedBeforeOutage + 15, 20_000, 100);
    const placed = await flow.stop();

    // Everything published after the flush arrives; what Redis lost does not.
    await eventually(async () => (await query(db, 'SELECT 1 FROM orders.outbox WHERE published_at IS NULL UNION ALL SELECT 1 FROM users.outbox WHERE published_at IS NULL')).length === 0, 10_000, 200);
    await inboxDrained();
    const beforeReplay = wrong(await tally());
    expect(beforeReplay.length).toBeGreaterThan(0);
    expect(beforeReplay.every((r) => r.welcomes <= 1 && r.placed_notifications <= r.orders)).toBe(true);
    expect(lost).toBeGreaterThanOrEqual(10);

    const env = { DATABASE_URL: db, DB_ROLE_PREFIX: runId(), REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix, LOG_LEVEL: 'silent' };
    const since = new Date(startedAt.getTime() - 1000).toISOString();
    const orders = await runCli(['events:replay', '--module', 'orders', '--since', since], env);
    expect(orders.stderr).toBe('');
    expect(orders.code).toBe(0);
    expect(orders.stdout).toMatch(new RegExp(`orders\\.order-placed\\.v1\\s+${placed.length}\\n`));
    const users = await runCli(['events:replay', '--module', 'users', '--since', since], env);
    expect(users.code).toBe(0);
    expect(users.stdout).toMatch(new RegExp(`users\\.user-registered\\.v1\\s+${placed.length + 1}\\n`));

    await eventually(async () => wrong(await tally()).length === 0, 30_000, 250);
    // Nothing arrives twice, however long we wait.
    await eventually(async () => (await query(db, 'SELECT 1 FROM orders.outbox WHERE published_at IS NULL UNION ALL SELECT 1 FROM users.outbox WHERE published_at IS NULL')).length === 0, 10_000, 200);
    // Every replayed event is in the consumer's inbox table, and its queue is idle.
    await eventually(async () => {
      const [{ missing }] = await query<{ missing: number }>(db, `
        SELECT count(*)::int AS missing FROM (
          SELECT id FROM orders.outbox WHERE event_type = 'orders.order-placed.v1'
          UNION ALL SELECT id FROM users.outbox WHERE event_type = 'users.user-registered.v1') e
        WHERE NOT EXISTS (SELECT 1 FROM notifications.inbox i WHERE i.event_id = e.id)`);
      return missing === 0;
    }, 20_000, 250);
    await inboxDrained();
    const final = await tally();
    expect(wrong(final)).toEqual([]);
    expect(final.filter((r) => r.orders === 1)).toHaveLength(placed.length);
    expect(final.every((r) => r.welcomes === 1 && r.placed_notifications === r.orders && r.orders <= 1)).toBe(true);
    const [{ total }] = await query<{ total: number }>(db, `SELECT count(*)::int AS total FROM notifications.notifications WHERE kind = 'order-placed'`);
    expect(total).toBe(placed.length);
  }, 150_000);
});
