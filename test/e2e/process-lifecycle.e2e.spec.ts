import { spawnSync } from 'node:child_process';
import path from 'node:path';
import request from 'supertest';
import { createTestDatabase, deleteRedisPrefix, runId, uniqueEmail } from '../support/test-env';
import { AppProcess, freePort, ROOT } from '../support/processes';

const MAIN = path.join(ROOT, 'dist/apps/api/src/main.js');

describe('The API process', () => {
  describe('configuration is validated at boot', () => {
    const boot = (env: Record<string, string>) =>
      spawnSync(process.execPath, [MAIN], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 15_000 });

    it.each([
      [{ PORT: 'abc' }, /^Invalid configuration: PORT must be integer \(got "abc"\)$/],
      [{ DATABASE_URL: 'mysql://nope' }, /^Invalid configuration: DATABASE_URL must match pattern/],
      [{ USERS_DB_POOL_MAX: '0' }, /^Invalid configuration: USERS_DB_POOL_MAX must be >= 1/],
      [{ MODULES_ENABLED: 'users,no-such-module' }, /^Invalid configuration: MODULES_ENABLED names unknown module "no-such-module"/],
      [{ LOG_LEVEL: 'loud' }, /^Invalid configuration: LOG_LEVEL /],
    ])('stops with one line naming the variable for %j', (env, message) => {
      const result = boot(env);
      expect(result.status).toBe(78);
      const lines = result.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(message);
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
