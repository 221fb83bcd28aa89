import Bull from 'bull';
import request from 'supertest';
import { inboxQueueName } from '@app/platform';
import { notificationsManifest } from '@app/notifications/manifest';
import { keyPairEnv } from './auth-helpers';
import { AppProcess, freePort } from './processes';
import { startRouter } from './router';
import { createTestDatabase, deleteRedisPrefix, eventually, query, runId, uniqueEmail } from './test-env';

/** Every event type the notifications module consumes: what the relays route to `notifications.inbox`. */
export const NOTIFICATIONS_CONSUMES: readonly string[] = notificationsManifest.events.consumes;

export interface Account {
  id: string;
  email: string;
  password: string;
  token: string;
}

export interface InboxJobCounts {
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
}

/**
 * The extracted deployment of docs/extracting-a-module.md as real processes: the API with
 * MODULES_ENABLED=users,orders, apps/notifications-service (stopped, killed and restarted
 * at will, always on the same port), and a router in front, all on one test database and
 * one Redis key prefix. The test reads `notifications.inbox` directly with Bull (same
 * prefix) to see events waiting for a service that is down.
 */
export class SplitDeployment {
  readonly processes: AppProcess[] = [];
  api?: AppProcess;
  service?: AppProcess;
  private routerHandle?: { url: string; close(): Promise<void> };
  private inboxQueue?: Bull.Queue;

  private constructor(
    readonly db: string,
    readonly prefix: string,
    readonly apiPort: number,
    readonly servicePort: number,
    private readonly common: Record<string, string>,
    private readonly apiKeys: Record<string, string>,
    private readonly serviceEnv: Record<string, string>,
  ) {}

  /** `env`: for both processes (e.g. OTEL_*); `serviceEnv`: for the notifications service only. */
  static async create(tag: string, options: { env?: Record<string, string>; serviceEnv?: Record<string, string> } = {}): Promise<SplitDeployment> {
    const db = await createTestDatabase();
    const prefix = `${runId()}:${tag}`;
    const keys = keyPairEnv();
    const common = {
      DATABASE_URL: db,
      DB_ROLE_PREFIX: runId(),
      REDIS_URL: process.env.TEST_REDIS_URL!,
      REDIS_KEY_PREFIX: prefix,
      // The service gets the public key only: the API (users) is the one process that signs.
      ...keys.verifier,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      OUTBOX_POLL_INTERVAL_MS: '250',
      INBOX_BACKOFF_BASE_MS: '50',
      ...options.env,
    };
    const deployment = new SplitDeployment(db, prefix, await freePort(), await freePort(), common, keys.signer, options.serviceEnv ?? {});
    deployment.routerHandle = await startRouter([{ prefix: '/v1/notifications', port: deployment.servicePort }], deployment.apiPort);
    return deployment;
  }

  /** Everything goes through the router, as clients see it. */
  get url(): string {
    return this.routerHandle!.url;
  }

  async startApi(): Promise<AppProcess> {
    const api = new AppProcess({ ...this.common, ...this.apiKeys, PORT: String(this.apiPort), MODULES_ENABLED: 'users,orders' });
    this.processes.push(api);
    api.start();
    // Generous: on a loaded 2-core CI machine a cold Nest boot has taken over 20 s.
    await api.waitForLog(/"msg":"api listening"/, 45_000);
    this.api = api;
    return api;
  }

  /** A new incarnation of the service (its own output), on the same port as the last one. */
  async startService(): Promise<AppProcess> {
    const service = new AppProcess({ ...this.common, ...this.serviceEnv, PORT: String(this.servicePort) }, 'notifications-service');
    this.processes.push(service);
    service.start();
    await service.waitForLog(/"msg":"notifications-service listening"/, 45_000);
    this.service = service;
    return service;
  }

  /** SIGTERM: graceful shutdown; SIGKILL: a crash. Resolves once the process is gone. */
  async stopService(signal: 'SIGTERM' | 'SIGKILL'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const service = this.service!;
    service.signal(signal);
    const exit = await withDeadline(service.exit!, 20_000, `notifications-service did not exit after ${signal}`);
    this.service = undefined;
    return exit;
  }

