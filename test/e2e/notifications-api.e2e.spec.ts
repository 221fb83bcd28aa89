import request from 'supertest';
import { OrderEvents } from '@app/orders/contracts';
import { signUpAndLogin, type SignedUpUser } from '../support/auth-helpers';
import { orderEvent, publishOrderEvent } from '../support/notifications';
import { createTestDatabase, eventually, query, startApi, type RunningApi } from '../support/test-env';

/**
 * The REST side of notifications (docs/api.md, "Notifications"): the caller's list, newest
 * first, with keyset cursors that stay stable while rows arrive; read and read-all;
 * preferences with a webhook secret shown once; the API's error conventions.
 */
describe('Notifications REST API (e2e)', () => {
  let db: string;
  let api: RunningApi;
  let alice: SignedUpUser;
  let bob: SignedUpUser;

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startApi(db, { env: { NOTIFICATIONS_ALLOW_PRIVATE_WEBHOOKS: 'true' } });
    [alice, bob] = await Promise.all([signUpAndLogin(api.url, 'Alice'), signUpAndLogin(api.url, 'Bob')]);
    // Both welcome notifications exist before the tests look at lists.
    await eventually(async () => (await query(db, 'SELECT 1 FROM notifications.notifications WHERE user_id = ANY($1)', [[alice.id, bob.id]])).length === 2);
  });
  afterAll(async () => {
    await api?.close();
  });

  const auth = (user: SignedUpUser) => ({ Authorization: `Bearer ${user.accessToken}` });
  const list = (user: SignedUpUser, params = '') => request(api.url).get(`/v1/notifications${params}`).set(auth(user));

  /** Inserts `count` notifications for `userId` with created_at in groups of three equal values (microseconds included). */
  async function seed(userId: string, count: number, base: string, kind = 'seeded'): Promise<void> {
    await query(
      db,
      `INSERT INTO notifications.notifications (id, user_id, kind, title, body, source_event_id, created_at)
       SELECT gen_random_uuid(), $1, $4, 'Seeded ' || i, 'body', gen_random_uuid(),
              $2::timestamptz - (i / 3) * interval '1 second' + interval '1 microsecond' * 123457
         FROM generate_series(1, $3) AS i`,
      [userId, base, count, kind],
    );
  }

  it('requires a bearer token on every endpoint', async () => {
    const id = '00000000-0000-4000-8000-000000000000';
    for (const [method, path] of [
      ['get', '/v1/notifications'],
      ['post', `/v1/notifications/${id}/read`],
      ['post', '/v1/notifications/read-all'],
      ['get', '/v1/notifications/preferences'],
      ['put', '/v1/notifications/preferences'],
      ['get', '/v1/notifications/stream'],
    ] as const) {
      const response = await request(api.url)[method](path).expect(401);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
  });

  it("lists the caller's own notifications, newest first, with read state and deliveries", async () => {
    const response = await list(alice).expect(200);
    expect(response.body).toEqual({
      items: [
        {
          id: expect.any(String),
          kind: 'welcome',
          title: 'Welcome!',
          body: 'Hi Alice, your account is ready.',
          data: {},
          read: false,
          readAt: null,
          createdAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
          deliveries: [],
        },
      ],
      nextCursor: null,
    });
    // An order event for Alice shows up for her only, with the order's facts as data.
    const order = orderEvent(alice.id, { totalCents: 1999 });
    await publishOrderEvent(db, OrderEvents.placed, order);
    const items = await eventually(async () => {
      const body = (await list(alice).expect(200)).body as { items: { kind: string; data: Record<string, unknown> }[] };
      return body.items.length === 2 ? body.items : undefined;
    });
    expect(items[0]).toMatchObject({ kind: 'order-placed', title: 'Order received', data: { orderId: order.orderId, status: 'pending', totalCents: 1999, currency: 'EUR' } });
    expect(items[1].kind).toBe('welcome');
    expect((await list(bob).expect(200)).body.items.map((n: { kind: string }) => n.kind)).toEqual(['welcome']);
  });

  it('pages with opaque keyset cursors: no repeats, no gaps, even with equal timestamps and rows arriving in between', async () => {
    const carol = await signUpAndLogin(api.url, 'Carol');
    await eventually(async () => (await query(db, 'SELECT 1 FROM notifications.notifications WHERE user_id = $1', [carol.id])).length === 1);
    await seed(carol.id, 44, '2024-06-01T12:00:00Z');
    const expected = (
      await query<{ id: string }>(db, 'SELECT id FROM notifications.notifications WHERE user_id = $1 ORDER BY created_at DESC, id DESC', [carol.id])
    ).map((r) => r.id);
    expect(expected).toHaveLength(45);

    const first = await list(carol, '?limit=20').expect(200);
    expect(first.body.items).toHaveLength(20);
    expect(typeof first.body.nextCursor).toBe('string');
    // Rows arriving while the client pages (newer ones, as in real life) do not shift the pages.
    await seed(carol.id, 10, new Date().toISOString(), 'arrived-later');
    const second = await list(carol, `?limit=20&cursor=${first.body.nextCursor}`).expect(200);
    const third = await list(carol, `?limit=20&cursor=${second.body.nextCursor}`).expect(200);
    expect(third.body.items).toHaveLength(5);
    expect(third.body.nextCursor).toBeNull();
    const seen = [...first.body.items, ...second.body.items, ...third.body.items].map((n: { id: string }) => n.id);
    expect(seen).toEqual(expected);

    // Default page size 20, maximum 100.
    expect((await list(carol).expect(200)).body.items).toHaveLength(20);
    expect((await list(carol, '?limit=100').expect(200)).body.items).toHaveLength(55);
  });

  it.each([
    ['?limit=0', 'limit'],
    ['?limit=101', 'limit'],
    ['?limit=ten', 'limit'],
    ['?unread=maybe', 'unread'],
    ['?cursor=not-a-cursor', 'cursor'],
    [`?cursor=${Buffer.from(JSON.stringify(['2024-01-01T00:00:00.000000Z', 'x'])).toString('base64url')}`, 'cursor'],
    ['?page=2', 'page'],
  ])('answers 400 problem+json naming the parameter for %s', async (params, field) => {
    const response = await list(alice, params).expect(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.body.errors.map((e: { field: string }) => e.field)).toContain(field);
  });

  it('marks one read (idempotent), filters ?unread=true, and hides other users\' notifications behind 404', async () => {
    const dave = await signUpAndLogin(api.url, 'Dave');
    await eventually(async () => (await query(db, 'SELECT 1 FROM notifications.notifications WHERE user_id = $1', [dave.id])).length === 1);
    await seed(dave.id, 3, '2024-01-01T00:00:00Z');
    const all = (await list(dave).expect(200)).body.items as { id: string; read: boolean }[];
    expect(all).toHaveLength(4);
    const target = all[1];

    await request(api.url).post(`/v1/notifications/${target.id}/read`).set(auth(dave)).expect(204);
    await request(api.url).post(`/v1/notifications/${target.id}/read`).set(auth(dave)).expect(204);
    const [row] = await query<{ read_at: Date }>(db, 'SELECT read_at FROM notifications.notifications WHERE id = $1', [target.id]);
    expect(row.read_at).toBeInstanceOf(Date);

    const unread = (await list(dave, '?unread=true').expect(200)).body.items as { id: string }[];
    expect(unread.map((n) => n.id)).toEqual(all.filter((n) => n.id !== target.id).map((n) => n.id));
    const readOne = (await list(dave).expect(200)).body.items.find((n: { id: string }) => n.id === target.id);
    expect(readOne).toMatchObject({ read: true, readAt: expect.any(String) });

    // Another user's notification: 404, and it stays unread.
    const foreign = await request(api.url).post(`/v1/notifications/${all[0].id}/read`).set(auth(alice)).expect(404);
    expect(foreign.body).toMatchObject({ status: 404, code: 'NOTIFICATION.NOT_FOUND' });
    expect((await query(db, 'SELECT read_at FROM notifications.notifications WHERE id = $1', [all[0].id]))[0].read_at).toBeNull();
    await request(api.url).post('/v1/notifications/00000000-0000-4000-8000-000000000000/read').set(auth(dave)).expect(404);
    const bad = await request(api.url).post('/v1/notifications/not-a-uuid/read').set(auth(dave)).expect(400);
    expect(bad.body.errors).toEqual([{ field: 'id', message: 'must be a UUID' }]);

    await request(api.url).post('/v1/notifications/read-all').set(auth(dave)).expect(204);
    expect((await list(dave, '?unread=true').expect(200)).body).toEqual({ items: [], nextCursor: null });
    // Nobody else's notifications were touched.
    expect((await list(bob, '?unread=true').expect(200)).body.items).toHaveLength(1);
  });

  it('GET/PUT preferences: defaults, a webhook secret shown once per new URL, no secret without a URL', async () => {
    const erin = await signUpAndLogin(api.url, 'Erin');
    const path = '/v1/notifications/preferences';
    expect((await request(api.url).get(path).set(auth(erin)).expect(200)).body).toEqual({ email: true, webhookUrl: null });

    const set = await request(api.url).put(path).set(auth(erin)).send({ email: false, webhookUrl: 'http://127.0.0.1:9/hook' }).expect(200);
    expect(set.body).toEqual({ email: false, webhookUrl: 'http://127.0.0.1:9/hook', webhookSecret: expect.stringMatching(/^whsec_[A-Za-z0-9_-]{43}$/) });
    expect((await request(api.url).get(path).set(auth(erin)).expect(200)).body).toEqual({ email: false, webhookUrl: 'http://127.0.0.1:9/hook' });

    // Same URL again: the secret is neither shown nor changed.
    const same = await request(api.url).put(path).set(auth(erin)).send({ email: true, webhookUrl: 'http://127.0.0.1:9/hook' }).expect(200);
    expect(same.body).toEqual({ email: true, webhookUrl: 'http://127.0.0.1:9/hook' });
    const [stored] = await query<{ webhook_secret: string }>(db, 'SELECT webhook_secret FROM notifications.preferences WHERE user_id = $1', [erin.id]);
    expect(stored.webhook_secret).toBe(set.body.webhookSecret);

    const moved = await request(api.url).put(path).set(auth(erin)).send({ email: true, webhookUrl: 'http://127.0.0.1:10/other' }).expect(200);
    expect(moved.body.webhookSecret).toMatch(/^whsec_/);
    expect(moved.body.webhookSecret).not.toBe(set.body.webhookSecret);

    const off = await request(api.url).put(path).set(auth(erin)).send({ email: true, webhookUrl: null }).expect(200);
    expect(off.body).toEqual({ email: true, webhookUrl: null });
    expect(await query(db, 'SELECT webhook_url, webhook_secret FROM notifications.preferences WHERE user_id = $1', [erin.id])).toEqual([
      { webhook_url: null, webhook_secret: null },
    ]);
  });

  it.each([
    [{ email: true }, 'webhookUrl', 'is required'],
    [{ webhookUrl: null }, 'email', 'is required'],
    [{ email: 'yes', webhookUrl: null }, 'email', undefined],
    [{ email: true, webhookUrl: 42 }, 'webhookUrl', undefined],
    [{ email: true, webhookUrl: null, secret: 'mine' }, 'secret', 'is not allowed'],
    [{ email: true, webhookUrl: 'ftp://127.0.0.1/hook' }, 'webhookUrl', 'must use http or https'],
    [{ email: true, webhookUrl: 'http://user:pw@127.0.0.1/hook' }, 'webhookUrl', 'must not contain credentials'],
    [{ email: true, webhookUrl: 'not a url' }, 'webhookUrl', 'must be an absolute http(s) URL'],
  ])('PUT preferences %j → 400 naming %s', async (body, field, message) => {
    const response = await request(api.url).put('/v1/notifications/preferences').set(auth(bob)).send(body).expect(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    const error = (response.body.errors as { field: string; message: string }[]).find((e) => e.field === field);
    expect(error).toBeDefined();
    if (message) expect(error!.message).toBe(message);
    expect(await query(db, 'SELECT 1 FROM notifications.preferences WHERE user_id = $1', [bob.id])).toHaveLength(0);
  });
});
