import { spawnSync } from 'node:child_process';
import path from 'node:path';
import request from 'supertest';
import { createTestDatabase, deleteRedisPrefix, runId, uniqueEmail } from '../support/test-env';
import { AppProcess, freePort, ROOT } from '../support/processes';
import { keyPairEnv } from '../support/auth-helpers';

const prodKeys = keyPairEnv();

// Production also wants each role's own database password (checked before the keys).

const prodDb = { USERS_DB_PASSWORD: 'users-pass', ORDERS_DB_PASSWORD: 'orders-pass', NOTIFICATIONS_DB_PASSWORD: 'notifications-pass', FLAGS_DB_PASSWORD: 'platform-pass' };
const otherKeys = keyPairEnv();

const MAIN = path.join(ROOT, 'dist/apps/api/src/main.js');

describe('The API process', () => {
  describe('configuration is validated at boot', () => {
    const boot = (env: Record<string, string>) =>
      // Generous: loading the code alone has taken over 15 s on a loaded 2-core machine.
      spawnSync(process.execPath, [MAIN], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 45_000 });

    it.each([
      [{ PORT: 'abc' }, /^Invalid configuration: PORT must be integer \(got "abc"\)$/],
      [{ DATABASE_URL: 'mysql://nope' }, /^Invalid configuration: DATABASE_URL must match pattern/],
      [{ USERS_DB_POOL_MAX: '0' }, /^Invalid configuration: USERS_DB_POOL_MAX must be >= 1/],
      [{ MODULES_ENABLED: 'users,no-such-module' }, /^Invalid configuration: MODULES_ENABLED names unknown module "no-such-module"/],
      [{ LOG_LEVEL: 'loud' }, /^Invalid configuration: LOG_LEVEL /],
      // Production never starts without its token keys, nor with a key others cannot verify.
      [{ NODE_ENV: 'production', ...prodDb }, /^Invalid configuration: AUTH_PUBLIC_KEYS is required in production/],
      [{ NODE_ENV: 'production', ...prodDb, ...prodKeys.verifier }, /^Invalid configuration: USERS_TOKEN_SIGNING_KEY is required in production/],
      [{ NODE_ENV: 'production', ...prodDb, ...prodKeys.verifier, USERS_TOKEN_SIGNING_KEY: otherKeys.signer.USERS_TOKEN_SIGNING_KEY }, /^Invalid configuration: the public key of USERS_TOKEN_SIGNING_KEY \(kid [\w-]+\) is not in AUTH_PUBLIC_KEYS/],
      [{ ...prodKeys.verifier, USERS_TOKEN_SIGNING_KEY: 'not-a-key-but-secret-text' }, /^Invalid configuration: USERS_TOKEN_SIGNING_KEY not a PEM or JWK private key \(value not shown\)$/],
      [{ AUTH_PUBLIC_KEYS: prodKeys.signer.USERS_TOKEN_SIGNING_KEY }, /^Invalid configuration: AUTH_PUBLIC_KEYS a PEM private key in the public key set/],
      [{ NODE_ENV: 'production', ...prodDb, MODULES_ENABLED: 'orders,notifications', ...prodKeys.signer }, /^Invalid configuration: USERS_TOKEN_SIGNING_KEY must not be set in api/],
    ])('stops with one line naming the variable for %j', (env, message) => {
      const result = boot(env);
      expect(result.status).toBe(78);
      const lines = result.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(message);
      // Key material never reaches the output.
      expect(result.stderr + result.stdout).not.toMatch(/not-a-key-but-secret-text|PRIVATE KEY|MC4CAQAw/);
    }, 60_000);
  });

  describe('development start without token keys', () => {
    let db: string;
    const starts: { app: AppProcess; url: string }[] = [];
    const redisPrefix = `${runId()}:devkeys`;

    beforeAll(async () => {
      db = await createTestDatabase();
      for (let i = 0; i < 2; i++) {
        const port = await freePort();
        const app = new AppProcess({
          NODE_ENV: 'development',
          DATABASE_URL: db,
          DB_ROLE_PREFIX: runId(),
          DB_BOOTSTRAP_ON_START: 'false',
          REDIS_URL: process.env.TEST_REDIS_URL!,
          REDIS_KEY_PREFIX: redisPrefix,
          PORT: String(port),
          HOST: '127.0.0.1',
          LOG_LEVEL: 'info',
        });
        app.start();
        starts.push({ app, url: `http://127.0.0.1:${port}` });
      }
      await Promise.all(starts.map(({ app }) => app.waitForLog(/"msg":"api listening"/, 45_000)));
    }, 60_000);
    afterAll(async () => {
      for (const { app } of starts) app.signal('SIGTERM');
      await Promise.race([Promise.all(starts.map(({ app }) => app.exit)), new Promise((r) => setTimeout(r, 15_000).unref())]);
      for (const { app } of starts) app.kill();
      await deleteRedisPrefix(process.env.TEST_REDIS_URL!, redisPrefix);
    });

    it('works with a key generated per start (a warning says so), and two starts never share a key', async () => {
      const [first, second] = starts;
      for (const { app } of starts) expect(app.text()).toMatch(/"level":"warn".*no USERS_TOKEN_SIGNING_KEY: signing access tokens with a key generated for this start only/);
      const jwks = await Promise.all(starts.map(async ({ url }) => (await request(url).get('/.well-known/jwks.json').expect(200)).body.keys));
      expect(jwks[0]).toHaveLength(1);
      expect(jwks[1]).toHaveLength(1);
      expect(jwks[0][0].kid).not.toBe(jwks[1][0].kid);
      expect(jwks[0][0].x).not.toBe(jwks[1][0].x);

      const account = { email: uniqueEmail('devkeys'), password: 'correct horse battery', name: 'Dev' };
      await request(first.url).post('/v1/users').send(account).expect(201);
      const credentials = { email: account.email, password: account.password };
      const tokens = await Promise.all(starts.map(async ({ url }) => (await request(url).post('/v1/auth/login').send(credentials).expect(200)).body.accessToken as string));
      await request(first.url).get('/v1/users/me').set('Authorization', `Bearer ${tokens[0]}`).expect(200);
      await request(second.url).get('/v1/users/me').set('Authorization', `Bearer ${tokens[1]}`).expect(200);
      // Each start trusts only its own key.
      await request(second.url).get('/v1/users/me').set('Authorization', `Bearer ${tokens[0]}`).expect(401);
      await request(first.url).get('/v1/users/me').set('Authorization', `Bearer ${tokens[1]}`).expect(401);
    });
  });

  describe('graceful shutdown on SIGTERM', () => {
    let db: string;
    let app: AppProcess;
    let url: string;
    const redisPrefix = `${runId()}:shutdown`;

    beforeAll(async () => {
      db = await createTestDatabase();
      const port = await freePort();
      url = `http://127.0.0.1:${port}`;
      app = new AppProcess({
        DATABASE_URL: db,
        DB_ROLE_PREFIX: runId(),
        // Bootstrapping an already migrated database must be a no-op.
        DB_BOOTSTRAP_ON_START: 'true',
        REDIS_URL: process.env.TEST_REDIS_URL!,
        REDIS_KEY_PREFIX: redisPrefix,
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        SHUTDOWN_DRAIN_MS: '1500',
      });
      app.start();
      await app.waitForLog(/"msg":"api listening"/);
    });
    afterAll(async () => {
      app?.kill();
      await deleteRedisPrefix(process.env.TEST_REDIS_URL!, redisPrefix);
    });

    it('fails readiness first, still serves in-flight and draining requests, then exits 0', async () => {
      expect(app.text()).toMatch(/"msg":"migrations up to date"/);
      await request(url).get('/health/ready').expect(200);

      const inFlight = request(url).post('/v1/users').send({ email: uniqueEmail('inflight'), password: 'correct horse battery', name: 'In flight' });
      const inFlightDone = inFlight.then((r) => r.status);
      await new Promise((r) => setTimeout(r, 5));
      app.signal('SIGTERM');
      await app.waitForLog(/shutting down/, 5000);

      const ready = await request(url).get('/health/ready');
      expect(ready.status).toBe(503);
      expect(ready.body.error.shutdown.status).toBe('down');
      // During the drain window the instance still serves (the load balancer is moving away).
      await request(url).post('/v1/users').send({ email: uniqueEmail('draining'), password: 'correct horse battery', name: 'Draining' }).expect(201);
      expect(await inFlightDone).toBe(201);

      const exit = await Promise.race([app.exit!, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 30_000))]);
      expect(exit).toEqual({ code: 0, signal: null });
      expect(app.text()).toMatch(/"msg":"shutdown complete"/);
    }, 45_000);
  });
});