  /** `notifications.inbox` as the relays fill it and the service consumes it (read-only use). */
  inbox(): Bull.Queue {
    this.inboxQueue ??= new Bull(inboxQueueName('notifications'), process.env.TEST_REDIS_URL!, { prefix: `${this.prefix}:bull` });
    return this.inboxQueue;
  }

  async inboxCounts(): Promise<InboxJobCounts> {
    const counts = await this.inbox().getJobCounts();
    return { waiting: counts.waiting, active: counts.active, delayed: counts.delayed, failed: counts.failed };
  }

  /** Ids of the jobs waiting in `notifications.inbox` (a job id is its event id), sorted. */
  async waitingEventIds(): Promise<string[]> {
    const jobs = await this.inbox().getWaiting(0, -1);
    return jobs.map((job) => String(job.id)).sort();
  }

  /** Outbox rows (users and orders) of the types notifications consumes, oldest first. */
  async eventsForNotifications(): Promise<{ id: string; event_type: string; published: boolean; handled: boolean }[]> {
    return query(
      this.db,
      `SELECT o.id, o.event_type, o.published_at IS NOT NULL AS published,
              EXISTS (SELECT 1 FROM notifications.inbox i WHERE i.event_id = o.id) AS handled
         FROM (SELECT id, event_type, published_at, occurred_at FROM users.outbox
               UNION ALL SELECT id, event_type, published_at, occurred_at FROM orders.outbox) o
        WHERE o.event_type = ANY($1::text[])
        ORDER BY o.occurred_at, o.id`,
      [NOTIFICATIONS_CONSUMES],
    );
  }

  /**
   * Waits until every event for notifications has left its outbox (published_at set):
   * the relay routed it whether or not the service runs. Returns those events.
   */
  async waitUntilPublished(expected: number, timeoutMs = 15_000): Promise<{ id: string; event_type: string; handled: boolean }[]> {
    return eventually(async () => {
      const events = await this.eventsForNotifications();
      return events.length === expected && events.every((e) => e.published) ? events : undefined;
    }, timeoutMs, 100);
  }

  /**
   * Waits for the positive signal that the service is done: every event for notifications
   * in the outboxes has its row in notifications.inbox (handled, committed) and the inbox
   * queue has nothing waiting, active or delayed. Only then may a test count rows.
   */
  async waitUntilDrained(timeoutMs = 30_000): Promise<InboxJobCounts> {
    return eventually(async () => {
      const events = await this.eventsForNotifications();
      if (events.length === 0 || !events.every((e) => e.handled)) return undefined;
      const counts = await this.inboxCounts();
      return counts.waiting + counts.active + counts.delayed === 0 ? counts : undefined;
    }, timeoutMs, 100);
  }

  // --- clients (through the router) -------------------------------------------------------

  async register(tag: string): Promise<Account> {
    const email = uniqueEmail(tag);
    const password = 'correct horse battery';
    const created = await request(this.url).post('/v1/users').send({ email, password, name: tag }).expect(201);
    const login = await request(this.url).post('/v1/auth/login').send({ email, password }).expect(200);
    return { id: created.body.id, email, password, token: login.body.accessToken };
  }

  /** An admin: registered, promoted by SQL (the only way, as `users:promote` does), logged in again. */
  async registerAdmin(tag: string): Promise<Account> {
    const account = await this.register(tag);
    await query(this.db, `UPDATE users.users SET role = 'admin' WHERE id = $1`, [account.id]);
    const login = await request(this.url).post('/v1/auth/login').send({ email: account.email, password: account.password }).expect(200);
    return { ...account, token: login.body.accessToken };
  }

  async createProduct(admin: Account, sku: string, stock = 100): Promise<{ id: string }> {
    return (
      await request(this.url)
        .post('/v1/products')
        .set('Authorization', `Bearer ${admin.token}`)
        .send({ sku, name: `Product ${sku}`, priceCents: 1200, currency: 'EUR', stock })
        .expect(201)
    ).body;
  }

  async placeOrder(customer: Account, productId: string, quantity = 1): Promise<{ id: string; userId: string }> {
    const order = (
      await request(this.url)
        .post('/v1/orders')
        .set('Authorization', `Bearer ${customer.token}`)
        .send({ items: [{ productId, quantity }] })
        .expect(201)
    ).body;
    return { id: order.id, userId: customer.id };
  }

