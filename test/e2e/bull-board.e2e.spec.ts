import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { MODULE_MANIFESTS } from '@app/manifests';
import { EventRouting, SessionRevocationStore } from '@app/platform';
import { createTestDatabase, eventually, startApi, type RunningApi } from '../support/test-env';
import { testTokens } from '../support/auth-helpers';

const BOARD = '/admin/queues';
const COOKIE = 'mm_bull_board';

describe('Bull Board at /admin/queues (e2e)', () => {
  let db: string;
  let api: RunningApi;
  const mint = (role: 'customer' | 'admin', sessionId: string = randomUUID()) =>
    testTokens(api.config).sign({ userId: randomUUID(), role, sessionId }).token;
  const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
  /** Every queue every manifest declares, computed here independently of the app. */
  const declaredQueues = new EventRouting(MODULE_MANIFESTS).allQueues().map((q) => q.queue).sort();

  beforeAll(async () => {
    db = await createTestDatabase();
    // notifications does not run in this process; its queues must still be on the board.
    api = await startApi(db, { env: { MODULES_ENABLED: 'users,orders', RATE_LIMIT_PER_MINUTE: '100000' } });
    // Redis connected: a revocation check that cannot reach Redis fails closed (401), and a
    // minted token's session is unknown to the users module's fallback.
    await eventually(async () => (await request(api.url).get('/health/ready')).body.status === 'ok');
  });
  afterAll(async () => {
    await api?.close();
  });

  async function staticAsset(): Promise<string> {
    const page = await request(api.url).get(`${BOARD}/`).set(bearer(mint('admin'))).expect(200);
    const asset = /src="(static\/js\/[^"]+\.js)"/.exec(page.text)?.[1];
    expect(asset).toBeDefined();
    return `${BOARD}/${asset}`;
  }

  const expectProblem = (response: request.Response, status: number, code: string) => {
    expect(response.status).toBe(status);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.body).toMatchObject({ status, code, type: `/problems/auth/${code === 'AUTH.FORBIDDEN' ? 'forbidden' : 'unauthenticated'}` });
  };

  it('answers anonymous requests to every kind of board route with 401 problem+json', async () => {
    const paths = [BOARD, `${BOARD}/`, `${BOARD}/queue/notifications.inbox`, `${BOARD}/api/queues`, `${BOARD}/api/redis/stats`, await staticAsset()];
    for (const path of paths) {
      const response = await request(api.url).get(path);
      expectProblem(response, 401, 'AUTH.UNAUTHENTICATED');
      expect(response.headers['www-authenticate']).toBe('Bearer');
      expect(response.body.instance).toBe(path);
    }
    // Mutations (retry, clean, pause) are guarded the same way.
    expectProblem(await request(api.url).put(`${BOARD}/api/queues/orders.inbox/retry/failed`), 401, 'AUTH.UNAUTHENTICATED');
    expectProblem(await request(api.url).put(`${BOARD}/api/queues/pause`), 401, 'AUTH.UNAUTHENTICATED');
  });

  it('refuses invalid tokens and revoked sessions with 401', async () => {
    expectProblem(await request(api.url).get(`${BOARD}/api/queues`).set(bearer('not.a.token')), 401, 'AUTH.UNAUTHENTICATED');
    expectProblem(await request(api.url).get(`${BOARD}/api/queues`).set('Authorization', `Basic ${mint('admin')}`), 401, 'AUTH.UNAUTHENTICATED');
    const sessionId = randomUUID();
    const token = mint('admin', sessionId);
    await request(api.url).get(`${BOARD}/api/queues`).set(bearer(token)).expect(200);
    await api.app.get(SessionRevocationStore).revoke(sessionId);
    const revoked = await request(api.url).get(`${BOARD}/api/queues`).set(bearer(token));
    expectProblem(revoked, 401, 'AUTH.UNAUTHENTICATED');
    expect(revoked.body.detail).toMatch(/session has ended/);
  });

  it('answers customers with 403 problem+json, the page, the assets and the API alike', async () => {
    const customer = mint('customer');
    for (const path of [`${BOARD}/`, `${BOARD}/api/queues`, await staticAsset()]) {
      expectProblem(await request(api.url).get(path).set(bearer(customer)), 403, 'AUTH.FORBIDDEN');
    }
    expectProblem(await request(api.url).put(`${BOARD}/api/queues/orders.inbox/retry/failed`).set(bearer(customer)), 403, 'AUTH.FORBIDDEN');
  });

  it('serves admins the page, its assets and a JSON API listing every queue of every manifest', async () => {
    const admin = mint('admin');
    const page = await request(api.url).get(BOARD).set(bearer(admin)).expect(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toContain(`<base href="${BOARD}/"`);
    await request(api.url).get(`${BOARD}/queue/orders.inbox`).set(bearer(admin)).expect(200).expect('content-type', /text\/html/);
    await request(api.url).get(await staticAsset()).set(bearer(admin)).expect(200).expect('content-type', /javascript/);

    const listed = await request(api.url).get(`${BOARD}/api/queues`).set(bearer(admin)).expect(200).expect('content-type', /application\/json/);
    const names = (listed.body.queues as { name: string; type: string; description?: string }[]).map((q) => q.name).sort();
    expect(declaredQueues.length).toBeGreaterThanOrEqual(3);
    expect(names).toEqual(declaredQueues);
    expect(names).toContain('notifications.inbox');
    expect(api.config.enabledModules.has('notifications')).toBe(false);
    const inbox = (listed.body.queues as { name: string; type: string; description?: string }[]).find((q) => q.name === 'notifications.inbox');
    expect(inbox).toMatchObject({ type: 'bull', description: 'owned by the notifications module' });
  });

  it('lets a browser sign in once with a form POST; the HttpOnly cookie then authenticates every board route', async () => {
    const form = await request(api.url).get(`${BOARD}/login`).expect(200).expect('content-type', /text\/html/);
    expect(form.text).toContain(`action="${BOARD}/login"`);

    expectProblem(await request(api.url).post(`${BOARD}/login`).type('form').send({ token: mint('customer') }), 403, 'AUTH.FORBIDDEN');
    expectProblem(await request(api.url).post(`${BOARD}/login`).type('form').send({ token: 'garbage' }), 401, 'AUTH.UNAUTHENTICATED');
    expectProblem(await request(api.url).post(`${BOARD}/login`).type('form').send({}), 401, 'AUTH.UNAUTHENTICATED');

    const admin = mint('admin');
    const signedIn = await request(api.url).post(`${BOARD}/login`).type('form').send({ token: admin }).expect(303);
    expect(signedIn.headers.location).toBe(`${BOARD}/`);
    const setCookie = ([] as string[]).concat(signedIn.headers['set-cookie'] ?? []);
    expect(setCookie).toHaveLength(1);
    const [pair, ...attributes] = setCookie[0].split(';').map((s) => s.trim());
    expect(pair).toBe(`${COOKIE}=${admin}`);
    expect(attributes).toEqual(expect.arrayContaining(['HttpOnly', 'SameSite=Strict', `Path=${BOARD}`]));
    const maxAge = Number(attributes.find((a) => a.startsWith('Max-Age='))?.slice('Max-Age='.length));
    expect(maxAge).toBeGreaterThan(api.config.env.ACCESS_TOKEN_TTL_S - 5);
    expect(maxAge).toBeLessThanOrEqual(api.config.env.ACCESS_TOKEN_TTL_S);

    // JSON bodies work too (scripts).
    await request(api.url).post(`${BOARD}/login`).send({ token: admin }).expect(303);

    const withCookie = { Cookie: `other=1; ${pair}` };
    await request(api.url).get(`${BOARD}/`).set(withCookie).expect(200).expect('content-type', /text\/html/);
    await request(api.url).get(await staticAsset()).set(withCookie).expect(200);
    const listed = await request(api.url).get(`${BOARD}/api/queues`).set(withCookie).expect(200);
    expect((listed.body.queues as { name: string }[]).map((q) => q.name).sort()).toEqual(declaredQueues);

    // An explicit Authorization header wins over the cookie, even a bad one.
    expectProblem(await request(api.url).get(`${BOARD}/api/queues`).set(withCookie).set(bearer('bad')), 401, 'AUTH.UNAUTHENTICATED');
    // A customer's token in the cookie is still a customer.
    expectProblem(await request(api.url).get(`${BOARD}/api/queues`).set('Cookie', `${COOKIE}=${mint('customer')}`), 403, 'AUTH.FORBIDDEN');
    // The cookie is the board's only: the API proper still wants a Bearer token.
    expectProblem(await request(api.url).get('/v1/products').set(withCookie), 401, 'AUTH.UNAUTHENTICATED');

    const signedOut = await request(api.url).post(`${BOARD}/logout`).set(withCookie).expect(303);
    expect(signedOut.headers.location).toBe(`${BOARD}/login`);
    expect(String(signedOut.headers['set-cookie'])).toMatch(new RegExp(`^${COOKIE}=; Path=${BOARD}; Max-Age=0; HttpOnly; SameSite=Strict`));
  });

  it('leaves the rest of the API as it was', async () => {
    await request(api.url).get('/health/live').expect(200);
    await request(api.url).get('/health/ready').expect(200);
    expectProblem(await request(api.url).get('/v1/products'), 401, 'AUTH.UNAUTHENTICATED');
    await request(api.url).get('/v1/products').set(bearer(mint('customer'))).expect(200);
    // Form bodies are parsed by the board's login route only; the API's own parsing is unchanged.
    await request(api.url).post('/v1/users').send({ email: `board-${randomUUID()}@example.com`, password: 'correct horse battery', name: 'Board' }).expect(201);
    const notFound = await request(api.url).get('/admin/other').expect(404);
    expect(notFound.headers['content-type']).toMatch(/^application\/problem\+json/);
    const docs = await request(api.internalUrl).get('/docs-json').expect(200);
    expect(Object.keys(docs.body.paths as object).filter((p) => p.startsWith('/admin'))).toEqual([]);
  });

  it('is not mounted when BULL_BOARD_ENABLED=false', async () => {
    const off = await startApi(db, { env: { BULL_BOARD_ENABLED: 'false', MODULES_ENABLED: 'users' } });
    try {
      await eventually(async () => (await request(off.url).get('/health/ready')).body.status === 'ok');
      await request(off.url).get(`${BOARD}/api/queues`).set(bearer(testTokens(off.config).sign({ userId: randomUUID(), role: 'admin', sessionId: randomUUID() }).token)).expect(404);
      await request(off.url).get(`${BOARD}/login`).expect(404);
    } finally {
      await off.close();
    }
  });
});
