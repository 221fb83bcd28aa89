import { randomUUID } from 'node:crypto';
import { getQueueToken } from '@nestjs/bull';
import type { Job, Queue } from 'bull';
import request from 'supertest';
import { OrderEvents } from '@app/orders/contracts';
import { createTestDatabase, eventually, query, startApi, type RunningApi } from '../support/test-env';
import { signUpAndLogin, testTokens } from '../support/auth-helpers';

describe('Orders: catalogue, placement, idempotency, lifecycle, expiry (e2e)', () => {
  let db: string;
  let api: RunningApi;
  let admin: string;
  const mint = (role: 'customer' | 'admin' = 'customer', userId: string = randomUUID()) =>
    ({ userId, token: testTokens(api.config).sign({ userId, role, sessionId: randomUUID() }).token });
  const as = (token: string) => ({ Authorization: `Bearer ${token}` });

  async function product(stock: number, priceCents = 1000, sku = `SKU-${randomUUID().slice(0, 8)}`) {
    const response = await request(api.url).post('/v1/products').set(as(admin)).send({ sku, name: `Product ${sku}`, priceCents, currency: 'EUR', stock }).expect(201);
    return response.body as { id: string; sku: string; stock: number };
  }
  const stockOf = async (id: string) => (await query<{ stock: number }>(db, 'SELECT stock FROM orders.products WHERE id = $1', [id]))[0].stock;
  const place = (token: string, items: unknown, headers: Record<string, string> = {}) =>
    request(api.url).post('/v1/orders').set(as(token)).set(headers).send({ items } as object);

  beforeAll(async () => {
    db = await createTestDatabase();
    // Tokens are minted for sessions the users module never stored: a revocation check that
    // times out in Redis on a busy machine would fall back to Postgres and answer 401.
    api = await startApi(db, { env: { RATE_LIMIT_PER_MINUTE: '100000', REDIS_REQUEST_TIMEOUT_MS: '2000' } });
    admin = mint('admin').token;
  });
  afterAll(async () => {
    await api?.close();
  });

  /** The order's events the relay has published, in commit order (published rows stay in the outbox for replay). */
  async function tapped(orderId: string): Promise<string[]> {
    const rows = await query<{ event_type: string }>(
      db,
      `SELECT event_type FROM orders.outbox WHERE payload->>'orderId' = $1 AND published_at IS NOT NULL ORDER BY seq`,
      [orderId],
    );
    return rows.map((r) => r.event_type);
  }

  describe('catalogue', () => {
    it('admins create and patch products; customers list them but cannot write (403)', async () => {
      const created = await product(5, 1999);
      expect(created).toMatchObject({ stock: 5 });
      const customer = mint().token;
      await request(api.url).post('/v1/products').set(as(customer)).send({ sku: 'X-1', name: 'x', priceCents: 1, currency: 'EUR', stock: 1 }).expect(403);
      await request(api.url).patch(`/v1/products/${created.id}`).set(as(customer)).send({ stock: 9 }).expect(403);
      // An absolute stock level needs the ETag read before (orders-stock.e2e.spec.ts covers If-Match).
      const patched = await request(api.url).patch(`/v1/products/${created.id}`).set(as(admin)).set('If-Match', '"1"').send({ priceCents: 2099, stock: 7 }).expect(200);
      expect(patched.body).toMatchObject({ priceCents: 2099, stock: 7, sku: created.sku });
      await request(api.url).patch(`/v1/products/${randomUUID()}`).set(as(admin)).send({ stockDelta: 1 }).expect(404);
      await request(api.url).patch(`/v1/products/${created.id}`).set(as(admin)).send({}).expect(400);
      await request(api.url).get('/v1/products').expect(401);
    });

    it('rejects a duplicate SKU in any letter case with 409', async () => {
      const p = await product(1);
      const response = await request(api.url).post('/v1/products').set(as(admin)).send({ sku: p.sku.toLowerCase(), name: 'dup', priceCents: 1, currency: 'EUR', stock: 1 }).expect(409);
      expect(response.body.code).toBe('PRODUCT.DUPLICATE_SKU');
    });

    it('pages the catalogue with an opaque cursor and no duplicates or gaps', async () => {
      for (let i = 0; i < 5; i++) await product(1);
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: request.Response = await request(api.url).get('/v1/products').query({ limit: 2, ...(cursor ? { cursor } : {}) }).set(as(mint().token)).expect(200);
        seen.push(...page.body.items.map((p: { id: string }) => p.id));
        cursor = page.body.nextCursor;
      } while (cursor);
      const all = await query<{ id: string }>(db, 'SELECT id FROM orders.products');
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen.sort()).toEqual(all.map((r) => r.id).sort());
      await request(api.url).get('/v1/products?cursor=garbage').set(as(admin)).expect(400);
      await request(api.url).get('/v1/products?limit=101').set(as(admin)).expect(400);
    });
  });

  describe('placing an order', () => {
    it('takes prices from the catalogue and stock in the same transaction; emits order-placed', async () => {
      const a = await product(10, 1250);
      const b = await product(3, 499);
      const buyer = mint();
      const response = await place(buyer.token, [{ productId: a.id, quantity: 2 }, { productId: b.id, quantity: 3 }]).expect(201);
      expect(response.body).toMatchObject({
        userId: buyer.userId,
        status: 'pending',
        totalCents: 2 * 1250 + 3 * 499,
        currency: 'EUR',
        items: [
          { productId: a.id, sku: a.sku, quantity: 2, unitPriceCents: 1250, name: expect.any(String) },
          { productId: b.id, sku: b.sku, quantity: 3, unitPriceCents: 499, name: expect.any(String) },
        ],
      });
      expect(await stockOf(a.id)).toBe(8);
      expect(await stockOf(b.id)).toBe(0);
      await eventually(async () => (await tapped(response.body.id)).includes(OrderEvents.placed));
    });

    it('rejects a client-sent price, duplicate lines and out-of-range quantities with 400', async () => {
      const p = await product(10);
      const buyer = mint().token;
      const priced = await place(buyer, [{ productId: p.id, quantity: 1, unitPriceCents: 1 }]).expect(400);
      expect(priced.body.errors).toEqual([{ field: 'items[0].unitPriceCents', message: 'is not allowed' }]);
      const dup = await place(buyer, [{ productId: p.id, quantity: 1 }, { productId: p.id, quantity: 2 }]).expect(400);
      expect(dup.body.errors).toEqual([{ field: 'items[1].productId', message: 'duplicates an earlier line' }]);
      await place(buyer, [{ productId: p.id, quantity: 0 }]).expect(400);
      await place(buyer, [{ productId: p.id, quantity: 1001 }]).expect(400);
      await place(buyer, []).expect(400);
      await place(buyer, Array.from({ length: 101 }, () => ({ productId: randomUUID(), quantity: 1 }))).expect(400);
      await place(buyer, [{ productId: 'nope', quantity: 1 }]).expect(400);
      expect(await stockOf(p.id)).toBe(10);
    });

    it('answers 404 for an unknown product and 409 insufficient-stock naming the product; nothing is written', async () => {
      const plenty = await product(10);
      const scarce = await product(1);
      const buyer = mint();
      const unknown = randomUUID();
      const missing = await place(buyer.token, [{ productId: plenty.id, quantity: 1 }, { productId: unknown, quantity: 1 }]).expect(404);
      expect(missing.body).toMatchObject({ code: 'ORDER.PRODUCT_NOT_FOUND', productId: unknown });
      const short = await place(buyer.token, [{ productId: plenty.id, quantity: 2 }, { productId: scarce.id, quantity: 2 }]).expect(409);
      expect(short.body.type).toMatch(/insufficient-stock$/);
      expect(short.body).toMatchObject({ productId: scarce.id, sku: scarce.sku, requested: 2 });
      expect(short.body.detail).toContain(scarce.sku);
      expect(await stockOf(plenty.id)).toBe(10);
      expect(await query(db, 'SELECT 1 FROM orders.orders WHERE user_id = $1', [buyer.userId])).toHaveLength(0);
    });

    it('flash sale: stock 10, 200 concurrent orders from different users → exactly 10 × 201 and 190 × 409, stock 0', async () => {
      const hot = await product(10);
      const results = await Promise.all(Array.from({ length: 200 }, () => place(mint().token, [{ productId: hot.id, quantity: 1 }])));
      const statuses = results.map((r) => r.status);
      expect(statuses.filter((s) => s === 201)).toHaveLength(10);
      expect(statuses.filter((s) => s === 409)).toHaveLength(190);
      expect(results.filter((r) => r.status === 409).every((r) => /insufficient-stock$/.test(r.body.type))).toBe(true);
      expect(await stockOf(hot.id)).toBe(0);
      const sold = await query<{ n: string }>(db, 'SELECT coalesce(sum(quantity), 0) AS n FROM orders.order_lines WHERE product_id = $1', [hot.id]);
      expect(sold[0].n).toBe('10');
    }, 60_000);
  });

  describe('Idempotency-Key', () => {
    it('replays the first response for the same key and body, creating nothing new', async () => {
      const p = await product(10);
      const buyer = mint();
      const first = await place(buyer.token, [{ productId: p.id, quantity: 1 }], { 'Idempotency-Key': 'order-1' }).expect(201);
      const again = await place(buyer.token, [{ productId: p.id, quantity: 1 }], { 'Idempotency-Key': 'order-1' }).expect(201);
      expect(again.body).toEqual(first.body);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(await stockOf(p.id)).toBe(9);
      // The same key from another user is another key.
      await place(mint().token, [{ productId: p.id, quantity: 1 }], { 'Idempotency-Key': 'order-1' }).expect(201);
      expect(await stockOf(p.id)).toBe(8);
    });

    it('answers 422 for the same key with a different body', async () => {
      const p = await product(10);
      const buyer = mint().token;
      await place(buyer, [{ productId: p.id, quantity: 1 }], { 'Idempotency-Key': 'k-422' }).expect(201);
      const other = await place(buyer, [{ productId: p.id, quantity: 2 }], { 'Idempotency-Key': 'k-422' }).expect(422);
      expect(other.body.code).toBe('IDEMPOTENCY.KEY_REUSED');
    });

    it('replays a stored 409 (the first outcome), and does not store validation failures', async () => {
      const p = await product(1);
      const buyer = mint().token;
      await place(buyer, [{ productId: p.id, quantity: 5 }], { 'Idempotency-Key': 'k-409' }).expect(409);
      await request(api.url).patch(`/v1/products/${p.id}`).set(as(admin)).send({ stockDelta: 99 }).expect(200);
      const replay = await place(buyer, [{ productId: p.id, quantity: 5 }], { 'Idempotency-Key': 'k-409' }).expect(409);
      expect(replay.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(replay.body.type).toMatch(/insufficient-stock$/);
      await place(buyer, [{ productId: p.id, quantity: 0 }], { 'Idempotency-Key': 'k-400' }).expect(400);
      await place(buyer, [{ productId: p.id, quantity: 1 }], { 'Idempotency-Key': 'k-400' }).expect(201);
    });

    it('20 concurrent requests with one key create exactly one order; the others replay it or get 409', async () => {
      const p = await product(100);
      const buyer = mint();
      const results = await Promise.all(Array.from({ length: 20 }, () => place(buyer.token, [{ productId: p.id, quantity: 1 }], { 'Idempotency-Key': 'burst' })));
      const statuses = results.map((r) => r.status);
      expect(statuses.every((s) => s === 201 || s === 409)).toBe(true);
      const ids = new Set(results.filter((r) => r.status === 201).map((r) => r.body.id));
      expect(ids.size).toBe(1);
      expect(await query(db, 'SELECT 1 FROM orders.orders WHERE user_id = $1', [buyer.userId])).toHaveLength(1);
      expect(await stockOf(p.id)).toBe(99);
      results.filter((r) => r.status === 409).forEach((r) => expect(r.body.code).toBe('IDEMPOTENCY.REQUEST_IN_PROGRESS'));
    });

    it('rejects a malformed key with 400', async () => {
      await place(mint().token, [{ productId: randomUUID(), quantity: 1 }], { 'Idempotency-Key': 'x'.repeat(256) }).expect(400);
    });
  });

  describe('lifecycle and access', () => {
    it('walks pending → confirmed → shipped → delivered (admin), emitting an event per step; illegal moves are 409', async () => {
      const p = await product(5);
      const order = (await place(mint().token, [{ productId: p.id, quantity: 1 }]).expect(201)).body;
      await request(api.url).post(`/v1/orders/${order.id}/ship`).set(as(admin)).expect(409);
      for (const [action, status] of [['confirm', 'confirmed'], ['ship', 'shipped'], ['deliver', 'delivered']]) {
        const moved = await request(api.url).post(`/v1/orders/${order.id}/${action}`).set(as(admin)).expect(200);
        expect(moved.body.status).toBe(status);
      }
      const cancel = await request(api.url).post(`/v1/orders/${order.id}/cancel`).set(as(admin)).expect(409);
      expect(cancel.body.code).toBe('ORDER.ILLEGAL_TRANSITION');
      await eventually(async () => (await tapped(order.id)).length === 4);
      expect(await tapped(order.id)).toEqual([OrderEvents.placed, OrderEvents.confirmed, OrderEvents.shipped, OrderEvents.delivered]);
    });

    it('the owner cancels a pending or confirmed order and the stock comes back; shipped is 409', async () => {
      const p = await product(5);
      const buyer = mint();
      const a = (await place(buyer.token, [{ productId: p.id, quantity: 2 }]).expect(201)).body;
      const b = (await place(buyer.token, [{ productId: p.id, quantity: 1 }]).expect(201)).body;
      const c = (await place(buyer.token, [{ productId: p.id, quantity: 1 }]).expect(201)).body;
      expect(await stockOf(p.id)).toBe(1);
      expect((await request(api.url).post(`/v1/orders/${a.id}/cancel`).set(as(buyer.token)).expect(200)).body.status).toBe('cancelled');
      await request(api.url).post(`/v1/orders/${b.id}/confirm`).set(as(admin)).expect(200);
      await request(api.url).post(`/v1/orders/${b.id}/cancel`).set(as(buyer.token)).expect(200);
      expect(await stockOf(p.id)).toBe(4);
      await request(api.url).post(`/v1/orders/${c.id}/confirm`).set(as(admin)).expect(200);
      await request(api.url).post(`/v1/orders/${c.id}/ship`).set(as(admin)).expect(200);
      await request(api.url).post(`/v1/orders/${c.id}/cancel`).set(as(buyer.token)).expect(409);
      expect(await stockOf(p.id)).toBe(4);
      await request(api.url).post(`/v1/orders/${a.id}/cancel`).set(as(buyer.token)).expect(409);
      await eventually(async () => (await tapped(a.id)).includes(OrderEvents.cancelled));
    });

    it("another user's order is 404 for read and cancel; a customer calling admin transitions gets 403", async () => {
      const p = await product(5);
      const owner = mint();
      const stranger = mint();
      const order = (await place(owner.token, [{ productId: p.id, quantity: 1 }]).expect(201)).body;
      await request(api.url).get(`/v1/orders/${order.id}`).set(as(owner.token)).expect(200);
      await request(api.url).get(`/v1/orders/${order.id}`).set(as(admin)).expect(200);
      const hidden = await request(api.url).get(`/v1/orders/${order.id}`).set(as(stranger.token)).expect(404);
      const unknown = await request(api.url).get(`/v1/orders/${randomUUID()}`).set(as(stranger.token)).expect(404);
      expect({ ...hidden.body, instance: undefined }).toEqual({ ...unknown.body, instance: undefined });
      await request(api.url).post(`/v1/orders/${order.id}/cancel`).set(as(stranger.token)).expect(404);
      for (const action of ['confirm', 'ship', 'deliver']) {
        await request(api.url).post(`/v1/orders/${order.id}/${action}`).set(as(owner.token)).expect(403);
      }
      await request(api.url).get('/v1/orders/not-a-uuid').set(as(owner.token)).expect(400);
    });

    it("lists only the caller's orders, newest first, filtered by status, in stable cursor pages", async () => {
      const p = await product(50);
      const buyer = mint();
      const placed: string[] = [];
      for (let i = 0; i < 5; i++) placed.push((await place(buyer.token, [{ productId: p.id, quantity: 1 }]).expect(201)).body.id);
      await request(api.url).post(`/v1/orders/${placed[0]}/cancel`).set(as(buyer.token)).expect(200);
      await place(mint().token, [{ productId: p.id, quantity: 1 }]).expect(201);
      const first = await request(api.url).get('/v1/orders?limit=2').set(as(buyer.token)).expect(200);
      // A new order arriving between pages must not shift the next page.
      placed.push((await place(buyer.token, [{ productId: p.id, quantity: 1 }]).expect(201)).body.id);
      const rest: string[] = [];
      let cursor: string | null = first.body.nextCursor;
      while (cursor) {
        const page: request.Response = await request(api.url).get('/v1/orders').query({ limit: 2, cursor }).set(as(buyer.token)).expect(200);
        rest.push(...page.body.items.map((o: { id: string }) => o.id));
        cursor = page.body.nextCursor;
      }
      expect([...first.body.items.map((o: { id: string }) => o.id), ...rest]).toEqual(placed.slice(0, 5).reverse());
      const cancelled = await request(api.url).get('/v1/orders?status=cancelled').set(as(buyer.token)).expect(200);
      expect(cancelled.body.items.map((o: { id: string }) => o.id)).toEqual([placed[0]]);
      await request(api.url).get('/v1/orders?status=lost').set(as(buyer.token)).expect(400);
    });
  });

  describe('users.user-deleted.v1', () => {
    it('cancels pending orders (stock back) and keeps the others without personal data', async () => {
      const p = await product(10);
      const user = await signUpAndLogin(api.url, 'Leaving Customer');
      const pending = (await place(user.accessToken, [{ productId: p.id, quantity: 3 }]).expect(201)).body;
      const kept = (await place(user.accessToken, [{ productId: p.id, quantity: 2 }]).expect(201)).body;
      await request(api.url).post(`/v1/orders/${kept.id}/confirm`).set(as(admin)).expect(200);
      expect(await stockOf(p.id)).toBe(5);
      await request(api.url).delete('/v1/users/me').set(as(user.accessToken)).expect(204);
      await eventually(async () => (await query<{ status: string }>(db, 'SELECT status FROM orders.orders WHERE id = $1', [pending.id]))[0].status === 'cancelled');
      expect(await stockOf(p.id)).toBe(8);
      const [record] = await query<{ status: string; user_erased_at: Date | null }>(db, 'SELECT status, user_erased_at FROM orders.orders WHERE id = $1', [kept.id]);
      expect(record.status).toBe('confirmed');
      expect(record.user_erased_at).not.toBeNull();
    });
  });
});

