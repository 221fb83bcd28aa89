import request from 'supertest';
import { OrderEvents, type OrderEventType, type OrderStatus } from '@app/orders/contracts';
import { UserEvents } from '@app/users/contracts';
import { signUpAndLogin, type SignedUpUser } from '../support/auth-helpers';
import { deliveriesOf, notificationsOf, orderEvent, publishOrderEvent, redeliver, WebhookReceiver } from '../support/notifications';
import { eventsSettled } from '../support/settled';
import { createTestDatabase, eventually, query, startApi, type RunningApi } from '../support/test-env';

/**
 * The notifications module's consumers: one notification per (event, user) for the welcome
 * and every order event, however often an event is delivered, and erasure on
 * users.user-deleted.v1. Events enter through the producers' outboxes, as the producing
 * modules' use cases write them, and travel relay → Bull → inbox for real.
 */
describe('Notifications consumers (integration)', () => {
  let db: string;
  let api: RunningApi;
  let webhook: WebhookReceiver;

  beforeAll(async () => {
    db = await createTestDatabase();
    webhook = await new WebhookReceiver().start();
    api = await startApi(db, { env: { NOTIFICATIONS_ALLOW_PRIVATE_WEBHOOKS: 'true', NOTIFICATIONS_DELIVERY_BACKOFF_BASE_MS: '20' } });
  });
  afterAll(async () => {
    await api?.close();
    await webhook?.stop();
  });

  const inboxRow = (eventId: string) => query(db, 'SELECT 1 FROM notifications.inbox WHERE event_id = $1', [eventId]);
  const handled = (eventId: string) => eventually(async () => (await inboxRow(eventId)).length === 1);

  async function newUser(name: string): Promise<SignedUpUser> {
    const user = await signUpAndLogin(api.url, name);
    await eventually(async () => (await notificationsOf(db, user.id)).length === 1);
    return user;
  }

  it('users.user-registered.v1 → a welcome notification and the recipient address, from the event alone', async () => {
    const user = await newUser('Ada');
    expect((await notificationsOf(db, user.id)).map((n) => n.kind)).toEqual(['welcome']);
    expect(await query(db, 'SELECT email, name FROM notifications.recipients WHERE user_id = $1', [user.id])).toEqual([{ email: user.email, name: 'Ada' }]);
  });

  it('each order event → exactly one notification of its kind', async () => {
    const user = await newUser('Orderer');
    const order = orderEvent(user.id);
    const steps: [OrderEventType, string, OrderStatus][] = [
      [OrderEvents.placed, 'order-placed', 'pending'],
      [OrderEvents.confirmed, 'order-confirmed', 'confirmed'],
      [OrderEvents.shipped, 'order-shipped', 'shipped'],
      [OrderEvents.delivered, 'order-delivered', 'delivered'],
      [OrderEvents.cancelled, 'order-cancelled', 'cancelled'],
      [OrderEvents.expired, 'order-expired', 'expired'],
    ];
    const ids = [];
    for (const [type, , status] of steps) ids.push(await publishOrderEvent(db, type, { ...order, status }));
    await Promise.all(ids.map(handled));
    const rows = await notificationsOf(db, user.id);
    expect(rows.map((n) => n.kind).sort()).toEqual(['welcome', ...steps.map(([, kind]) => kind)].sort());
    expect(new Set(rows.map((n) => n.source_event_id))).toEqual(new Set([...ids, rows.find((n) => n.kind === 'welcome')!.source_event_id]));
  });

  it('a redelivered event (one by one, concurrently, or with its inbox row lost) has no second effect', async () => {
    const user = await newUser('Redelivered');
    await request(api.url)
      .put('/v1/notifications/preferences')
      .set({ Authorization: `Bearer ${user.accessToken}` })
      .send({ email: true, webhookUrl: webhook.url })
      .expect(200);
    const payload = orderEvent(user.id);
    const eventId = await publishOrderEvent(db, OrderEvents.placed, payload);
    await handled(eventId);
    const event = { id: eventId, type: OrderEvents.placed, producer: 'orders', payload };

    await redeliver(api, event);
    await Promise.all(Array.from({ length: 5 }, () => redeliver(api, event)));
    // The inbox row gone (say, pruned): the unique (source_event_id, user_id) key still holds.
    await query(db, 'DELETE FROM notifications.inbox WHERE event_id = $1', [eventId]);
    await redeliver(api, event);

    const placed = (await notificationsOf(db, user.id)).filter((n) => n.kind === 'order-placed');
    expect(placed).toHaveLength(1);
    const deliveries = await deliveriesOf(db, user.id, 'webhook');
    expect(deliveries.filter((d) => d.notification_id === placed[0].id)).toHaveLength(1);
    // And the receiver got that notification once: counted when its delivery is sent and
    // nothing is left that could call again (no event, delivery or retry still under way).
    await eventually(async () => (await deliveriesOf(db, user.id, 'webhook')).find((d) => d.notification_id === placed[0].id)?.status === 'sent');
    await eventsSettled(api.app, db);
    expect(webhook.received.filter((r) => r.body.includes(placed[0].id))).toHaveLength(1);
  });

  it('users.user-deleted.v1 erases notifications, deliveries, preferences and the address; late events create nothing', async () => {
    const doomed = await newUser('Doomed');
    const keeper = await newUser('Keeper');
    await request(api.url)
      .put('/v1/notifications/preferences')
      .set({ Authorization: `Bearer ${doomed.accessToken}` })
      .send({ email: false, webhookUrl: webhook.url })
      .expect(200);
    const placed = await publishOrderEvent(db, OrderEvents.placed, orderEvent(doomed.id));
    await publishOrderEvent(db, OrderEvents.placed, orderEvent(keeper.id));
    await handled(placed);
    await eventually(async () => (await deliveriesOf(db, doomed.id)).length === 1);

    await request(api.url).delete('/v1/users/me').set({ Authorization: `Bearer ${doomed.accessToken}` }).expect(204);
    const tables = ['notifications', 'deliveries', 'preferences', 'recipients'];
    await eventually(async () => {
      for (const table of tables) {
        if ((await query(db, `SELECT 1 FROM notifications.${table} WHERE user_id = $1`, [doomed.id])).length) return false;
      }
      return true;
    });
    expect(await query(db, 'SELECT 1 FROM notifications.erased_users WHERE user_id = $1', [doomed.id])).toHaveLength(1);
    const [deletedEvent] = await query<{ event_id: string }>(db, `SELECT event_id FROM notifications.inbox WHERE event_type = $1`, [UserEvents.deleted]);
    expect(deletedEvent).toBeDefined();

    // Events that arrive afterwards (an expiry that was already under way, the cancellation the
    // erasure caused) create nothing: the tombstone and the erasure reason both stop them.
    const late = [
      await publishOrderEvent(db, OrderEvents.expired, orderEvent(doomed.id, { status: 'expired' })),
      await publishOrderEvent(db, OrderEvents.cancelled, orderEvent(doomed.id, { status: 'cancelled', reason: 'account-deleted' })),
    ];
    await Promise.all(late.map(handled));
    expect(await notificationsOf(db, doomed.id)).toEqual([]);
    expect(await deliveriesOf(db, doomed.id)).toEqual([]);
    // Other users keep everything.
    expect((await notificationsOf(db, keeper.id)).map((n) => n.kind).sort()).toEqual(['order-placed', 'welcome']);
    expect(await query(db, 'SELECT 1 FROM notifications.recipients WHERE user_id = $1', [keeper.id])).toHaveLength(1);
  });
});
