import request from 'supertest';
import { createTestDatabase, eventually, query, startApi, uniqueEmail, type RunningApi } from '../support/test-env';
import { freePort, ThrowawayRedis } from '../support/processes';

/**
 * Redis is stopped under a running API (a redis-server this test owns; the machine's
 * shared Redis is never touched). Writes keep succeeding, their events wait in the
 * outbox, readiness reports Redis down, and everything flows once Redis is back.
 */
describe('Redis down: writes succeed, events wait in the outbox and flow when Redis returns', () => {
  let db: string;
  let redis: ThrowawayRedis;
  let api: RunningApi;

  beforeAll(async () => {
    db = await createTestDatabase();
    redis = new ThrowawayRedis(await freePort());
    await redis.start();
    api = await startApi(db, { redisUrl: redis.url });
  });
  afterAll(async () => {
    await api?.close();
    await redis?.stop();
  });

  it('keeps serving sign-ups while Redis is down and delivers the welcome after it returns', async () => {
    await redis.stop();

    const email = uniqueEmail('redis-down');
    const created = await request(api.url).post('/v1/users').send({ email, password: 'correct horse battery', name: 'Offline' }).expect(201);
    const userId: string = created.body.id;

    const waiting = await query<{ event_type: string }>(db, 'SELECT event_type FROM users.outbox WHERE published_at IS NULL');
    expect(waiting.map((r) => r.event_type)).toContain('users.user-registered.v1');

    const started = Date.now();
    const ready = await request(api.url).get('/health/ready');
    // Still ready (it takes writes), reported as degraded: a Redis blip must not pull
    // every replica out of the load balancer at once.
    expect(ready.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(ready.body.status).toBe('degraded');
    expect(ready.body.error.redis.status).toBe('down');
    expect(ready.body.details['postgres:users'].status).toBe('up');
    expect(await request(api.internalUrl).get('/metrics').then((r) => r.text)).toMatch(/^dependency_up\{dependency="redis"\} 0$/m);
    expect(await query(db, 'SELECT 1 FROM notifications.notifications WHERE user_id = $1', [userId])).toHaveLength(0);

    await redis.start();

    await eventually(async () => (await query(db, 'SELECT 1 FROM notifications.notifications WHERE user_id = $1', [userId])).length === 1, 25_000, 200);
    expect(await query(db, 'SELECT 1 FROM users.outbox WHERE published_at IS NULL')).toHaveLength(0);
    await eventually(async () => (await request(api.url).get('/health/ready')).body.status === 'ok', 10_000, 200);
    expect(await request(api.internalUrl).get('/metrics').then((r) => r.text)).toMatch(/^dependency_up\{dependency="redis"\} 1$/m);
  }, 60_000);
});
