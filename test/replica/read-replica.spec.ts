import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import pino from 'pino';
import request from 'supertest';
import { bootstrapDatabases } from '@app/platform';
import { enabledDatabases } from '../../apps/api/src/api.app';
import { signUpAndLogin, testTokens } from '../support/auth-helpers';
import { freePort, ThrowawayPostgres, ThrowawayReplica } from '../support/processes';
import { eventually, startApi, testConfig, type RunningApi } from '../support/test-env';

/**
 * Lag-tolerant reads on a real streaming replica (README, "Running with a read replica";
 * docs/architecture.md, "Read replicas"): a primary and a `pg_basebackup -R` replica of the
 * test's own, the API pointed at both. A lag is made on purpose with pg_wal_replay_pause(),
 * and the replica is stopped mid-run.
 */
jest.setTimeout(120_000);

const MAX_LAG_MS = 5000;
const MODULES = ['users', 'orders', 'notifications'];

describe('Read_Replica_Serves_Lag_Tolerant_Reads', () => {
  let primary: ThrowawayPostgres;
  let replica: ThrowawayReplica;
  let api: RunningApi;
  let admin: string;
  let customer: { userId: string; token: string };
  const mint = (role: 'customer' | 'admin', userId = randomUUID()) => ({ userId, token: testTokens(api.config).sign({ userId, role, sessionId: randomUUID() }).token });
  const as = (token: string) => ({ Authorization: `Bearer ${token}` });
  const productIds = async (token: string) => {
    const response = await request(api.url).get('/v1/products?limit=100').set(as(token)).expect(200);
    return (response.body.items as { id: string }[]).map((p) => p.id);
  };

  /** Current value of one sample of /metrics (0 when absent). */
  async function metric(name: string, labels: Record<string, string>): Promise<number> {
    const text = (await request(api.internalUrl).get('/metrics').expect(200)).text;
    const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
  }
  const reads = (module: string, target: string, reason: string) => metric('db_lag_tolerant_reads_total', { module, target, reason });

  async function onReplica<T>(sql: string): Promise<T[]> {
    const client = new Client({ connectionString: replica.adminUrl(), connectionTimeoutMillis: 5000 });
    await client.connect();
    try {
      return (await client.query(sql)).rows as T[];
    } finally {
      await client.end();
    }
  }

  beforeAll(async () => {
    primary = new ThrowawayPostgres(await freePort());
    await primary.start();
    replica = new ThrowawayReplica(primary, await freePort());
    await replica.start();
    // No user or password in the replica URLs: each module logs in with its own role,
    // which the replica has because roles replicate with everything else.
    const env: Record<string, string> = {
      ...Object.fromEntries(MODULES.map((m) => [`${m.toUpperCase()}_DATABASE_REPLICA_URL`, `postgres://127.0.0.1:${replica.port}/postgres`])),
      DB_REPLICA_MAX_LAG_MS: String(MAX_LAG_MS),
      DB_REPLICA_POLL_INTERVAL_MS: '200',
      RATE_LIMIT_PER_MINUTE: '100000',
      // Tokens are minted for sessions never stored: a revocation check timing out in Redis
      // on a busy machine would fall back to Postgres and answer 401.
      REDIS_REQUEST_TIMEOUT_MS: '2000',
    };
    const config = testConfig(primary.adminUrl(), { env });
    await bootstrapDatabases(config, enabledDatabases(config), pino({ level: 'silent' }));
    api = await startApi(primary.adminUrl(), { env });
    admin = mint('admin').token;
    customer = mint('customer');
  }, 120_000);

  afterAll(async () => {
    await api?.close();
    await replica?.remove();
    await primary?.stop();
  });

  it('each module role logs in on the replica, and list reads go there once it is caught up', async () => {
    for (const module of MODULES) {
      const client = new Client({ connectionString: api.config.databases[module].replicaUrl, connectionTimeoutMillis: 5000 });
      await client.connect();
      const [row] = (await client.query<{ standby: boolean; user: string }>('SELECT pg_is_in_recovery() AS standby, current_user AS user')).rows;
      await client.end();
      expect(row).toEqual({ standby: true, user: api.config.databases[module].role });
    }
    await eventually(async () => (await metric('db_replica_usable', { module: 'orders' })) === 1 && (await metric('db_replica_usable', { module: 'notifications' })) === 1, 30_000);
    const before = { orders: await reads('orders', 'replica', 'replica'), notifications: await reads('notifications', 'replica', 'replica') };
    await productIds(customer.token);
    await request(api.url).get('/v1/orders').set(as(customer.token)).expect(200);
    await request(api.url).get('/v1/notifications').set(as(customer.token)).expect(200);
    expect(await reads('orders', 'replica', 'replica')).toBe(before.orders + 2);
    expect(await reads('notifications', 'replica', 'replica')).toBe(before.notifications + 1);
  });

  it('with replay paused, another client misses a new product while its creator sees it; past DB_REPLICA_MAX_LAG_MS reads go to the primary', async () => {
    const owner = await signUpAndLogin(api.url, 'Old Name');
    await eventually(async () => (await metric('db_replica_usable', { module: 'users' })) === 1, 30_000);
    // The stranger's read fills the profile cache before the pause.
    await request(api.url).get(`/v1/users/${owner.id}`).set(as(customer.token)).expect(200, { id: owner.id, name: 'Old Name' });

    await onReplica('SELECT pg_wal_replay_pause()');
    await eventually(async () => (await onReplica<{ state: string }>('SELECT pg_get_wal_replay_pause_state() AS state'))[0].state === 'paused');
    const created = await request(api.url).post('/v1/products').set(as(admin)).send({ sku: `R-${randomUUID().slice(0, 8)}`, name: 'Replica probe', priceCents: 500, currency: 'EUR', stock: 3 }).expect(201);
    const productId = created.body.id as string;

    // Served by the replica, which has not replayed the insert: the primary would list it.
    expect(await productIds(customer.token)).not.toContain(productId);
    // Read-your-writes: the creator's next read goes to the primary.
    expect(await productIds(admin)).toContain(productId);
    expect(await reads('orders', 'primary', 'read_your_writes')).toBeGreaterThan(0);
    // The same across modules: the customer's own order is in the customer's list at once.
    const order = await request(api.url).post('/v1/orders').set(as(customer.token)).send({ items: [{ productId, quantity: 1 }] }).expect(201);
    const orders = await request(api.url).get('/v1/orders').set(as(customer.token)).expect(200);
    expect((orders.body.items as { id: string }[]).map((o) => o.id)).toContain(order.body.id);
    // A renamed profile is loaded from the primary on the next miss, whoever reads it: the
    // owner's write decides, so the stale replica never refills the cache with the old name.
    await request(api.url).patch('/v1/users/me').set(as(owner.accessToken)).send({ name: 'New Name' }).expect(200);
    await request(api.url).get(`/v1/users/${owner.id}`).set(as(admin)).expect(200, { id: owner.id, name: 'New Name' });

    // Once the replica is more than DB_REPLICA_MAX_LAG_MS behind, nobody reads it.
    const other = mint('customer');
    await eventually(async () => (await productIds(other.token)).includes(productId), 60_000, 200);
    expect(await metric('db_replica_usable', { module: 'orders' })).toBe(0);
    expect(await metric('db_replica_lag_seconds', { module: 'orders' })).toBeGreaterThan(MAX_LAG_MS / 1000);
    expect(await reads('orders', 'primary', 'replica_lagging')).toBeGreaterThan(0);

    // Replay resumes: the replica catches up and serves again.
    await onReplica('SELECT pg_wal_replay_resume()');
    await eventually(async () => (await metric('db_replica_usable', { module: 'orders' })) === 1, 30_000);
    const before = await reads('orders', 'replica', 'replica');
    expect(await productIds(mint('customer').token)).toContain(productId);
    expect(await reads('orders', 'replica', 'replica')).toBe(before + 1);
  });

  it('the replica stopped mid-run: lists keep answering 200 from the primary, nothing 5xx', async () => {
    await eventually(async () => (await metric('db_replica_usable', { module: 'orders' })) === 1, 30_000);
    const reader = mint('customer');
    const statuses: number[] = [];
    let stopped = false;
    // Both pollers have seen the replica down: reads now go to the primary directly.
    const bothBypassed = async () => (await reads('orders', 'primary', 'replica_down')) > 0 && (await reads('notifications', 'primary', 'replica_down')) > 0;
    const load = (async () => {
      // Keeps reading through the stop and a while after it (bounded by rounds, not by time).
      for (let round = 0; round < 400 && !(stopped && round > 40 && (await bothBypassed())); round++) {
        const responses = await Promise.all([
          request(api.url).get('/v1/products').set(as(reader.token)),
          request(api.url).get('/v1/orders').set(as(reader.token)),
          request(api.url).get('/v1/notifications').set(as(reader.token)),
        ]);
        statuses.push(...responses.map((r) => r.status));
      }
    })();
    await eventually(async () => statuses.length >= 30, 30_000);
    replica.stop();
    stopped = true;
    await load;
    expect(statuses.length).toBeGreaterThan(120);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(await metric('db_replica_usable', { module: 'orders' })).toBe(0);
    // The reads in flight when it stopped were answered by the primary (replica_error), the
    // later ones went there directly once the poll had seen it down (replica_down).
    expect(await reads('orders', 'primary', 'replica_down')).toBeGreaterThan(0);
    expect(await reads('notifications', 'primary', 'replica_down')).toBeGreaterThan(0);
  });
});
