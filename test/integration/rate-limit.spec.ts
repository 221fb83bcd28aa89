import request from 'supertest';
import { createTestDatabase, startApi, type RunningApi } from '../support/test-env';

/** The global limit: 429 + Retry-After, counters in Redis shared by every instance. */
describe('Global rate limit (@nestjs/throttler, Redis storage)', () => {
  let a: RunningApi;
  let b: RunningApi;

  beforeAll(async () => {
    const db = await createTestDatabase();
    a = await startApi(db, { env: { RATE_LIMIT_PER_MINUTE: '6' } });
    b = await startApi(db, { redisPrefix: a.config.env.REDIS_KEY_PREFIX, env: { RATE_LIMIT_PER_MINUTE: '6' } });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  const hit = (api: RunningApi) => request(api.url).post('/v1/auth/refresh').send({ refreshToken: 'not-a-token' });

  it('counts one client across instances and answers 429 problem+json with Retry-After once over the limit', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await hit(a)).status, (await hit(b)).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401, 401]);
    const limited = await hit(a);
    expect(limited.status).toBe(429);
    expect(limited.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(limited.body).toMatchObject({ status: 429, title: 'Too Many Requests' });
    expect((await hit(b)).status).toBe(429);
    // Probes are never throttled.
    await request(a.url).get('/health/live').expect(200);
  });

  it('sends the standard rate-limit headers', async () => {
    const response = await request(a.url).get('/health/ready');
    expect(response.status).toBe(200);
    const other = await startApi(a.config.env.DATABASE_URL, { env: { RATE_LIMIT_PER_MINUTE: '100' } });
    try {
      const counted = await request(other.url).post('/v1/auth/refresh').send({ refreshToken: 'x' });
      expect(counted.headers['x-ratelimit-limit']).toBe('100');
      expect(counted.headers['x-ratelimit-remaining']).toBe('99');
    } finally {
      await other.close();
    }
  });
});
