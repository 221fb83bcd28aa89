import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { holdProductRowLock, statementsWaitingOnLock } from '../support/row-locks';
import { createTestDatabase, eventually, query, startApi, type RunningApi } from '../support/test-env';
import { signUpAndLogin, testTokens } from '../support/auth-helpers';

/**
 * Stock under concurrency (docs/api.md, "PATCH /v1/products/:id" and "Orders"): product
 * versions as ETags, If-Match and relative `stockDelta` on the admin PATCH, and stock
 * restores that lock products in id order like placement does.
 */
describe('Orders: stock versions, If-Match, stockDelta, restore lock order (e2e)', () => {
  let db: string;
  let api: RunningApi;
  let admin: string;
  const mint = (role: 'customer' | 'admin' = 'customer', userId: string = randomUUID()) =>
    ({ userId, token: testTokens(api.config).sign({ userId, role, sessionId: randomUUID() }).token });
  const as = (token: string) => ({ Authorization: `Bearer ${token}` });

  async function product(stock: number, sku = `STK-${randomUUID().slice(0, 8)}`) {
    const response = await request(api.url).post('/v1/products').set(as(admin)).send({ sku, name: `Product ${sku}`, priceCents: 100, currency: 'EUR', stock }).expect(201);
    return response.body as { id: string; sku: string; stock: number; version: number };
  }
  const row = async (id: string) => (await query<{ stock: number; version: string; name: string }>(db, 'SELECT stock, version, name FROM orders.products WHERE id = $1', [id]))[0];
  const place = (token: string, items: { productId: string; quantity: number }[]) => request(api.url).post('/v1/orders').set(as(token)).send({ items });
  const patch = (id: string, body: object, ifMatch?: string) => {
    const req = request(api.url).patch(`/v1/products/${id}`).set(as(admin));
    if (ifMatch !== undefined) void req.set('If-Match', ifMatch);
    return req.send(body);
  };

  const holdRowLock = (productId: string) => holdProductRowLock(db, productId);
  const waitingOn = (sql: string) => statementsWaitingOnLock(db, sql);

  beforeAll(async () => {
    db = await createTestDatabase();
    // Generous timeouts: some tests hold a row lock while requests queue behind it, and a
    // Redis revocation check that times out on a busy machine would 401 the minted tokens.
    api = await startApi(db, { env: { RATE_LIMIT_PER_MINUTE: '100000', DB_STATEMENT_TIMEOUT_MS: '20000', DB_CONNECT_TIMEOUT_MS: '30000', REDIS_REQUEST_TIMEOUT_MS: '2000' } });
    admin = mint('admin').token;
  });
  afterAll(async () => {
    await api?.close();
  });

  describe('versions and If-Match', () => {
    it('GET, POST and PATCH answer with ETag "<version>"; every write, an order included, moves it on', async () => {
      const created = await request(api.url).post('/v1/products').set(as(admin)).send({ sku: `V-${randomUUID().slice(0, 8)}`, name: 'Versioned', priceCents: 100, stock: 10 }).expect(201);
      expect(created.headers.etag).toBe('"1"');
      expect(created.body.version).toBe(1);
      const read = await request(api.url).get(`/v1/products/${created.body.id}`).set(as(mint().token)).expect(200);
      expect(read.headers.etag).toBe('"1"');
      expect(read.body).toEqual(created.body);
      await place(mint().token, [{ productId: created.body.id, quantity: 2 }]).expect(201);
      const afterOrder = await request(api.url).get(`/v1/products/${created.body.id}`).set(as(admin)).expect(200);
      expect(afterOrder.headers.etag).toBe('"2"');
      expect(afterOrder.body).toMatchObject({ stock: 8, version: 2 });
      const renamed = await patch(created.body.id, { name: 'Renamed' }).expect(200);
      expect(renamed.headers.etag).toBe('"3"');
      const page = await request(api.url).get('/v1/products').query({ limit: 100 }).set(as(admin)).expect(200);
      expect(page.body.items.find((p: { id: string }) => p.id === created.body.id)).toMatchObject({ version: 3, name: 'Renamed' });
      await request(api.url).get(`/v1/products/${randomUUID()}`).set(as(admin)).expect(404);
      await request(api.url).get('/v1/products/not-a-uuid').set(as(admin)).expect(400);
    });

    it('an absolute stock needs If-Match: 428 without it (or with *), 412 when stale, 200 with the current ETag', async () => {
      const p = await product(10);
      const missing = await patch(p.id, { stock: 50 }).expect(428);
      expect(missing.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(missing.body).toMatchObject({ status: 428, code: 'PRODUCT.IF_MATCH_REQUIRED', type: '/problems/product/if-match-required' });
      await patch(p.id, { stock: 50 }, '*').expect(428);
      const stale = await patch(p.id, { stock: 50 }, '"7"').expect(412);
      expect(stale.body).toMatchObject({ status: 412, title: 'Precondition Failed', code: 'PRODUCT.VERSION_MISMATCH', currentVersion: 1 });
      // Weak tags never match (strong comparison); a list matches if any entry does.
      await patch(p.id, { stock: 50 }, 'W/"1"').expect(412);
      const ok = await patch(p.id, { stock: 50 }, '"9", "1"').expect(200);
      expect(ok.body).toMatchObject({ stock: 50, version: 2 });
      expect(ok.headers.etag).toBe('"2"');
      expect(await row(p.id)).toMatchObject({ stock: 50, version: '2' });
      // The same If-Match again is stale now.
      await patch(p.id, { stock: 1 }, '"1"').expect(412);
      expect((await row(p.id)).stock).toBe(50);
    });

    it('other fields honour If-Match when sent and work without it; malformed If-Match and stock with stockDelta are 400', async () => {
      const p = await product(10);
      await patch(p.id, { name: 'Stale' }, '"2"').expect(412);
      expect((await row(p.id)).name).toBe(`Product ${p.sku}`);
      await patch(p.id, { priceCents: 150 }, '"1"').expect(200);
      await patch(p.id, { name: 'No precondition' }).expect(200);
      await patch(p.id, { name: 'Any' }, '*').expect(200);
      const malformed = await patch(p.id, { name: 'x' }, '1').expect(400);
      expect(malformed.body.errors).toEqual([{ field: 'If-Match', message: expect.stringContaining('entity tags') }]);
      const both = await patch(p.id, { stock: 1, stockDelta: 1 }, '"4"').expect(400);
      expect(both.body.errors).toEqual([{ field: 'stockDelta', message: 'cannot be combined with stock' }]);
      await patch(p.id, { stockDelta: 1.5 }).expect(400);
      await patch(randomUUID(), { stockDelta: 1 }).expect(404);
      await patch(randomUUID(), { stock: 1 }, '"1"').expect(404);
    });

    it('a PATCH with the If-Match read before an order was placed is 412 and does not overwrite the reservation', async () => {
      const p = await product(10);
      const read = await request(api.url).get(`/v1/products/${p.id}`).set(as(admin)).expect(200);
      expect((await place(mint().token, [{ productId: p.id, quantity: 3 }])).status).toBe(201);
      const refused = await patch(p.id, { stock: 50 }, read.headers.etag);
      expect({ status: refused.status, product: await row(p.id) }).toEqual({ status: 412, product: { stock: 7, version: '2', name: `Product ${p.sku}` } });
      expect(refused.body).toMatchObject({ code: 'PRODUCT.VERSION_MISMATCH', currentVersion: 2 });
    });

    it('a PATCH racing an order on the row it locks: whichever commits first, the reservation is never overwritten', async () => {
      const p = await product(10);
      const read = await request(api.url).get(`/v1/products/${p.id}`).set(as(admin)).expect(200);
      // A slow writer holds the row; the order and the admin's PATCH both queue behind it.
      // Postgres does not promise which waiter goes first, so both orders are accepted here.
      const slow = await holdRowLock(p.id);
      const order = place(mint().token, [{ productId: p.id, quantity: 3 }]).then((r) => r);
      await eventually(async () => (await waitingOn('SET stock = stock - $2')) === 1);
      const overwrite = patch(p.id, { stock: 50 }, read.headers.etag).then((r) => r);
      await eventually(async () => (await waitingOn('COALESCE($2, name)')) === 1);
      await slow.release();
      expect((await order).status).toBe(201);
      const outcome = { status: (await overwrite).status, product: await row(p.id) };
      const orderFirst = { status: 412, product: { stock: 7, version: '2', name: `Product ${p.sku}` } };
      const patchFirst = { status: 200, product: { stock: 47, version: '3', name: `Product ${p.sku}` } };
      expect([orderFirst, patchFirst]).toContainEqual(outcome);
    });

    it('concurrent stockDelta adjustments and placements: final stock = initial + accepted deltas − ordered quantities', async () => {
      const p = await product(40);
      const deltas = Array.from({ length: 30 }, (_, i) => (i % 3 === 0 ? -4 : 5));
      const quantities = Array.from({ length: 60 }, (_, i) => 1 + (i % 3));
      const work = [
        ...deltas.map((stockDelta) => patch(p.id, { stockDelta }).then((r) => ({ kind: 'delta' as const, amount: stockDelta, r }))),
        ...quantities.map((quantity) => place(mint().token, [{ productId: p.id, quantity }]).then((r) => ({ kind: 'order' as const, amount: quantity, r }))),
      ];
      // Interleave the two kinds of request.
      const results = await Promise.all(work.sort(() => Math.random() - 0.5));
      for (const { kind, r } of results) {
        if (kind === 'delta') expect([200, 409]).toContain(r.status);
        else expect([201, 409]).toContain(r.status);
        if (r.status === 409) expect(r.body.code).toBe(kind === 'delta' ? 'PRODUCT.STOCK_OUT_OF_RANGE' : 'ORDER.INSUFFICIENT_STOCK');
      }
      const accepted = results.filter((x) => x.kind === 'delta' && x.r.status === 200);
      const placed = results.filter((x) => x.kind === 'order' && x.r.status === 201);
      const added = accepted.reduce((sum, x) => sum + x.amount, 0);
      const reserved = placed.reduce((sum, x) => sum + x.amount, 0);
      const sold = await query<{ n: string }>(db, 'SELECT coalesce(sum(quantity), 0) AS n FROM orders.order_lines WHERE product_id = $1', [p.id]);
      expect(Number(sold[0].n)).toBe(reserved);
      // Every accepted write moved the version on once: nothing was lost or overwritten.
      expect(await row(p.id)).toEqual({ stock: 40 + added - reserved, version: String(1 + accepted.length + placed.length), name: `Product ${p.sku}` });
      expect(placed.length).toBeGreaterThan(0);
      expect(accepted.length).toBeGreaterThan(0);
    }, 60_000);

    it('a stockDelta that would take the stock below zero is 409 and changes nothing', async () => {
      const p = await product(3);
      const refused = await patch(p.id, { stockDelta: -4 }).expect(409);
      expect(refused.body).toMatchObject({ code: 'PRODUCT.STOCK_OUT_OF_RANGE', stock: 3, stockDelta: -4 });
      await patch(p.id, { stockDelta: -3 }).expect(200);
      expect(await row(p.id)).toMatchObject({ stock: 0, version: '2' });
      await patch(p.id, { stockDelta: 1_000_000_001 }).expect(400);
      await patch(p.id, { stockDelta: 1_000_000_000 }).expect(200);
      await patch(p.id, { stockDelta: 1 }).expect(409);
    });
  });

  describe('stock restores lock products in id order', () => {
    it('cancels of orders whose lines run against id order, concurrent with placements, never deadlock and keep stock exact', async () => {
      const products = (await Promise.all(Array.from({ length: 6 }, () => product(10_000)))).sort((a, b) => (a.id < b.id ? -1 : 1));
      const descending = [...products].reverse();
      const buyer = mint();
      // Lines in descending id order: a restore that follows the lines locks against placement's order.
      const pending: string[] = [];
      for (let i = 0; i < 40; i++) {
        const order = await place(buyer.token, descending.map((p) => ({ productId: p.id, quantity: 1 }))).expect(201);
        pending.push(order.body.id);
      }
      const before = await Promise.all(products.map((p) => row(p.id)));
      const results = await Promise.all(
        pending.flatMap((id, i) => [
          request(api.url).post(`/v1/orders/${id}/cancel`).set(as(buyer.token)),
          place(mint().token, (i % 2 ? products : descending).map((p) => ({ productId: p.id, quantity: 2 }))),
        ]),
      );
      const failures = results.filter((r) => r.status !== 200 && r.status !== 201).map((r) => `${r.status} ${JSON.stringify(r.body)}`);
      expect(failures).toEqual([]);
      // Each product: 40 cancelled orders gave 1 back, 40 new orders took 2.
      const after = await Promise.all(products.map((p) => row(p.id)));
      expect(after.map((r) => r.stock)).toEqual(before.map((r) => r.stock + 40 - 80));
      const [stats] = await query<{ deadlocks: string }>(db, 'SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()');
      expect(stats.deadlocks).toBe('0');
    }, 120_000);

    it("an erased account's pending orders give their stock back in one statement, concurrent with placements", async () => {
      const products = (await Promise.all(Array.from({ length: 6 }, () => product(10_000)))).sort((a, b) => (a.id < b.id ? -1 : 1));
      const leaving = await signUpAndLogin(api.url, 'Leaving Buyer');
      // One product per order: cancelled one order after the other (in order-id order), their
      // products would be locked in an order unrelated to product ids.
      for (let i = 0; i < 36; i++) await place(leaving.accessToken, [{ productId: products[i % 6].id, quantity: 1 }]).expect(201);
      const before = await Promise.all(products.map((p) => row(p.id)));
      const erased = request(api.url).delete('/v1/users/me').set(as(leaving.accessToken)).then((r) => r);
      const placements = await Promise.all(Array.from({ length: 40 }, () => place(mint().token, products.map((p) => ({ productId: p.id, quantity: 1 })))));
      expect((await erased).status).toBe(204);
      expect(placements.filter((r) => r.status !== 201).map((r) => `${r.status} ${JSON.stringify(r.body)}`)).toEqual([]);
      await eventually(
        async () => (await query(db, `SELECT 1 FROM orders.orders WHERE user_id = $1 AND status = 'pending'`, [leaving.id])).length === 0,
        30_000,
      );
      // Each product: 6 cancelled orders gave 1 back, 40 new orders took 1.
      expect((await Promise.all(products.map((p) => row(p.id)))).map((r) => r.stock)).toEqual(before.map((r) => r.stock + 6 - 40));
      // The inbox retries a failed handler, so a deadlock would not show in the outcome: ask Postgres.
      expect(await query(db, 'SELECT 1 FROM orders.dead_letters')).toHaveLength(0);
      const [stats] = await query<{ deadlocks: string }>(db, 'SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()');
      expect(stats.deadlocks).toBe('0');
    }, 120_000);
  });
});
