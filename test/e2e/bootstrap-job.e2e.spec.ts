import { spawn } from 'node:child_process';
import path from 'node:path';
import request from 'supertest';
import { MODULE_MANIFESTS } from '@app/manifests';
import { AppProcess, freePort, ROOT } from '../support/processes';
import { adminUrl, createTestDatabase, deleteRedisPrefix, query, runId, testConfig } from '../support/test-env';

const MAIN = path.join(ROOT, 'dist/apps/api/src/main.js');

/**
 * Production shape (README, "Deployment"): the bootstrap is a one-shot job with the admin
 * URL; serving processes run with DB_BOOTSTRAP_ON_START=false and only their module URLs.
 */
describe('A serving process without the admin URL', () => {
  const redisPrefix = `${runId()}:nobootstrap`;
  // Nothing listens here: if the process used the admin URL, it could not start.
  const deadAdminUrl = 'postgres://postgres:admin@127.0.0.1:1/nowhere';

  /** `<MODULE>_DATABASE_URL` for every module, as a deployment's secret provides them. */
  const moduleUrls = (databaseUrl: string) =>
    Object.fromEntries(MODULE_MANIFESTS.map((m) => [`${m.name.toUpperCase()}_DATABASE_URL`, testConfig(databaseUrl).databases[m.name].url]));

  const serving = async (databaseUrl: string): Promise<{ port: number; env: Record<string, string> }> => {
    const port = await freePort();
    return {
      port,
      env: {
        NODE_ENV: 'test',
        DATABASE_URL: deadAdminUrl,
        DB_BOOTSTRAP_ON_START: 'false',
        ...moduleUrls(databaseUrl),
        REDIS_URL: process.env.TEST_REDIS_URL!,
        REDIS_KEY_PREFIX: redisPrefix,
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
      },
    };
  };

  afterAll(() => deleteRedisPrefix(process.env.TEST_REDIS_URL!, redisPrefix));

  it('boots on a bootstrapped database and serves', async () => {
    const db = await createTestDatabase();
    const { port, env } = await serving(db);
    const app = new AppProcess(env);
    app.start();
    try {
      await app.waitForLog(/"msg":"api listening"/, 60_000);
      await request(`http://127.0.0.1:${port}`).get('/health/ready').expect(200);
      // Each module's role works: signing up writes users' tables (and its outbox).
      await request(`http://127.0.0.1:${port}`)
        .post('/v1/users')
        .send({ email: `job-${Date.now()}@example.com`, password: 'correct horse battery', name: 'Job' })
        .expect(201);
      expect(app.text()).not.toMatch(/migrations (applied|up to date)/);
    } finally {
      app.kill();
    }
  }, 90_000);

  const refusal = (env: Record<string, string>) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [MAIN], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.once('exit', (code) => resolve({ code, stderr }));
    });

  it('refuses with one line naming the module and the missing bootstrap on a database that was never bootstrapped', async () => {
    const name = `${runId()}_nobootstrap`;
    await query(adminUrl(), `CREATE DATABASE "${name}"`);
    const { env } = await serving(adminUrl(name));
    const { code, stderr } = await refusal(env);
    expect(code).toBe(1);
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^api failed to start: Database not ready for module "\w+": schema "\w+" has no migrations table; run the bootstrap first/);
  }, 30_000);

  it('refuses with one line naming the variable when a module URL has the wrong password', async () => {
    const db = await createTestDatabase();
    const { env } = await serving(db);
    // On the shared (trusting) server a wrong password still connects; a role that does not exist does not.
    const wrong = new URL(env.USERS_DATABASE_URL);
    wrong.username = `${runId()}_nosuchrole`;
    const { code, stderr } = await refusal({ ...env, USERS_DATABASE_URL: wrong.toString() });
    expect(code).toBe(1);
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/Database not ready for module "users": role "\w+" cannot connect \(.*\); .*check USERS_DATABASE_URL$/);
  }, 30_000);
});
