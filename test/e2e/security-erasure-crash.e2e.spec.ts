import { randomBytes, randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import request from 'supertest';
import { inboxQueueName, QueueFactory, type IntegrationEvent } from '@app/platform';
import { UserEvents } from '@app/users/contracts';
import { signUpAndLogin } from '../support/auth-helpers';
import { AppProcess, freePort } from '../support/processes';
import { createTestDatabase, deleteRedisPrefix, eventually, query, runId, testConfig } from '../support/test-env';

/**
 * Erasure survives a crash (issue 12): the steps outside Postgres (removing the user's Bull
 * jobs, dropping the cached profile once more past a late refill) are recorded in the
 * erasing transactions (`<schema>.erasure_work`) and finished by the next instance that
 * boots. Real processes from dist/ (build first), killed with SIGKILL in the middle of the
 * job removal. docs/architecture.md, "Erasure and retention".
 */

// Below the scan limit per state (EVENT_PATH_SCAN_LIMIT, 10 000), with room for the keeper's.
const JOBS = 8_000;
const auth = (token: string) => ({ Authorization: `Bearer ${token}` });

describe('Security: an erasure cut short by a crash is finished after a restart (e2e)', () => {
  let db: string;
  const redisPrefix = `${runId()}:erasure-crash-${randomBytes(3).toString('hex')}`;
  const redisUrl = process.env.TEST_REDIS_URL!;
  const processes: AppProcess[] = [];
  let queues: QueueFactory;
  let redis: Redis;

  async function startInstance(): Promise<{ app: AppProcess; url: string }> {
    const port = await freePort();
    const app = new AppProcess({
      DATABASE_URL: db,
      DB_ROLE_PREFIX: runId(),
      DB_BOOTSTRAP_ON_START: 'false',
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: redisPrefix,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      OUTBOX_POLL_INTERVAL_MS: '250',
      // The second cache drop waits the users statement timeout (plus the Redis one) past
      // the commit: long enough here that the kill below always comes before it.
      USERS_DB_STATEMENT_TIMEOUT_MS: '20000',
    });
    processes.push(app);
    app.start();
    await app.waitForLog(/"msg":"api listening"/, 60_000);
    return { app, url: `http://127.0.0.1:${port}` };
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    queues = new QueueFactory(testConfig(db, { redisPrefix }));
    redis = new Redis(redisUrl);
  });
  afterAll(async () => {
    for (const app of processes) app.kill();
    await queues?.onApplicationShutdown();
    redis?.disconnect();
    await deleteRedisPrefix(redisUrl, redisPrefix);
  });

  /** Delayed inbox jobs (retries waiting for their backoff) with the user's registration in them. */
  async function delayedRegistrations(user: { id: string; email: string; name: string }, count: number): Promise<void> {
    const inbox = queues.get(inboxQueueName('notifications'));
    for (let start = 0; start < count; start += 1000) {
      const jobs = Array.from({ length: Math.min(1000, count - start) }, () => {
        const event: IntegrationEvent = {
          id: randomUUID(),
          type: UserEvents.registered,
          producer: 'users',
          occurredAt: new Date().toISOString(),
          payload: { userId: user.id, email: user.email, name: user.name, registeredAt: new Date().toISOString() },
          metadata: {},
        };
        return { name: event.type, data: event, opts: { jobId: event.id, delay: 3_600_000 } };
      });
      await inbox.addBulk(jobs);
    }
  }

  const delayedAbout = async (userId: string) =>
    (await queues.get(inboxQueueName('notifications')).getDelayed(0, -1)).filter((job) => job && JSON.stringify(job.data).includes(userId)).length;
  const erasureWork = async () =>
    Object.fromEntries(
      await Promise.all(
        ['users', 'orders', 'notifications'].map(async (schema) => [schema, (await query(db, `SELECT id FROM "${schema}".erasure_work`)).length] as const),
      ),
    );

  it('Bull jobs and the late cache drop left by a SIGKILL mid-erasure are done by the next boot', async () => {
    const first = await startInstance();
    const name = `Crash ${randomBytes(4).toString('hex')}`;
    const doomed = await signUpAndLogin(first.url, name);
    const keeper = await signUpAndLogin(first.url, `Keeper ${randomBytes(4).toString('hex')}`);
    await eventually(async () => (await query(db, 'SELECT 1 FROM notifications.recipients WHERE user_id = $1', [keeper.id])).length === 1);
    await delayedRegistrations({ id: doomed.id, email: doomed.email, name }, JOBS);
    await delayedRegistrations({ id: keeper.id, email: keeper.email, name: 'Keeper' }, 10);
    const inbox = queues.get(inboxQueueName('notifications'));
    expect(await inbox.getDelayedCount()).toBe(JOBS + 10);

    await request(first.url).delete('/v1/users/me').set(auth(doomed.accessToken)).expect(204);
    // The erasure committed in notifications; its job removal has started: kill the process now.
    await eventually(async () => (await query(db, `SELECT 1 FROM notifications.inbox WHERE event_type = $1`, [UserEvents.deleted])).length === 1, 30_000, 10);
    await eventually(async () => (await inbox.getDelayedCount()) < JOBS + 10, 90_000, 5);
    first.app.kill();
    await first.app.exit;

    // A read that missed the cache just before the erasure writes the old profile back late
    // (cache-aside's stale fill): the second, delayed drop was to remove it, and died with the process.
    const cacheKey = `${redisPrefix}:users:profile:v1:${doomed.id}`;
    await redis.set(cacheKey, JSON.stringify({ id: doomed.id, name }), 'EX', 300);

    const left = await delayedAbout(doomed.id);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(JOBS);
    const pending = await erasureWork();
    expect(pending.notifications).toBeGreaterThan(0);
    expect(pending.users).toBeGreaterThan(0);

    // Another instance boots: it finishes what the dead one left.
    await startInstance();
    await eventually(async () => (await delayedAbout(doomed.id)) === 0, 120_000, 250);
    // Due 20 s after the commit; taken by the boot sweep or the next one (every 30 s).
    await eventually(async () => (await redis.exists(cacheKey)) === 0, 120_000, 250);
    await eventually(async () => Object.values(await erasureWork()).every((n) => n === 0), 30_000, 250);
    // Nobody else's jobs went.
    expect(await delayedAbout(keeper.id)).toBe(10);
    // Generous bounds: 8 000 jobs are scanned and removed twice on a machine shared with other runs.
  }, 480_000);
});
