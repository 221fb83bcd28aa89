import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { UserEvents } from '@app/users/contracts';
import { OrderEvents } from '@app/orders/contracts';
import { WebhookReceiver } from '../support/notifications';
import type { AppProcess } from '../support/processes';
import { eventually, query } from '../support/test-env';
import { logLines, NotificationLedger, SplitDeployment, type Account } from '../support/split-deployment';

/**
 * Issue 9: with notifications extracted, events produced while the service is not running
 * (not started yet, crashed, stopped for a deploy) must wait for it, not be lost. Routing
 * comes from the module manifests compiled into the API, so the API's relays publish
 * every event for notifications to `notifications.inbox` whether or not anything consumes
 * it; the service, whenever it (re)starts, takes them from there, each exactly once.
 *
 * Every assertion about "exactly once" is made after a positive signal that the service is
 * done (SplitDeployment.waitUntilDrained: every routed event has its notifications.inbox
 * row and the inbox queue is empty), never after a fixed sleep.
 */
describe('extracted notifications: start order and downtime lose no event', () => {
  const deployments: SplitDeployment[] = [];
  const webhooks: WebhookReceiver[] = [];
  const deploy = async (tag: string, options?: Parameters<typeof SplitDeployment.create>[1]) => {
    const deployment = await SplitDeployment.create(tag, options);
    deployments.push(deployment);
    return deployment;
  };
  const sku = (tag: string) => `${tag}-${randomBytes(3).toString('hex')}`.toUpperCase();
  /**
   * Ids of the events a process logged as handled, once it logged at least `n` (log lines
   * reach the test through a pipe, possibly after the database shows the effect).
   */
  const handledEventIds = async (app: AppProcess, n: number) =>
    eventually(async () => {
      const ids = logLines(app.text(), 'event handled').map((l) => String(l.eventId));
      return ids.length >= n ? ids.sort() : undefined;
    }, 5_000, 50);
  const count = async (db: string, sql: string, params: unknown[] = []) =>
    Number((await query<{ n: string }>(db, `SELECT count(*) AS n FROM ${sql}`, params))[0].n);

  afterAll(async () => {
    await Promise.all(deployments.map((d) => d.close()));
    await Promise.all(webhooks.map((w) => w.stop()));
  }, 60_000);

  it('API first: events from before the service ever started wait in notifications.inbox, then arrive exactly once', async () => {
    const d = await deploy('start-order-api-first');
    const api = await d.startApi();
    const expected = new NotificationLedger();

    // Only the API runs: no notifications code runs anywhere yet.
    const boss = await d.registerAdmin('boss');
    expected.welcome(boss);
    const product = await d.createProduct(boss, sku('api-first'));
    const customers: Account[] = [];
    for (let i = 0; i < 3; i++) {
      const customer = await d.register(`early-${i}`);
      customers.push(customer);
      expected.welcome(customer);
    }
    for (const customer of [...customers, ...customers]) expected.order(await d.placeOrder(customer, product.id), 'order-placed');

    // Published (published_at set: routed by the manifests, not dropped, not stuck)...
    const events = await d.waitUntilPublished(expected.size);
    expect(events.filter((e) => e.event_type === UserEvents.registered)).toHaveLength(4);
    expect(events.filter((e) => e.event_type === OrderEvents.placed)).toHaveLength(6);
    // ...and waiting, every one of them, in the inbox queue of a service that is not running.
    expect(await d.waitingEventIds()).toEqual(events.map((e) => e.id).sort());
    expect(await d.inboxCounts()).toEqual({ waiting: expected.size, active: 0, delayed: 0, failed: 0 });
    expect(await count(d.db, 'notifications.notifications')).toBe(0);
    expect(await count(d.db, 'notifications.inbox')).toBe(0);
    expect(api.text()).not.toMatch(/"module":"notifications"/);

    // The service starts late and catches up.
    const service = await d.startService();
    expect(await d.waitUntilDrained()).toEqual({ waiting: 0, active: 0, delayed: 0, failed: 0 });
    expect(await expected.actual(d.db)).toEqual(expected.expected());
    expect(await count(d.db, 'notifications.notifications')).toBe(expected.size);
    expect(await handledEventIds(service, events.length)).toEqual(events.map((e) => e.id).sort());
    expect(await count(d.db, 'notifications.dead_letters')).toBe(0);

    // And the late service serves them through the router.
    const page = await eventually(async () => {
      const response = await request(d.url).get('/v1/notifications').set('Authorization', `Bearer ${customers[0].token}`);
      return response.status === 200 ? response.body : undefined;
    }, 10_000, 100);
    expect(page.items.map((n: { kind: string }) => n.kind).sort()).toEqual(['order-placed', 'order-placed', 'welcome']);
  }, 90_000);

  it('service killed in the middle: events produced while it is down wait, and arrive exactly once after the restart', async () => {
    const d = await deploy('start-order-restart');
    await d.startApi();
    await d.startService();
    const expected = new NotificationLedger();

    // Before: the service runs and keeps up.
    const boss = await d.registerAdmin('boss');
    expected.welcome(boss);
    const product = await d.createProduct(boss, sku('restart'));
    const customers = [await d.register('before-0'), await d.register('before-1')];
    customers.forEach((c) => expected.welcome(c));
    const earlyOrders = [];
    for (const customer of customers) {
      const order = await d.placeOrder(customer, product.id);
      earlyOrders.push(order);
      expected.order(order, 'order-placed');
    }
    await d.waitUntilPublished(expected.size);
    await d.waitUntilDrained();
    expect(await expected.actual(d.db)).toEqual(expected.expected());
    const handledBefore = new Set((await d.eventsForNotifications()).map((e) => e.id));

    // The service crashes (no graceful shutdown).
    expect((await d.stopService('SIGKILL')).signal).toBe('SIGKILL');

    // While it is down: new users, new orders, and transitions of the earlier orders.
    const newcomers = [await d.register('during-0'), await d.register('during-1')];
    newcomers.forEach((c) => expected.welcome(c));
    customers.push(...newcomers);
    for (const customer of customers) expected.order(await d.placeOrder(customer, product.id), 'order-placed');
    await d.moveOrder(boss, earlyOrders[0].id, 'confirm');
    expected.order(earlyOrders[0], 'order-confirmed');
    await d.moveOrder(customers[1], earlyOrders[1].id, 'cancel');
    expected.order(earlyOrders[1], 'order-cancelled');

    const events = await d.waitUntilPublished(expected.size);
    const duringDowntime = events.filter((e) => !handledBefore.has(e.id));
    expect(duringDowntime).toHaveLength(2 + 4 + 2);
    expect(duringDowntime.some((e) => e.handled)).toBe(false);
    expect(await d.waitingEventIds()).toEqual(duringDowntime.map((e) => e.id).sort());
    expect(await count(d.db, 'notifications.notifications WHERE user_id = ANY($1::uuid[])', [newcomers.map((c) => c.id)])).toBe(0);

    // Restarted: it takes exactly the events that waited, each once.
    const restarted = await d.startService();
    await d.waitUntilDrained();
    expect(await expected.actual(d.db)).toEqual(expected.expected());
    expect(await count(d.db, 'notifications.notifications')).toBe(expected.size);
    expect(await handledEventIds(restarted, duringDowntime.length)).toEqual(duringDowntime.map((e) => e.id).sort());
    expect(await count(d.db, 'notifications.dead_letters')).toBe(0);
  }, 90_000);

  it("erasure while the service is down: users.user-deleted.v1 waits, and the user's notifications data is erased when it is back", async () => {
    const webhook = await new WebhookReceiver().start();
    webhooks.push(webhook);
    const d = await deploy('start-order-erasure', { serviceEnv: { NOTIFICATIONS_ALLOW_PRIVATE_WEBHOOKS: 'true' } });
    await d.startApi();
    await d.startService();
    const expected = new NotificationLedger();

    const boss = await d.registerAdmin('boss');
    expected.welcome(boss);
    const product = await d.createProduct(boss, sku('erasure'));
    const victim = await d.register('victim');
    const bystander = await d.register('bystander');
    expected.welcome(bystander);
    // Data in every table the erasure covers: recipient and welcome (from the registration),
    // preferences with a webhook URL and secret, and the order's notification with its
    // webhook delivery (set after the welcome, so the welcome has none).
    await d.waitUntilDrained();
    await request(d.url).put('/v1/notifications/preferences').set('Authorization', `Bearer ${victim.token}`)
      .send({ email: true, webhookUrl: webhook.url }).expect(200);
    await d.placeOrder(victim, product.id);
    expected.order(await d.placeOrder(bystander, product.id), 'order-placed');
    await d.waitUntilPublished(5);
    await d.waitUntilDrained();
    await eventually(async () => (await count(d.db, `notifications.deliveries WHERE user_id = $1 AND status = 'sent'`, [victim.id])) === 1, 15_000, 100);
    expect(webhook.received).toHaveLength(1);

    const dataOf = async (userId: string) => ({
      notifications: await count(d.db, 'notifications.notifications WHERE user_id = $1', [userId]),
      deliveries: await count(d.db, 'notifications.deliveries WHERE user_id = $1', [userId]),
      preferences: await count(d.db, 'notifications.preferences WHERE user_id = $1', [userId]),
      recipients: await count(d.db, 'notifications.recipients WHERE user_id = $1', [userId]),
      erased: await count(d.db, 'notifications.erased_users WHERE user_id = $1', [userId]),
    });
    const victimBefore = await dataOf(victim.id);
    expect(victimBefore).toEqual({ notifications: 2, deliveries: 1, preferences: 1, recipients: 1, erased: 0 });
    const bystanderBefore = await dataOf(bystander.id);

    // A graceful stop (a deploy, say); then the account is erased on the API.
    expect((await d.stopService('SIGTERM')).code).toBe(0);
    await request(d.url).delete('/v1/users/me').set('Authorization', `Bearer ${victim.token}`).expect(204);

    // users.user-deleted.v1, and the orders module (in the API) cancels the pending order:
    // orders.order-cancelled.v1 (reason account-deleted). Both are published and wait. The
    // victim's published users.user-registered.v1 (email, name) left the users outbox with
    // the erasure, so a replay cannot bring it back: 5 before, minus 1, plus these 2.
    const events = await d.waitUntilPublished(6);
    const deleted = events.find((e) => e.event_type === UserEvents.deleted)!;
    const cancelled = events.find((e) => e.event_type === OrderEvents.cancelled)!;
    expect(deleted).toBeDefined();
    expect(cancelled).toBeDefined();
    expect(await d.waitingEventIds()).toEqual([deleted.id, cancelled.id].sort());
    // Nothing is erased yet: the erasure waits with its event.
    expect(await dataOf(victim.id)).toEqual(victimBefore);

    const restarted = await d.startService();
    await d.waitUntilDrained();
    expect(await handledEventIds(restarted, 2)).toEqual([deleted.id, cancelled.id].sort());
    // Exactly what EraseOnUserDeletedHandler erases, and the tombstone; the late
    // cancellation (account-deleted) creates nothing.
    expect(await dataOf(victim.id)).toEqual({ notifications: 0, deliveries: 0, preferences: 0, recipients: 0, erased: 1 });
    expect(await dataOf(bystander.id)).toEqual(bystanderBefore);
    expect(await expected.actual(d.db)).toEqual(expected.expected());
    expect(await count(d.db, 'notifications.dead_letters')).toBe(0);
  }, 90_000);
});
