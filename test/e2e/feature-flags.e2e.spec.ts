import { randomUUID } from 'node:crypto';
import { OpenFeature } from '@openfeature/server-sdk';
import Redis from 'ioredis';
import request from 'supertest';
import { OrderEvents } from '@app/orders/contracts';
import { CacheAside, declaredFlags, Flags, QueueFactory, rolloutBucket } from '@app/platform';
import { MODULE_MANIFESTS } from '@app/manifests';
import { signUpAndLogin, type SignedUpUser, testTokens } from '../support/auth-helpers';
import { runCli } from '../support/cli';
import { notificationsOf, orderEvent, publishOrderEvent, SmtpSink, SseClient, WebhookReceiver } from '../support/notifications';
import { unfinishedJobs } from '../support/settled';
import { createTestDatabase, eventually, query, runId, startApi, type RunningApi } from '../support/test-env';

/**
 * Runtime feature flags (docs/architecture.md, "Feature flags") on two API instances that
 * share one database and one Redis, as two replicas do, changed only through the real CLI
 * (`npm run cli -- flags:*`, a separate process). Instance A re-reads the flags every 10
 * minutes, so whatever it does within seconds of a change it learnt from Postgres'
 * NOTIFY; instance B re-reads them every second, the fallback for a missed notification.
 */
// Each CLI run is a process that loads the application's code: seconds on a busy machine.
jest.setTimeout(120_000);

