import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { holdProductRowLock, statementsWaitingOnLock } from '../support/row-locks';
import { createTestDatabase, eventually, query, startApi, type RunningApi } from '../support/test-env';
import { testTokens } from '../support/auth-helpers';

/**
 * A claim on an Idempotency-Key that is taken over after 60 s (docs/api.md, "Idempotency")
 * while its first request was only slow: the first request's outcome write is fenced by its
 * claim id, so its transaction rolls back and only the request that took over places an order.
 */
describe('Orders: Idempotency-Key claim takeover is fenced (e2e)', () => {
  let db: string;
  let api: RunningApi;
  let admin: string;
  const mint = (role: 'customer' | 'admin' = 'customer', userId: string = randomUUID()) =>
    ({ userId, token: testTokens(api.config).sign({ userId, role, sessionId: randomUUID() }).token });
  const as = (token: string) => ({ Authorization: `Bearer ${token}` });
  const place = (token: string, key: string, items: { productId: string; quantity: number }[]) =>
    request(api.url).post('/v1/orders').set(as(token)).set('Idempotency-Key', key).send({ items });
  const stockOf = async (id: string) => (await query<{ stock: number }>(db, 'SELECT stock FROM orders.products WHERE id = $1', [id]))[0].stock;
  const waitingOn = (sql: string) => statementsWaitingOnLock(db, sql);

  const holdRowLock = (productId: string) => holdProductRowLock(db, productId);

  beforeAll(async () => {
    db = await createTestDatabase();
    // Generous timeouts: requests queue behind a held row lock, on a possibly busy machine.
    api = await startApi(db, { env: { RATE_LIMIT_PER_MINUTE: '100000', DB_STATEMENT_TIMEOUT_MS: '20000', DB_CONNECT_TIMEOUT_MS: '30000', REDIS_REQUEST_TIMEOUT_MS: '2000' } });
    admin = mint('admin').token;
  });
  afterAll(async () => {
    await api?.close();
  });

  it('a slow first request whose claim was taken over gets 409 IDEMPOTENCY.CLAIM_TAKEN_OVER; exactly one order exists', async () => {
    const product = (await request(api.url).post('/v1/products').set(as(admin)).send({ sku: 'TAKEOVER-1', name: 'Contended', priceCents: 700, stock: 10 }).expect(201)).body;
    const buyer = mint();
    const items = [{ productId: product.id, quantity: 1 }];
    const slow = await holdRowLock(product.id);
    // The first request claims the key and then waits for the product's row, inside its transaction.
    const first = place(buyer.token, 'slow-order', items).then((r) => r);
    await eventually(async () => (await waitingOn('SET stock = stock - $2')) === 1);
    const [claim] = await query<{ claim_id: string; state: string }>(db, 'SELECT claim_id, state FROM orders.idempotency_keys WHERE user_id = $1', [buyer.userId]);
    expect(claim.state).toBe('in-progress');
    // 60 s pass without an outcome (set back in the database rather than waited for).
    await query(db, `UPDATE orders.idempotency_keys SET locked_at = now() - interval '61 seconds' WHERE user_id = $1`, [buyer.userId]);
    // The client's retry takes the claim over and places the order itself.
    const retry = place(buyer.token, 'slow-order', items).then((r) => r);
    await eventually(async () => (await query<{ claim_id: string }>(db, 'SELECT claim_id FROM orders.idempotency_keys WHERE user_id = $1', [buyer.userId]))[0].claim_id !== claim.claim_id);
    await eventually(async () => (await waitingOn('SET stock = stock - $2')) === 2);
    await slow.release();

    const [firstResponse, retryResponse] = await Promise.all([first, retry]);
    expect(firstResponse.status).toBe(409);
    expect(firstResponse.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(firstResponse.body).toMatchObject({ code: 'IDEMPOTENCY.CLAIM_TAKEN_OVER', type: '/problems/idempotency/claim-taken-over' });
    expect(retryResponse.status).toBe(201);

    const orders = await query<{ id: string }>(db, 'SELECT id FROM orders.orders WHERE user_id = $1', [buyer.userId]);
    expect(orders.map((o) => o.id)).toEqual([retryResponse.body.id]);
    expect(await stockOf(product.id)).toBe(9);
    // The key now holds the retry's outcome; a further repeat replays it.
    const replay = await place(buyer.token, 'slow-order', items).expect(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body.id).toBe(retryResponse.body.id);
    // The rolled-back order published nothing either.
    const events = await query<{ order_id: string }>(db, `SELECT payload->>'orderId' AS order_id FROM orders.outbox WHERE payload->>'userId' = $1`, [buyer.userId]);
    expect(events.map((e) => e.order_id)).toEqual([retryResponse.body.id]);
  });

  it('a claim that completes before the takeover is not taken over: the repeat replays it', async () => {
    const product = (await request(api.url).post('/v1/products').set(as(admin)).send({ sku: 'TAKEOVER-2', name: 'Quick', priceCents: 700, stock: 10 }).expect(201)).body;
    const buyer = mint();
    const items = [{ productId: product.id, quantity: 2 }];
    const first = await place(buyer.token, 'quick-order', items).expect(201);
    // Even with its claim time far in the past, a completed key only replays.
    await query(db, `UPDATE orders.idempotency_keys SET locked_at = now() - interval '10 minutes' WHERE user_id = $1`, [buyer.userId]);
    const again = await place(buyer.token, 'quick-order', items).expect(201);
    expect(again.body.id).toBe(first.body.id);
    expect(await stockOf(product.id)).toBe(8);
  });

  it('of many simultaneous repeats of an abandoned claim, one takes it over; one order in all', async () => {
    const product = (await request(api.url).post('/v1/products').set(as(admin)).send({ sku: 'TAKEOVER-3', name: 'Popular', priceCents: 700, stock: 100 }).expect(201)).body;
    const buyer = mint();
    const items = [{ productId: product.id, quantity: 1 }];
    // A claim whose request died 2 minutes ago.
    await query(
      db,
      `INSERT INTO orders.idempotency_keys (user_id, key, request_hash, state, locked_at, expires_at)
       VALUES ($1, 'dead-order', encode(sha256(convert_to($2, 'UTF8')), 'hex'), 'in-progress', now() - interval '2 minutes', now() + interval '1 day')`,
      [buyer.userId, JSON.stringify({ items })],
    );
    const results = await Promise.all(Array.from({ length: 15 }, () => place(buyer.token, 'dead-order', items)));
    const statuses = results.map((r) => r.status);
    expect(statuses.every((s) => s === 201 || s === 409)).toBe(true);
    expect(new Set(results.filter((r) => r.status === 201).map((r) => r.body.id)).size).toBe(1);
    expect(await query(db, 'SELECT 1 FROM orders.orders WHERE user_id = $1', [buyer.userId])).toHaveLength(1);
    expect(await stockOf(product.id)).toBe(99);
  });
});
