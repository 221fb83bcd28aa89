import { spawnSync } from 'node:child_process';
import path from 'node:path';
import Redis from 'ioredis';
import request from 'supertest';
import { CacheAside } from '@app/platform';
import { createTestDatabase, eventually, query, runId, startApi, type RunningApi } from '../support/test-env';
import { freePort, ROOT, ThrowawayRedis } from '../support/processes';
import { signUpAndLogin, type SignedUpUser } from '../support/auth-helpers';


describe('Users: profile, public profile cache, erasure, roles (e2e)', () => {
  let db: string;
  let api: RunningApi;
  let second: RunningApi;
  let alice: SignedUpUser;
  let bob: SignedUpUser;
  let redis: Redis;

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startApi(db);
    // A second instance on the same database and Redis prefix: "any instance serves any request".
    second = await startApi(db, { redisPrefix: api.config.env.REDIS_KEY_PREFIX });
    redis = new Redis(api.config.env.REDIS_URL);
    alice = await signUpAndLogin(api.url, 'Alice');
    bob = await signUpAndLogin(api.url, 'Bob');
  });
  afterAll(async () => {
    redis?.disconnect();
    await second?.close();
    await api?.close();
  });

  const auth = (token: string) => ({ Authorization: `Bearer ${token}` });
  const cacheKey = (id: string) => `${api.config.env.REDIS_KEY_PREFIX}:users:profile:v1:${id}`;

  it('GET /v1/users/me returns the caller with role, never a hash', async () => {
    const response = await request(api.url).get('/v1/users/me').set(auth(alice.accessToken)).expect(200);
    expect(response.body).toEqual({ id: alice.id, email: alice.email, name: 'Alice', role: 'customer', createdAt: expect.any(String) });
  });

  it('PATCH /v1/users/me changes the name only; email, role, id or timestamps in the body are 400', async () => {
    const renamed = await request(api.url).patch('/v1/users/me').set(auth(alice.accessToken)).send({ name: 'Alice Liddell' }).expect(200);
    expect(renamed.body.name).toBe('Alice Liddell');
    for (const field of [{ email: 'x@example.com' }, { role: 'admin' }, { id: bob.id }, { createdAt: '2020-01-01T00:00:00Z' }]) {
      const response = await request(api.url).patch('/v1/users/me').set(auth(alice.accessToken)).send({ name: 'Hacker', ...field }).expect(400);
      expect(response.body.errors).toEqual([{ field: Object.keys(field)[0], message: 'is not allowed' }]);
    }
    const [row] = await query<{ role: string; name: string }>(db, 'SELECT role, name FROM users.users WHERE id = $1', [alice.id]);
    expect(row).toEqual({ role: 'customer', name: 'Alice Liddell' });
  });

  it('GET /v1/users/:id serves { id, name } from the cache when hot and counts hits and misses', async () => {
    await redis.del(cacheKey(bob.id));
    const cache = api.app.get(CacheAside);
    const before = { ...(cache.stats.counts.get('users:profile:v1') ?? { hits: 0, misses: 0 }) };
    const first = await request(api.url).get(`/v1/users/${bob.id}`).set(auth(alice.accessToken)).expect(200);
    expect(first.body).toEqual({ id: bob.id, name: 'Bob' });
    expect(first.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse((await redis.get(cacheKey(bob.id)))!)).toEqual({ id: bob.id, name: 'Bob' });
    expect(await redis.ttl(cacheKey(bob.id))).toBeGreaterThan(250);
    // Prove the second read comes from Redis: plant a value only the cache has.
    await redis.set(cacheKey(bob.id), JSON.stringify({ id: bob.id, name: 'From cache' }), 'EX', 60);
    const hot = await request(api.url).get(`/v1/users/${bob.id}`).set(auth(alice.accessToken)).expect(200);
    expect(hot.body.name).toBe('From cache');
    const after = cache.stats.counts.get('users:profile:v1')!;
    expect(after.misses - before.misses).toBe(1);
    expect(after.hits - before.hits).toBe(1);
    await redis.del(cacheKey(bob.id));
  });

  it('a PATCH on one instance invalidates the cache: the next read anywhere sees the new name', async () => {
    await request(second.url).get(`/v1/users/${alice.id}`).set(auth(bob.accessToken)).expect(200);
    expect(await redis.exists(cacheKey(alice.id))).toBe(1);
    await request(api.url).patch('/v1/users/me').set(auth(alice.accessToken)).send({ name: 'Alice Renamed' }).expect(200);
    const read = await request(second.url).get(`/v1/users/${alice.id}`).set(auth(bob.accessToken)).expect(200);
    expect(read.body.name).toBe('Alice Renamed');
  });

  it('GET /v1/users/:id answers 404 for an unknown id, 400 for a non-UUID, 401 without a token', async () => {
    await request(api.url).get('/v1/users/00000000-0000-4000-8000-000000000000').set(auth(alice.accessToken)).expect(404);
    await request(api.url).get('/v1/users/nope').set(auth(alice.accessToken)).expect(400);
    await request(api.url).get(`/v1/users/${bob.id}`).expect(401);
  });

  it('logout on one instance ends the session on the other at once', async () => {
    const session = await signUpAndLogin(api.url, 'Roamer');
    await request(second.url).get('/v1/users/me').set(auth(session.accessToken)).expect(200);
    await request(api.url).post('/v1/auth/logout').set(auth(session.accessToken)).expect(204);
    await request(second.url).get('/v1/users/me').set(auth(session.accessToken)).expect(401);
    await request(second.url).post('/v1/auth/refresh').send({ refreshToken: session.refreshToken }).expect(401);
  });

  it('no users endpoint ever returns a password hash or a token hash', async () => {
    const session = await signUpAndLogin(api.url, 'Scanner');
    const [row] = await query<{ password_hash: string }>(db, 'SELECT password_hash FROM users.users WHERE id = $1', [session.id]);
    const responses = [
      await request(api.url).get('/v1/users/me').set(auth(session.accessToken)),
      await request(api.url).patch('/v1/users/me').set(auth(session.accessToken)).send({ name: 'Scanner 2' }),
      await request(api.url).get(`/v1/users/${session.id}`).set(auth(session.accessToken)),
      await request(api.url).post('/v1/auth/login').send({ email: session.email, password: session.password }),
      await request(api.url).post('/v1/auth/refresh').send({ refreshToken: session.refreshToken }),
      await request(api.url).post('/v1/users').send({ email: session.email, password: 'correct horse battery', name: 'Dup' }),
    ];
    const hashes = await query<{ token_hash: Buffer }>(db, 'SELECT token_hash FROM users.refresh_tokens');
    for (const response of responses) {
      const text = JSON.stringify(response.body) + JSON.stringify(response.headers);
      expect(text).not.toContain(row.password_hash);
      expect(text).not.toMatch(/argon2|password_?hash|passwordHash|token_?hash/i);
      for (const { token_hash } of hashes) {
        expect(text).not.toContain(token_hash.toString('hex'));
        expect(text).not.toContain(token_hash.toString('base64url'));
      }
    }
  });

  it('DELETE /v1/users/me erases the account, emits users.user-deleted.v1 and revokes every session', async () => {
    const doomed = await signUpAndLogin(api.url, 'Doomed');
    await request(api.url).get(`/v1/users/${doomed.id}`).set(auth(alice.accessToken)).expect(200);
    await request(api.url).delete('/v1/users/me').set(auth(doomed.accessToken)).expect(204);
    expect(await query(db, 'SELECT 1 FROM users.users WHERE id = $1', [doomed.id])).toHaveLength(0);
    expect(await query(db, 'SELECT 1 FROM users.sessions WHERE user_id = $1', [doomed.id])).toHaveLength(0);
    await request(second.url).get('/v1/users/me').set(auth(doomed.accessToken)).expect(401);
    await request(api.url).get(`/v1/users/${doomed.id}`).set(auth(alice.accessToken)).expect(404);
    await request(api.url).post('/v1/auth/login').send({ email: doomed.email, password: doomed.password }).expect(401);
    // The event went through the outbox and was published (the row stays for replay).
    const published = await eventually(async () => (await query(db, `SELECT 1 FROM users.outbox WHERE event_type = 'users.user-deleted.v1' AND payload->>'userId' = $1 AND published_at IS NOT NULL`, [doomed.id])).length === 1);
    expect(published).toBe(true);
  });

  it('the first admin is made from the command line, never through the API', async () => {
    const candidate = await signUpAndLogin(api.url, 'Admin To Be');
    const cli = spawnSync(process.execPath, [path.join(ROOT, 'dist/apps/api/src/cli.js'), 'users:promote', candidate.email.toUpperCase()], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', DATABASE_URL: db, DB_ROLE_PREFIX: runId(), REDIS_URL: api.config.env.REDIS_URL, REDIS_KEY_PREFIX: api.config.env.REDIS_KEY_PREFIX, LOG_LEVEL: 'silent' },
      timeout: 20_000,
    });
    expect(cli.stderr).toBe('');
    expect(cli.status).toBe(0);
    expect(cli.stdout).toMatch(/promoted .* to admin/);
    const login = await request(api.url).post('/v1/auth/login').send({ email: candidate.email, password: candidate.password }).expect(200);
    expect((await request(api.url).get('/v1/users/me').set(auth(login.body.accessToken))).body.role).toBe('admin');
    const unknown = spawnSync(process.execPath, [path.join(ROOT, 'dist/apps/api/src/cli.js'), 'users:promote', 'ghost@example.com'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', DATABASE_URL: db, DB_ROLE_PREFIX: runId(), REDIS_URL: api.config.env.REDIS_URL, REDIS_KEY_PREFIX: api.config.env.REDIS_KEY_PREFIX, LOG_LEVEL: 'silent' },
    });
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/No such user/);
  });

  describe('Redis down or slow: public profiles fall through to Postgres within a bounded wait', () => {
    let ownRedis: ThrowawayRedis;
    let isolated: RunningApi;
    let reader: SignedUpUser;

    beforeAll(async () => {
      ownRedis = new ThrowawayRedis(await freePort());
      await ownRedis.start();
      isolated = await startApi(db, { redisUrl: ownRedis.url });
      reader = await signUpAndLogin(isolated.url, 'Reader');
    });
    afterAll(async () => {
      await isolated?.close();
      await ownRedis?.stop();
    });

    it('serves the profile from Postgres while Redis is down, without an error or a hang', async () => {
      await request(isolated.url).get(`/v1/users/${bob.id}`).set(auth(reader.accessToken)).expect(200);
      await ownRedis.stop();
      const started = Date.now();
      const response = await request(isolated.url).get(`/v1/users/${bob.id}`).set(auth(reader.accessToken));
      expect(response.status).toBe(200);
      expect(response.body).toEqual({ id: bob.id, name: 'Bob' });
      // Bounded: a few Redis timeouts (150 ms each), never the seconds of a reconnect.
      expect(Date.now() - started).toBeLessThan(2000);
      await ownRedis.start();
      await eventually(async () => (await request(isolated.url).get('/health/ready')).body.status === 'ok', 10_000, 100);
    });
  });
});
