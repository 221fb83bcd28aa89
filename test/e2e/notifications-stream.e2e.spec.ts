import request from 'supertest';
import { OrderEvents } from '@app/orders/contracts';
import { EventStreams, inboxQueueName, QueueFactory } from '@app/platform';
import { signUpAndLogin, type SignedUpUser } from '../support/auth-helpers';
import { notificationsOf, orderEvent, publishOrderEvent, SseClient } from '../support/notifications';
import { createTestDatabase, eventually, startApi, type RunningApi } from '../support/test-env';

/**
 * GET /v1/notifications/stream across instances: the stream is open on one instance while
 * another instance's consumer creates the notification, and Redis pub/sub carries it over.
 * Also heartbeats, replay after a reconnect, the end of the stream when the session or the
 * account ends, and a shutdown that does not wait for clients to hang up.
 */
describe('Live notifications over SSE, across instances (e2e)', () => {
  let db: string;
  let streaming: RunningApi; // holds the streams; its inbox consumer is paused
  let consuming: RunningApi; // the only instance that consumes notifications.inbox
  const clients: SseClient[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    const env = { NOTIFICATIONS_SSE_HEARTBEAT_MS: '200' };
    streaming = await startApi(db, { env });
    consuming = await startApi(db, { env, redisPrefix: streaming.config.env.REDIS_KEY_PREFIX });
    // Locally paused: this instance takes no inbox jobs, so every notification is made elsewhere.
    await streaming.app.get(QueueFactory).get(inboxQueueName('notifications')).pause(true);
  });
  afterAll(async () => {
    for (const client of clients) client.close();
    await consuming?.app.close();
    await streaming?.close();
  });

  async function user(name: string): Promise<SignedUpUser> {
    const signedUp = await signUpAndLogin(streaming.url, name);
    await eventually(async () => (await notificationsOf(db, signedUp.id)).length === 1);
    return signedUp;
  }

  async function connect(api: RunningApi, who: SignedUpUser, headers: Record<string, string> = {}): Promise<SseClient> {
    const client = await SseClient.connect(api.url, who.accessToken, headers);
    clients.push(client);
    return client;
  }

  it('streams a notification created by the other instance, and only the caller\'s own', async () => {
    const [alice, bob] = await Promise.all([user('Alice'), user('Bob')]);
    const stream = await connect(streaming, alice);
    // Bob streams from the same instance: it hears Bob's channel too, and shows when Bob's notification went out.
    const bobStream = await connect(streaming, bob);
    expect(stream.status).toBe(200);
    expect(stream.headers!['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(stream.headers!['cache-control']).toBe('no-cache, no-transform');
    expect(stream.headers!['x-request-id']).toEqual(expect.any(String));

    const order = orderEvent(alice.id);
    const eventId = await publishOrderEvent(db, OrderEvents.placed, order);
    await publishOrderEvent(db, OrderEvents.placed, orderEvent(bob.id));
    const live = await stream.waitForNotification((n) => n.kind === 'order-placed');
    const [row] = (await notificationsOf(db, alice.id)).filter((n) => n.source_event_id === eventId);
    expect(live).toMatchObject({ id: row.id, kind: 'order-placed', title: 'Order received', read: false, data: { orderId: order.orderId } });
    expect(stream.events.find((e) => e.event === 'notification')!.id).toBe(row.id);

    await bobStream.waitForNotification((n) => n.kind === 'order-placed');
    // Messages reach this instance in the order they were published: once a later notification of
    // Alice's arrived, anything of Bob's sent her way would have arrived before it.
    const laterId = await publishOrderEvent(db, OrderEvents.confirmed, { ...order, status: 'confirmed' });
    await stream.waitForNotification((n) => n.kind === 'order-confirmed');
    const own = (await notificationsOf(db, alice.id)).filter((n) => [eventId, laterId].includes(n.source_event_id)).map((n) => n.id);
    expect(stream.notifications().map((n) => n.id)).toEqual(own);
  });

  it('sends heartbeat comments while idle', async () => {
    const carol = await user('Carol');
    const stream = await connect(consuming, carol);
    await eventually(() => Promise.resolve(stream.comments.filter((c) => c.startsWith('heartbeat')).length >= 2), 3000);
    expect(stream.ended).toBe(false);
  });

  it('replays what a reconnecting client missed (Last-Event-ID), then continues live', async () => {
    const dave = await user('Dave');
    const first = await connect(streaming, dave);
    await publishOrderEvent(db, OrderEvents.placed, orderEvent(dave.id));
    const seen = await first.waitForNotification((n) => n.kind === 'order-placed');
    first.close();

    const missed = [OrderEvents.confirmed, OrderEvents.shipped];
    for (const type of missed) await publishOrderEvent(db, type, orderEvent(dave.id));
    await eventually(async () => (await notificationsOf(db, dave.id)).length === 4);

    const again = await connect(streaming, dave, { 'last-event-id': String(seen.id) });
    await eventually(() => Promise.resolve(again.notifications().length === 2));
    expect(again.notifications().map((n) => n.kind).sort()).toEqual(['order-confirmed', 'order-shipped']);
    await publishOrderEvent(db, OrderEvents.delivered, orderEvent(dave.id));
    await again.waitForNotification((n) => n.kind === 'order-delivered');
    expect(again.notifications()).toHaveLength(3);
  });

  it('ends the stream at the next heartbeat after logout, and at once when the account is erased', async () => {
    const erin = await user('Erin');
    const loggedOut = await connect(streaming, erin);
    await request(consuming.url).post('/v1/auth/logout').set({ Authorization: `Bearer ${erin.accessToken}` }).expect(204);
    await eventually(() => Promise.resolve(loggedOut.ended), 3000);

    const frank = await user('Frank');
    const erased = await connect(streaming, frank);
    await request(consuming.url).delete('/v1/users/me').set({ Authorization: `Bearer ${frank.accessToken}` }).expect(204);
    await eventually(() => Promise.resolve(erased.ended), 5000);
  });

  it('closes open streams on shutdown: app.close() does not wait for clients to hang up', async () => {
    const extra = await startApi(db, { env: { NOTIFICATIONS_SSE_HEARTBEAT_MS: '200' }, redisPrefix: streaming.config.env.REDIS_KEY_PREFIX });
    const grace = await user('Grace');
    const streams = await Promise.all([connect(extra, grace), connect(extra, grace)]);
    expect(extra.app.get(EventStreams).openCount).toBe(2);
    const started = Date.now();
    // app.close only: RunningApi.close would also delete the Redis keys the other instances use.
    await extra.app.close();
    expect(Date.now() - started).toBeLessThan(5000);
    await eventually(() => Promise.resolve(streams.every((s) => s.ended)), 2000);
    // The other instances still stream.
    const still = await connect(streaming, grace);
    await publishOrderEvent(db, OrderEvents.placed, orderEvent(grace.id));
    await still.waitForNotification((n) => n.kind === 'order-placed');
  });
});