describe('Order expiry saga (e2e)', () => {
  let db: string;
  let api: RunningApi;
  const expiries = new Map<string, unknown>();
  const as = (token: string) => ({ Authorization: `Bearer ${token}` });

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startApi(db, { env: { ORDER_PENDING_TTL: '1500ms', ORDER_EXPIRY_SWEEP_INTERVAL_MS: '3600000' } });
    // What each expiry job returned, by job id (the order id), as it completes in this process.
    api.app.get<Queue>(getQueueToken('orders.expiry')).on('completed', (job: Job, result: unknown) => void expiries.set(String(job.id), result));
  });
  afterAll(async () => {
    await api?.close();
  });

  it('expires a pending order after ORDER_PENDING_TTL and restores its stock; leaves a confirmed one alone', async () => {
    const admin = testTokens(api.config).sign({ userId: randomUUID(), role: 'admin', sessionId: randomUUID() }).token;
    const buyer = testTokens(api.config).sign({ userId: randomUUID(), role: 'customer', sessionId: randomUUID() }).token;
    const p = (await request(api.url).post('/v1/products').set(as(admin)).send({ sku: 'EXP-1', name: 'Expiring', priceCents: 100, currency: 'EUR', stock: 5 }).expect(201)).body;
    const lapsing = (await request(api.url).post('/v1/orders').set(as(buyer)).send({ items: [{ productId: p.id, quantity: 2 }] }).expect(201)).body;
    const confirmed = (await request(api.url).post('/v1/orders').set(as(buyer)).send({ items: [{ productId: p.id, quantity: 1 }] }).expect(201)).body;
    await request(api.url).post(`/v1/orders/${confirmed.id}/confirm`).set(as(admin)).expect(200);
    const status = async (id: string) => (await query<{ status: string }>(db, 'SELECT status FROM orders.orders WHERE id = $1', [id]))[0].status;
    await eventually(async () => (await status(lapsing.id)) === 'expired', 10_000, 100);
    const [stock] = await query<{ stock: number }>(db, 'SELECT stock FROM orders.products WHERE id = $1', [p.id]);
    expect(stock.stock).toBe(4);
    expect(await eventually(async () => expiries.get(lapsing.id))).toEqual({ expired: true });
    // The confirmed order's expiry job ran too, and did nothing.
    expect(await eventually(async () => expiries.get(confirmed.id))).toEqual({ expired: false });
    expect(await status(confirmed.id)).toBe('confirmed');
    const page = await request(api.url).get('/v1/orders?status=expired').set(as(buyer)).expect(200);
    expect(page.body.items.map((o: { id: string }) => o.id)).toEqual([lapsing.id]);
  });

  it('catches, on the next start, an expiry whose delayed job was lost', async () => {
    const admin = testTokens(api.config).sign({ userId: randomUUID(), role: 'admin', sessionId: randomUUID() }).token;
    const buyer = testTokens(api.config).sign({ userId: randomUUID(), role: 'customer', sessionId: randomUUID() }).token;
    const p = (await request(api.url).post('/v1/products').set(as(admin)).send({ sku: 'EXP-2', name: 'Lost job', priceCents: 100, currency: 'EUR', stock: 3 }).expect(201)).body;
    // An instance whose orders live long, so only the sweeper can expire them.
    const longLived = await startApi(db, { env: { ORDER_PENDING_TTL: '1h', ORDER_EXPIRY_SWEEP_INTERVAL_MS: '3600000' } });
    const order = (await request(longLived.url).post('/v1/orders').set(as(buyer)).send({ items: [{ productId: p.id, quantity: 3 }] }).expect(201)).body;
    await longLived.close();
    // Its deadline passes while no job exists for it (as if Redis lost it).
    await query(db, `UPDATE orders.orders SET expires_at = now() - interval '1 second' WHERE id = $1`, [order.id]);
    const restarted = await startApi(db, { env: { ORDER_EXPIRY_SWEEP_INTERVAL_MS: '3600000' } });
    try {
      await eventually(async () => (await query<{ status: string }>(db, 'SELECT status FROM orders.orders WHERE id = $1', [order.id]))[0].status === 'expired');
      expect((await query<{ stock: number }>(db, 'SELECT stock FROM orders.products WHERE id = $1', [p.id]))[0].stock).toBe(3);
    } finally {
      await restarted.close();
    }
  });
});