describe('Feature flags and kill switches across instances (e2e)', () => {
  let db: string;
  let a: RunningApi;
  let b: RunningApi;
  let cliEnv: Record<string, string>;
  const smtp = new SmtpSink();
  const hook = new WebhookReceiver();
  const DECLARED = [...declaredFlags(MODULE_MANIFESTS).keys()];
  const auth = (token: string) => ({ Authorization: `Bearer ${token}` });

  /** The real CLI; fails the test on a non-zero exit. */
  async function cli(...args: string[]): Promise<string> {
    const result = await runCli(args, cliEnv);
    if (result.code !== 0) throw new Error(`flags CLI ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
    return result.stdout;
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    await smtp.start();
    await hook.start();
    const prefix = `${runId()}:flags-${randomUUID().slice(0, 8)}`;
    const env = {
      SMTP_URL: smtp.url,
      NOTIFICATIONS_ALLOW_PRIVATE_WEBHOOKS: 'true',
      NOTIFICATIONS_DELIVERY_BACKOFF_BASE_MS: '200',
      ORDER_PENDING_TTL: '1500ms',
      ORDER_EXPIRY_SWEEP_INTERVAL_MS: '300',
      RATE_LIMIT_PER_MINUTE: '100000',
    };
    a = await startApi(db, { redisPrefix: prefix, env: { ...env, FLAGS_REFRESH_INTERVAL_MS: '600000' } });
    b = await startApi(db, { redisPrefix: prefix, env: { ...env, FLAGS_REFRESH_INTERVAL_MS: '1000' } });
    cliEnv = { DATABASE_URL: db, DB_ROLE_PREFIX: runId(), REDIS_URL: a.config.env.REDIS_URL, REDIS_KEY_PREFIX: prefix, LOG_LEVEL: 'silent' };
  });
  afterEach(async () => {
    // Every flag back to its declared default (all on) on both instances before the next test.
    await query(db, 'DELETE FROM platform.flags');
    await eventually(async () => [a, b].every((api) => DECLARED.every((key) => api.app.get(Flags).enabledForAll(key))), 10_000);
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
    await smtp.stop();
    await hook.stop();
  });

  it('refuses an unknown flag or a bad value with a usage error naming it, and lists every declared flag', async () => {
    const unknown = await runCli(['flags:set', 'notifications.emial-delivery', 'off'], cliEnv);
    expect(unknown.code).toBe(64);
    expect(unknown.stderr).toContain('unknown flag "notifications.emial-delivery"');
    expect(unknown.stderr).toContain('notifications.email-delivery'); // the declared ones are listed
    const value = await runCli(['flags:set', 'users.profile-cache', 'maybe'], cliEnv);
    expect([value.code, value.stderr]).toEqual([64, expect.stringContaining('needs on, off or default (got "maybe")')]);
    const percent = await runCli(['flags:rollout', 'users.profile-cache', '101'], cliEnv);
    expect([percent.code, percent.stderr]).toEqual([64, expect.stringContaining('percentage from 0 to 100 (got "101")')]);
    expect(await query(db, 'SELECT key FROM platform.flags')).toEqual([]);

    expect(await cli('flags:set', 'orders.expiry-scheduling', 'off')).toContain('orders.expiry-scheduling: on (default) -> off');
    const listing = await cli('flags:list');
    for (const key of DECLARED) expect(listing).toContain(key);
    expect(listing).toMatch(/orders\.expiry-scheduling\s+off\s+on\s+\d{4}-/);
    expect(listing).toMatch(/users\.profile-cache\s+on \(default\)/);
  });

  it('live-stream switch: open streams on both instances get a closing event and end; new ones get 503 until it is back on', async () => {
    const user = await signUpAndLogin(a.url, 'Streamer');
    const streams = [await SseClient.connect(a.url, user.accessToken), await SseClient.connect(b.url, user.accessToken)];
    expect(streams.map((s) => s.status)).toEqual([200, 200]);

    await cli('flags:set', 'notifications.live-stream', 'off');
    await eventually(async () => streams.every((s) => s.ended), 5_000);
    for (const stream of streams) {
      expect(stream.events.at(-1)).toEqual({ event: 'closed', data: JSON.stringify({ reason: 'live notifications are switched off' }) });
    }
    for (const api of [a, b]) {
      const refused = await SseClient.connect(api.url, user.accessToken);
      refused.close();
      expect(refused.status).toBe(503);
      expect(refused.headers?.['content-type']).toContain('application/problem+json');
    }
    // The problem document itself (a refusal ends at once, so supertest cannot hang on it).
    const problem = await request(b.url).get('/v1/notifications/stream').set(auth(user.accessToken)).expect(503);
    expect(problem.headers['retry-after']).toBe('60');
    expect(problem.body).toMatchObject({ status: 503, code: 'NOTIFICATIONS.LIVE_STREAM_OFF', type: '/problems/notifications/live-stream-off' });

    await cli('flags:set', 'notifications.live-stream', 'on');
    for (const api of [a, b]) {
      const again = await eventually(async () => {
        const client = await SseClient.connect(api.url, user.accessToken);
        if (client.status === 200) return client;
        client.close();
        return undefined;
      }, 5_000, 100);
      again.close();
    }
  });

  it('delivery switches: email and webhook deliveries wait while off (nothing sent, nothing lost) and all go out once on', async () => {
    const queues = a.app.get(QueueFactory);
    await cli('flags:set', 'notifications.email-delivery', 'off');
    await cli('flags:set', 'notifications.webhook-delivery', 'off');
    await eventually(async () => (await queues.get('notifications.email').isPaused()) && (await queues.get('notifications.webhook').isPaused()), 5_000);

    const user: SignedUpUser = await signUpAndLogin(b.url, 'Paused Reader');
    // The welcome notification first, so that it wants email only (no webhook yet).
    await eventually(async () => (await notificationsOf(db, user.id)).length === 1, 10_000);
    await request(a.url).put('/v1/notifications/preferences').set(auth(user.accessToken)).send({ email: true, webhookUrl: hook.url }).expect(200);
    await publishOrderEvent(db, OrderEvents.shipped, { ...orderEvent(user.id), status: 'shipped', previousStatus: 'confirmed' });

    // Welcome email + shipped email + shipped webhook: handed to their queues, and waiting there.
    const enqueued = async () =>
      query<{ channel: string; status: string; attempts: number }>(
        db,
        'SELECT channel, status, attempts FROM notifications.deliveries WHERE user_id = $1 AND enqueued_at IS NOT NULL ORDER BY channel',
        [user.id],
      );
    await eventually(async () => (await enqueued()).length === 3, 10_000);
    await eventually(async () => {
      const [email, webhook] = [await unfinishedJobs(a.app, 'notifications.email'), await unfinishedJobs(a.app, 'notifications.webhook')];
      return email.paused === 2 && webhook.paused === 1 && !email.active && !webhook.active;
    }, 5_000);
    expect(smtp.messages.filter((m) => JSON.stringify(m.to).includes(user.email))).toEqual([]);
    expect(hook.received).toEqual([]);
    expect(await enqueued()).toEqual([
      { channel: 'email', status: 'pending', attempts: 0 },
      { channel: 'email', status: 'pending', attempts: 0 },
      { channel: 'webhook', status: 'pending', attempts: 0 },
    ]);

    await cli('flags:set', 'notifications.email-delivery', 'on');
    await cli('flags:set', 'notifications.webhook-delivery', 'default');
    await eventually(async () => (await enqueued()).every((d) => d.status === 'sent'), 10_000);
    expect((await enqueued()).map((d) => d.attempts)).toEqual([1, 1, 1]);
    const mails = smtp.messages.filter((m) => JSON.stringify(m.to).includes(user.email)).map((m) => m.subject).sort();
    expect(mails).toHaveLength(2);
    expect(mails).toContain('Welcome!');
    expect(hook.received).toHaveLength(1);
    expect(await queues.get('notifications.email').isPaused()).toBe(false);
  });

  it('profile-cache switch: reads bypass the cache on both instances (Postgres answers) and fill nothing', async () => {
    const user = await signUpAndLogin(a.url, 'Cached Name');
    const nameOn = async (api: RunningApi) => (await request(api.url).get(`/v1/users/${user.id}`).set(auth(user.accessToken)).expect(200)).body.name as string;
    expect(await nameOn(a)).toBe('Cached Name');
    // Changed behind the application's back: only a read that skips the cache can see it.
    await query(db, 'UPDATE users.users SET name = $2 WHERE id = $1', [user.id, 'Straight From Postgres']);
    expect(await nameOn(b)).toBe('Cached Name');

    await cli('flags:set', 'users.profile-cache', 'off');
    await eventually(async () => (await nameOn(a)) === 'Straight From Postgres' && (await nameOn(b)) === 'Straight From Postgres', 5_000);

    const other = await signUpAndLogin(a.url, 'Never Cached');
    expect(await nameOn(a)).toBe('Straight From Postgres');
    await request(b.url).get(`/v1/users/${other.id}`).set(auth(other.accessToken)).expect(200);
    const redis = new Redis(a.config.env.REDIS_URL);
    try {
      expect(await redis.exists(a.app.get(CacheAside).key('users:profile:v1', other.id))).toBe(0);
    } finally {
      redis.disconnect();
    }
  });

  it('expiry-scheduling switch: no delayed job is enqueued, and the sweeper still expires the order', async () => {
    const token = (role: 'admin' | 'customer') => testTokens(a.config).sign({ userId: randomUUID(), role, sessionId: randomUUID() }).token;
    const product = (await request(a.url).post('/v1/products').set(auth(token('admin'))).send({ sku: `FLAG-${randomUUID().slice(0, 8)}`, name: 'Kettle', priceCents: 500, currency: 'EUR', stock: 10 }).expect(201)).body as { id: string };
    const place = async (api: RunningApi) =>
      (await request(api.url).post('/v1/orders').set(auth(token('customer'))).send({ items: [{ productId: product.id, quantity: 1 }] }).expect(201)).body.id as string;
    const expiry = a.app.get(QueueFactory).get('orders.expiry');

    await cli('flags:set', 'orders.expiry-scheduling', 'off');
    await eventually(async () => !a.app.get(Flags).enabledForAll('orders.expiry-scheduling') && !b.app.get(Flags).enabledForAll('orders.expiry-scheduling'), 5_000);
    const unscheduled = [await place(a), await place(b)];
    for (const id of unscheduled) expect(await expiry.getJob(id)).toBeNull();
    await eventually(async () => {
      const rows = await query<{ status: string }>(db, 'SELECT status FROM orders.orders WHERE id = ANY($1::uuid[])', [unscheduled]);
      return rows.every((r) => r.status === 'expired');
    }, 10_000);

    await cli('flags:set', 'orders.expiry-scheduling', 'on');
    await eventually(async () => a.app.get(Flags).enabledForAll('orders.expiry-scheduling'), 5_000);
    const scheduled = await place(a);
    expect(await expiry.getJob(scheduled)).not.toBeNull();
  });

  it('percentage rollout: the same users get the flag on both instances and on every call, about the right share, named users always', async () => {
    const key = 'users.profile-cache';
    const ids = Array.from({ length: 2000 }, () => randomUUID());
    const named = ids.find((id) => rolloutBucket(key, id) >= 30)!;
    await cli('flags:rollout', key, '30', '--users', named);
    const answers = (api: RunningApi) => Promise.all(ids.map((userId) => api.app.get(Flags).isEnabled(key, { userId })));
    await eventually(async () => (await a.app.get(Flags).isEnabled(key, { userId: named })) && (await b.app.get(Flags).isEnabled(key, { userId: named })), 5_000);

    const [onA, onB, onAAgain] = [await answers(a), await answers(b), await answers(a)];
    expect(onB).toEqual(onA);
    expect(onAAgain).toEqual(onA);
    const share = onA.filter(Boolean).length / ids.length;
    expect(share).toBeGreaterThan(0.26);
    expect(share).toBeLessThan(0.34);
    expect(onA[ids.indexOf(named)]).toBe(true);

    // Widening keeps everyone who had it (and the named user: --users omitted keeps the list).
    expect(await cli('flags:rollout', key, '60')).toContain(`(named: ${named})`);
    await eventually(async () => (await answers(b)).filter(Boolean).length > onA.filter(Boolean).length, 5_000);
    const widened = await answers(a);
    ids.forEach((_, i) => onA[i] && expect(widened[i]).toBe(true));
  });

  it('a flag that is on, off or at its default answers as the OpenFeature SDK does, and registered hooks see every evaluation', async () => {
    const key = 'users.profile-cache';
    const flags = a.app.get(Flags);
    const seen: string[] = [];
    const viaSdk = async (userId: string) => {
      // With a hook registered, isEnabled goes through the SDK for every state (no fast path).
      OpenFeature.addHooks({ after: (hookContext) => void seen.push(hookContext.flagKey) });
      try {
        return await flags.isEnabled(key, { userId });
      } finally {
        OpenFeature.clearHooks();
      }
    };
    const userId = randomUUID();
    for (const state of ['default', 'off', 'on'] as const) {
      await cli('flags:set', key, state);
      const expected = state !== 'off';
      await eventually(async () => flags.enabledForAll(key) === expected, 5_000);
      expect([await flags.isEnabled(key, { userId }), await flags.isEnabled(key)]).toEqual([expected, expected]);
      expect(await viaSdk(userId)).toBe(expected);
    }
    expect(seen).toEqual([key, key, key]);
  });

  it('/metrics shows each flag\'s state, rollout share and named users', async () => {
    await cli('flags:set', 'notifications.webhook-delivery', 'off');
    await cli('flags:rollout', 'users.profile-cache', '25', '--users', 'someone,someone-else');
    await eventually(async () => {
      const text = (await request(b.internalUrl).get('/metrics').expect(200)).text;
      return (
        text.includes('feature_flag_enabled{flag="notifications.webhook-delivery"} 0') &&
        text.includes('feature_flag_enabled{flag="notifications.email-delivery"} 1') &&
        text.includes('feature_flag_enabled{flag="users.profile-cache"} 0') &&
        text.includes('feature_flag_rollout_percent{flag="users.profile-cache"} 25') &&
        text.includes('feature_flag_rollout_percent{flag="orders.expiry-scheduling"} 100') &&
        text.includes('feature_flag_named_users{flag="users.profile-cache"} 2')
      );
    }, 5_000);
  });

  it('a change whose notification never came still applies within the reload interval', async () => {
    // A statement with the trigger disabled sends no NOTIFY, as if every listener had missed it.
    await query(db, 'ALTER TABLE platform.flags DISABLE TRIGGER flags_changed');
    try {
      await query(db, "INSERT INTO platform.flags (key, state) VALUES ('notifications.live-stream', 'off')");
      // B re-reads every second; A (every 10 minutes) has not heard of it: no notification went out.
      await eventually(async () => !b.app.get(Flags).enabledForAll('notifications.live-stream'), 5_000);
      expect(a.app.get(Flags).enabledForAll('notifications.live-stream')).toBe(true);
    } finally {
      await query(db, 'ALTER TABLE platform.flags ENABLE TRIGGER flags_changed');
    }
  });
});
