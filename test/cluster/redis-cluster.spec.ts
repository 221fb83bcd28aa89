import { randomUUID } from 'node:crypto';
import { Cluster } from 'ioredis';
import request from 'supertest';
import { clusterKeySlot, QueueFactory, REDIS_CLIENT } from '@app/platform';
import { signUpAndLogin, type SignedUpUser, testTokens } from '../support/auth-helpers';
import { ThrowawayRedisCluster } from '../support/redis-cluster';
import { createTestDatabase, eventually, query, startApi, uniqueEmail, type RunningApi } from '../support/test-env';

/**
 * The API on a real Redis Cluster of the test's own (3 masters + 3 replicas, node timeout
 * 2 s; README "Running on a Redis Cluster"): two instances share it for queues, caches,
 * rate limits, login throttle and revocations; then the master holding the queues is
 * killed while orders are placed, its replica takes over, and no event is lost.
 */
describe('Redis Cluster: journey, limits, logout across instances, master failover', () => {
  let cluster: ThrowawayRedisCluster;
  let db: string;
  let a: RunningApi;
  let b: RunningApi;
  let admin: string;
  /** The master the failover test killed: the next test brings it back as a replica. */
  let killed: number | undefined;
  const prefix = `cl${randomUUID().slice(0, 8)}`;
  const as = (token: string) => ({ Authorization: `Bearer ${token}` });

  beforeAll(async () => {
    cluster = new ThrowawayRedisCluster(3, 2000);
    await cluster.start();
    db = await createTestDatabase();
    const env = {
      REDIS_CLUSTER_NODES: cluster.nodes,
      // A job the relay hands to Bull must be on a replica before its outbox row is marked.
      REDIS_WAIT_REPLICAS: '1',
      RATE_LIMIT_PER_MINUTE: '100000',
      LOGIN_MAX_FAILURES_PER_ACCOUNT: '3',
      LOGIN_MAX_FAILURES_PER_IP: '1000',
    };
    a = await startApi(db, { redisPrefix: prefix, env });
    b = await startApi(db, { redisPrefix: prefix, env });
    admin = testTokens(a.config).sign({ userId: randomUUID(), role: 'admin', sessionId: randomUUID() }).token;
  }, 60_000);
  afterAll(async () => {
    await Promise.allSettled([a?.close(), b?.close()]);
    await cluster?.stop();
  }, 30_000);

  async function product(stock: number): Promise<string> {
    const sku = `SKU-${randomUUID().slice(0, 8)}`;
    const created = await request(a.url).post('/v1/products').set(as(admin)).send({ sku, name: `Product ${sku}`, priceCents: 1000, currency: 'EUR', stock }).expect(201);
    return created.body.id as string;
  }

  /** Notifications per source event, for the events `producer` committed of `type`. */
  async function notificationsPerEvent(producer: 'users' | 'orders', type: string): Promise<Map<string, number>> {
    const rows = await query<{ id: string; n: string }>(
      db,
      `SELECT o.id, (SELECT count(*) FROM notifications.notifications n WHERE n.source_event_id = o.id) AS n FROM "${producer}".outbox o WHERE o.event_type = $1`,
      [type],
    );
    return new Map(rows.map((r) => [r.id, Number(r.n)]));
  }

  it('runs on the cluster: the shared client is a Cluster and Bull keeps each queue in one slot', async () => {
    expect(a.app.get(REDIS_CLIENT)).toBeInstanceOf(Cluster);
    const bullPrefix = a.app.get(QueueFactory).bullPrefix();
    expect(bullPrefix).toBe(`{${prefix}:bull}`);
    // The slot the product computes (for WAIT) is the one the cluster uses.
    expect(clusterKeySlot(`${bullPrefix}:x:wait`)).toBe(await cluster.keySlot(`${bullPrefix}:x:wait`));
  });

  it('sign-up → order → notifications: each arrives exactly once', async () => {
    const user = await signUpAndLogin(b.url, 'Cluster Journey');
    const productId = await product(10);
    const placed = await request(a.url).post('/v1/orders').set(as(user.accessToken)).send({ items: [{ productId, quantity: 2 }] }).expect(201);

    await eventually(async () => {
      const kinds = (await query<{ kind: string }>(db, 'SELECT kind FROM notifications.notifications WHERE user_id = $1 ORDER BY kind', [user.id])).map((r) => r.kind);
      return kinds.length === 2 && kinds;
    }, 20_000, 100);
    const kinds = (await query<{ kind: string }>(db, 'SELECT kind FROM notifications.notifications WHERE user_id = $1 ORDER BY kind', [user.id])).map((r) => r.kind);
    expect(kinds).toEqual(['order-placed', 'welcome']);
    const orderEvents = await query<{ id: string }>(db, `SELECT id FROM orders.outbox WHERE payload->>'orderId' = $1`, [placed.body.id]);
    expect(orderEvents).toHaveLength(1);
  }, 30_000);

  it('holds the global rate limit across instances (the N+1th request is 429)', async () => {
    const env = { REDIS_CLUSTER_NODES: cluster.nodes, RATE_LIMIT_PER_MINUTE: '4' };
    const limitedPrefix = `${prefix}-rl`;
    const c = await startApi(db, { redisPrefix: limitedPrefix, env });
    const d = await startApi(db, { redisPrefix: limitedPrefix, env });
    try {
      const hit = (api: RunningApi) => request(api.url).post('/v1/auth/refresh').send({ refreshToken: 'not-a-token' });
      const statuses = [(await hit(c)).status, (await hit(d)).status, (await hit(c)).status, (await hit(d)).status];
      expect(statuses).toEqual([401, 401, 401, 401]);
      const limited = await hit(c);
      expect(limited.status).toBe(429);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      expect((await hit(d)).status).toBe(429);
    } finally {
      await Promise.allSettled([c.close(), d.close()]);
    }
  }, 30_000);

  it('blocks sign-in after N failures although the account and address counters sit in different slots', async () => {
    const user = await signUpAndLogin(a.url, 'Cluster Throttle');
    const login = (api: RunningApi, password: string) => request(api.url).post('/v1/auth/login').send({ email: user.email, password });
    for (const api of [a, b, a]) await login(api, 'wrong password!').expect(401);
    const blocked = await login(b, user.password);
    expect(blocked.status).toBe(429);
    expect(blocked.body.code).toBe('AUTH.TOO_MANY_FAILED_LOGINS');
    // Another account from the same address is not blocked: the address keeps only its own count.
    const other = await signUpAndLogin(b.url, 'Cluster Other');
    await login(a, 'x'.repeat(12)).expect(429);
    await request(a.url).post('/v1/auth/login').send({ email: other.email, password: other.password }).expect(200);
  }, 30_000);

  it('logout on one instance is seen by the other at once', async () => {
    const user = await signUpAndLogin(a.url, 'Cluster Logout');
    await request(b.url).get('/v1/users/me').set(as(user.accessToken)).expect(200);
    await request(a.url).post('/v1/auth/logout').set(as(user.accessToken)).expect(204);
    await request(b.url).get('/v1/users/me').set(as(user.accessToken)).expect(401);
    await request(a.url).get('/v1/users/me').set(as(user.accessToken)).expect(401);
  }, 30_000);

  it('loses nothing when the master holding the queues is killed while orders flow', async () => {
    const buyers: SignedUpUser[] = [];
    for (let i = 0; i < 3; i++) buyers.push(await signUpAndLogin(i % 2 ? a.url : b.url, `Failover ${i}`));
    const productId = await product(1000);
    const queueMaster = await cluster.masterOfSlot(clusterKeySlot(`${a.app.get(QueueFactory).bullPrefix()}:wait`));

    const orders: string[] = [];
    const failures: number[] = [];
    let stop = false;
    // Orders from both instances, one after another per buyer, until told to stop.
    const flows = buyers.map(async (buyer, i) => {
      const api = i % 2 ? a : b;
      while (!stop) {
        const response = await request(api.url).post('/v1/orders').set(as(buyer.accessToken)).send({ items: [{ productId, quantity: 1 }] });
        if (response.status === 201) orders.push(response.body.id as string);
        else failures.push(response.status);
        await new Promise((r) => setTimeout(r, 50));
      }
    });

    await eventually(async () => orders.length >= 6, 10_000, 20);
    const beforeKill = orders.length;
    await cluster.kill(queueMaster);
    killed = queueMaster;
    const promoted = await cluster.awaitFailover(queueMaster);
    expect(promoted).not.toBe(queueMaster);
    // Keep placing orders on the new topology for a moment.
    const afterFailover = orders.length;
    await eventually(async () => orders.length >= afterFailover + 6, 20_000, 20);
    stop = true;
    await Promise.all(flows);

    // Placing an order needs Postgres only: none was refused while Redis failed over.
    expect(failures).toEqual([]);
    expect(orders.length).toBeGreaterThan(beforeKill);

    const placedEvents = async () => {
      const ids = await query<{ id: string }>(db, `SELECT id FROM orders.outbox WHERE event_type = 'orders.order-placed.v1' AND payload->>'orderId' = ANY($1)`, [orders]);
      return ids.map((r) => r.id);
    };
    const events = await placedEvents();
    expect(events).toHaveLength(orders.length);
    // Every order ends with exactly one notification: events waited in the outbox (or were
    // re-handed to Bull) while the queues' master was gone; none was lost or doubled.
    // A job that was active when the master died keeps its lock on the promoted replica
    // until the lock expires (Bull's lockDuration, 30 s), and is put back to wait at the
    // next stalled-job check (stalledInterval, 30 s): up to a minute before it runs again.
    await eventually(async () => {
      const perEvent = await notificationsPerEvent('orders', 'orders.order-placed.v1');
      const missing = events.filter((id) => perEvent.get(id) !== 1);
      if (missing.length === 0) return true;
      throw new Error(`${missing.length} of ${events.length} events without exactly one notification: ${missing.map((id) => perEvent.get(id) ?? 0).join(',')}`);
    }, 75_000, 250);
    const perEvent = await notificationsPerEvent('orders', 'orders.order-placed.v1');
    expect(events.map((id) => perEvent.get(id))).toEqual(events.map(() => 1));
    // A hand-over whose WAIT failed over with the master is rolled back and repeated (Bull
    // ignores the known job ids): the outbox drains once the relay's retry comes round.
    await eventually(async () => (await query(db, 'SELECT 1 FROM orders.outbox WHERE published_at IS NULL')).length === 0, 20_000, 250);

    // And the cluster still serves the rest: a fresh sign-up gets its welcome.
    const late = await request(b.url).post('/v1/users').send({ email: uniqueEmail('after-failover'), password: 'correct horse battery', name: 'Late' }).expect(201);
    await eventually(async () => (await query(db, `SELECT 1 FROM notifications.notifications WHERE user_id = $1 AND kind = 'welcome'`, [late.body.id])).length === 1, 20_000, 100);
  }, 150_000);

  it('keeps events in the outbox until a replica holds their jobs, so a master lost before replicating loses none', async () => {
    // The killed node rejoins as the replica of the master now holding the queues.
    const queueSlot = clusterKeySlot(`${a.app.get(QueueFactory).bullPrefix()}:wait`);
    await cluster.restart(killed!);
    const queueMaster = await cluster.masterOfSlot(queueSlot);
    await cluster.awaitReplicas(queueMaster, 1);
    const topology = await cluster.topology();
    const replica = topology.find((n) => n.masterId === topology.find((m) => m.port === queueMaster)!.id)!.port;

    // Producers only: nothing consumes the notifications queue, so jobs wait in Redis.
    await Promise.allSettled([a.close(), b.close()]);
    const env = { REDIS_CLUSTER_NODES: cluster.nodes, REDIS_WAIT_REPLICAS: '1', RATE_LIMIT_PER_MINUTE: '100000' };
    const producer = await startApi(db, { redisPrefix: prefix, env: { ...env, MODULES_ENABLED: 'users,orders' } });
    let consumer: RunningApi | undefined;
    try {
      const buyer = await signUpAndLogin(producer.url, 'Unreplicated');
      const sku = `SKU-${randomUUID().slice(0, 8)}`;
      const productId = (await request(producer.url).post('/v1/products').set(as(admin)).send({ sku, name: sku, priceCents: 500, currency: 'EUR', stock: 10 }).expect(201)).body.id as string;
      // The welcome's job reached the replica: the relay marked the row.
      await eventually(async () => (await query(db, 'SELECT 1 FROM users.outbox WHERE published_at IS NULL')).length === 0, 15_000, 100);

      // The replica stalls: the master still takes the jobs but cannot pass them on.
      cluster.pause(replica);
      const orders: string[] = [];
      for (let i = 0; i < 3; i++) {
        orders.push((await request(producer.url).post('/v1/orders').set(as(buyer.accessToken)).send({ items: [{ productId, quantity: 1 }] }).expect(201)).body.id as string);
      }
      // Past the relay's WAIT (2.5 s) and its retries: the rows are still not marked
      // (without the WAIT they would be within a poll interval, and lost below).
      await new Promise((r) => setTimeout(r, 4000));
      const unpublished = async () =>
        (await query<{ id: string }>(db, `SELECT id FROM orders.outbox WHERE published_at IS NULL AND payload->>'orderId' = ANY($1)`, [orders])).map((r) => r.id);
      expect(await unpublished()).toHaveLength(3);

      // The master dies with the only copy of those jobs; the stalled replica takes over.
      await cluster.kill(queueMaster);
      cluster.resume(replica);
      expect(await cluster.awaitFailover(queueMaster)).toBe(replica);
      await eventually(async () => (await unpublished()).length === 0, 20_000, 250);

      consumer = await startApi(db, { redisPrefix: prefix, env: { ...env, MODULES_ENABLED: 'notifications' } });
      const events = (await query<{ id: string }>(db, `SELECT id FROM orders.outbox WHERE payload->>'orderId' = ANY($1)`, [orders])).map((r) => r.id);
      expect(events).toHaveLength(3);
      await eventually(async () => {
        const perEvent = await notificationsPerEvent('orders', 'orders.order-placed.v1');
        return events.every((id) => perEvent.get(id) === 1);
      }, 30_000, 250);
      await eventually(async () => (await query(db, `SELECT 1 FROM notifications.notifications WHERE user_id = $1 AND kind = 'welcome'`, [buyer.id])).length === 1, 20_000, 100);
    } finally {
      cluster.resume(replica);
      await Promise.allSettled([producer.close(), consumer?.close()]);
    }
  }, 90_000);
});