  /** confirm, ship, deliver (an admin) or cancel (the customer or an admin): one orders.order-*.v1 event each. */
  async moveOrder(actor: Account, orderId: string, action: 'confirm' | 'ship' | 'deliver' | 'cancel'): Promise<void> {
    await request(this.url).post(`/v1/orders/${orderId}/${action}`).set('Authorization', `Bearer ${actor.token}`).expect(200);
  }

  // --- teardown ---------------------------------------------------------------------------

  async close(): Promise<void> {
    for (const child of this.processes) child.signal('SIGTERM');
    await Promise.all(
      this.processes.map(async (child) => {
        if (!child.exit) return;
        await withDeadline(child.exit, 15_000, 'exit').catch(() => {
          child.kill();
          return child.exit;
        });
      }),
    );
    await this.routerHandle?.close();
    await this.inboxQueue?.close().catch(() => undefined);
    await deleteRedisPrefix(process.env.TEST_REDIS_URL!, this.prefix);
  }
}

/** One pino line per element, for the lines a process logged with this message. */
export function logLines(processOutput: string, msg: string): Record<string, unknown>[] {
  return processOutput
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        return {};
      }
    })
    .filter((line) => line.msg === msg);
}

function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
    }),
  ]);
}

/**
 * The notifications a test expects, one entry per (user, kind, order): compared with what
 * notifications.notifications holds, by user and by order, so a missing notification and
 * a second one for the same event both fail.
 */
export class NotificationLedger {
  private readonly entries: { userId: string; kind: string; orderId?: string }[] = [];

  welcome(user: { id: string }): void {
    this.entries.push({ userId: user.id, kind: 'welcome' });
  }

  order(order: { id: string; userId: string }, kind: 'order-placed' | 'order-confirmed' | 'order-shipped' | 'order-delivered' | 'order-cancelled'): void {
    this.entries.push({ userId: order.userId, kind, orderId: order.id });
  }

  get size(): number {
    return this.entries.length;
  }

  /** `{ byUser: { <userId>: { <kind>: n } }, byOrder: { <orderId>: { <userId>/<kind>: n } } }` */
  expected(): NotificationCounts {
    const counts: NotificationCounts = { byUser: {}, byOrder: {} };
    for (const { userId, kind, orderId } of this.entries) {
      counts.byUser[userId] ??= {};
      counts.byUser[userId][kind] = (counts.byUser[userId][kind] ?? 0) + 1;
      if (!orderId) continue;
      counts.byOrder[orderId] ??= {};
      counts.byOrder[orderId][`${userId}/${kind}`] = (counts.byOrder[orderId][`${userId}/${kind}`] ?? 0) + 1;
    }
    return counts;
  }

  /** The same shape, read from notifications.notifications for the ledger's users and orders. */
  async actual(db: string): Promise<NotificationCounts> {
    const users = [...new Set(this.entries.map((e) => e.userId))];
    const orders = [...new Set(this.entries.flatMap((e) => (e.orderId ? [e.orderId] : [])))];
    const counts: NotificationCounts = { byUser: {}, byOrder: {} };
    const byUser = await query<{ user_id: string; kind: string; n: number }>(
      db,
      'SELECT user_id, kind, count(*)::int AS n FROM notifications.notifications WHERE user_id = ANY($1::uuid[]) GROUP BY 1, 2',
      [users],
    );
    for (const { user_id, kind, n } of byUser) (counts.byUser[user_id] ??= {})[kind] = n;
    const byOrder = await query<{ order_id: string; user_id: string; kind: string; n: number }>(
      db,
      `SELECT data->>'orderId' AS order_id, user_id, kind, count(*)::int AS n FROM notifications.notifications
        WHERE data->>'orderId' = ANY($1::text[]) GROUP BY 1, 2, 3`,
      [orders],
    );
    for (const { order_id, user_id, kind, n } of byOrder) (counts.byOrder[order_id] ??= {})[`${user_id}/${kind}`] = n;
    return counts;
  }
}

export interface NotificationCounts {
  byUser: Record<string, Record<string, number>>;
  byOrder: Record<string, Record<string, number>>;
}
