import { randomUUID } from 'node:crypto';
import net from 'node:net';
import request from 'supertest';
import { signUpAndLogin, type SignedUpUser, testTokens } from '../support/auth-helpers';
import { createTestDatabase, eventually, query, startApi, type RunningApi } from '../support/test-env';

/**
 * Load shedding (README, "What is shed first"). Pressure is forced deterministically with
 * the in-flight signal: SHED_MAX_IN_FLIGHT=4 and requests held open by clients that send
 * their headers and only part of the body (the request is admitted and in flight until it
 * completes or its client hangs up). Event-loop delay is covered by load-shedding.spec.ts;
 * heap here with a limit every process is over.
 */

/** A POST /v1/users whose body never finishes: admitted, then in flight until released. */
class HeldRequest {
  private readonly socket: net.Socket;
  private response = '';
  private readonly body = JSON.stringify({ email: `held-${randomUUID()}@example.com`, password: 'correct horse battery', name: 'Held' });

  constructor(url: string) {
    const { port } = new URL(url);
    this.socket = net.connect({ host: '127.0.0.1', port: Number(port) });
    this.socket.on('data', (chunk) => (this.response += chunk.toString()));
    this.socket.on('error', () => undefined);
    this.socket.write(
      `POST /v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(this.body)}\r\n\r\n` +
        this.body.slice(0, 10),
    );
  }

  /** Sends the rest of the body and waits for the answer's status line. */
  async finish(): Promise<string> {
    this.socket.write(this.body.slice(10));
    await eventually(async () => this.response.includes('\r\n'));
    this.socket.destroy();
    return this.response.split('\r\n')[0];
  }

  /** The client hangs up before its request is complete. */
  hangUp(): void {
    this.socket.destroy();
  }
}

async function inFlightGauge(url: string): Promise<number> {
  const text = (await request(url).get('/metrics').expect(200)).text;
  // The scrape is itself in flight while it is answered.
  return Number(/^http_requests_in_flight (\d+)$/m.exec(text)![1]) - 1;
}

const expectOverloaded = (response: request.Response, path: string) => {
  expect(response.status).toBe(503);
  expect(response.headers['content-type']).toBe('application/problem+json; charset=utf-8');
  expect(response.headers['retry-after']).toMatch(/^[12]$/); // 1..SHED_RETRY_AFTER_S (2)
  expect(response.headers['x-request-id']).toEqual(expect.any(String));
  expect(response.body).toEqual({
    type: '/problems/overloaded',
    title: 'Service Unavailable',
    status: 503,
    detail: expect.stringContaining('Retry-After'),
    instance: path,
    code: 'OVERLOADED',
  });
};

describe('Load shedding (e2e)', () => {
  let db: string;
  beforeAll(async () => {
    db = await createTestDatabase();
  });

  /** An API with pressure limits that nothing but the test's held requests reaches. */
  async function api(env: Record<string, string>): Promise<RunningApi> {
    return startApi(db, {
      env: {
        SHED_MAX_IN_FLIGHT: '4',
        SHED_SHEDDABLE_RATIO: '0.5',
        SHED_MAX_EVENT_LOOP_DELAY_MS: '60000',
        RATE_LIMIT_PER_MINUTE: '100000',
        ...env,
      },
    });
  }

  function fixtures(running: RunningApi) {
    const as = (token: string) => ({ Authorization: `Bearer ${token}` });
    const mint = (role: 'customer' | 'admin') => testTokens(running.config).sign({ userId: randomUUID(), role, sessionId: randomUUID() }).token;
    const admin = mint('admin');
    const customer = mint('customer');
    return {
      as,
      admin,
      customer,
      async product(): Promise<string> {
        const sku = `SHED-${randomUUID().slice(0, 8)}`;
        return (await request(running.url).post('/v1/products').set(as(admin)).send({ sku, name: sku, priceCents: 500, currency: 'EUR', stock: 1000 }).expect(201)).body.id;
      },
      placeOrder: (productId: string) => request(running.url).post('/v1/orders').set(as(customer)).send({ items: [{ productId, quantity: 1 }] }),
    };
  }

  describe('with shedding on, forced by requests held in flight', () => {
    let running: RunningApi;
    let user: SignedUpUser;
    let f: ReturnType<typeof fixtures>;
    let productId: string;
    const held: HeldRequest[] = [];

    beforeAll(async () => {
      running = await api({});
      f = fixtures(running);
      user = await signUpAndLogin(running.url, 'Shed');
      productId = await f.product();
    });
    afterAll(async () => {
      for (const h of held) h.hangUp();
      await running?.close();
    });

    async function hold(count: number): Promise<void> {
      // One at a time, each counted before the next: a request that just answered (a scrape
      // of the gauge included) leaves the count only on its response's 'close', and while it
      // lingers the last new request would itself be shed at the limit.
      for (let i = 0; i < count; i++) {
        await eventually(async () => (await inFlightGauge(running.internalUrl)) === held.length);
        await new Promise((resolve) => setTimeout(resolve, 50));
        held.push(new HeldRequest(running.url));
        await eventually(async () => (await inFlightGauge(running.internalUrl)) === held.length);
      }
    }

    it('sheds sheddable requests first (half the limit in flight) while normal, refresh and health are served', async () => {
      await hold(2);
      const profile = await request(running.url).get(`/v1/users/${user.id}`).set(f.as(user.accessToken)).set('X-Request-Id', 'shed-profile-1');
      expectOverloaded(profile, `/v1/users/${user.id}`);
      expect(profile.headers['x-request-id']).toBe('shed-profile-1');
      expectOverloaded(await request(running.url).get('/v1/products').set(f.as(f.customer)), '/v1/products');
      expectOverloaded(await request(running.url).get('/v1/notifications/stream').set(f.as(user.accessToken)), '/v1/notifications/stream');

      // Normal: placing an order and reading one's own orders are admitted at this pressure.
      const order = await f.placeOrder(productId);
      expect(order.status).toBe(201);
      await request(running.url).get('/v1/orders').set(f.as(f.customer)).expect(200);
      // Critical.
      await request(running.url).get('/health/live').expect(200);
      await request(running.url).get('/health/ready').expect(200);
      const refreshed = await request(running.url).post('/v1/auth/refresh').send({ refreshToken: user.refreshToken }).expect(200);
      user.refreshToken = refreshed.body.refreshToken;
    });

    it('at the in-flight limit sheds normal requests before any work (no auth, no row), and still serves critical ones', async () => {
      const order = (await f.placeOrder(productId).expect(201)).body as { id: string };
      await hold(2); // 4 of 4
      const ordersBefore = await query<{ n: string }>(db, 'SELECT count(*) AS n FROM orders.orders');

      expectOverloaded(await f.placeOrder(productId), '/v1/orders');
      expectOverloaded(await request(running.url).get('/v1/orders').set(f.as(f.customer)), '/v1/orders');
      // Decided before authentication: a bad token is shed, not answered 401.
      expectOverloaded(await request(running.url).get('/v1/orders').set(f.as('not-a-token')), '/v1/orders');
      expect(await query<{ n: string }>(db, 'SELECT count(*) AS n FROM orders.orders')).toEqual(ordersBefore);

      await request(running.url).get('/health/live').expect(200);
      await request(running.url).get('/health/ready').expect(200);
      const refreshed = await request(running.url).post('/v1/auth/refresh').send({ refreshToken: user.refreshToken }).expect(200);
      user.refreshToken = refreshed.body.refreshToken;
      // A write to an order already under way is critical.
      const confirmed = await request(running.url).post(`/v1/orders/${order.id}/confirm`).set(f.as(f.admin)).expect(200);
      expect(confirmed.body.status).toBe('confirmed');

      const metrics = (await request(running.internalUrl).get('/metrics').expect(200)).text;
      expect(metrics).toMatch(/^http_requests_shed_total\{class="sheddable"\} 3$/m);
      expect(metrics).toMatch(/^http_requests_shed_total\{class="normal"\} 3$/m);
      expect(metrics).toMatch(/^http_requests_shed_total\{class="critical"\} 0$/m);
      expect(metrics).toMatch(/^load_pressure_ratio\{signal="in_flight"\} 1\.25$/m); // 4 held + the scrape, of 4
      expect(metrics).toMatch(/^http_requests_total\{method="POST",route="\/v1\/orders",status="503"\} 1$/m);
    });

    it('serves everything again once the held requests complete or their clients hang up', async () => {
      // Two finish (their users are created), two clients leave: both give their slot back.
      const statuses = await Promise.all(held.slice(0, 2).map((h) => h.finish()));
      expect(statuses).toEqual(['HTTP/1.1 201 Created', 'HTTP/1.1 201 Created']);
      for (const h of held.slice(2)) h.hangUp();
      await eventually(async () => (await inFlightGauge(running.internalUrl)) === 0);

      await request(running.url).get(`/v1/users/${user.id}`).set(f.as(user.accessToken)).expect(200);
      await request(running.url).get('/v1/products').set(f.as(f.customer)).expect(200);
      expect((await f.placeOrder(productId)).status).toBe(201);
    });

    it('gives every slot back on keep-alive connections, whose sockets stay open between requests', async () => {
      // fetch keeps its connections alive: a slot released only when a socket closes would leak here.
      const answers = await Promise.all(
        Array.from({ length: 40 }, () => fetch(`${running.url}/v1/users/${user.id}`, { headers: f.as(user.accessToken) }).then(async (r) => (await r.arrayBuffer(), r.status))),
      );
      expect(answers.filter((status) => status === 200).length + answers.filter((status) => status === 503).length).toBe(40);
      expect(await inFlightGauge(running.internalUrl)).toBe(0);
      // And the limit still admits what it should.
      for (let i = 0; i < 10; i++) await fetch(`${running.url}/v1/products`, { headers: f.as(f.customer) }).then(async (r) => expect((await r.arrayBuffer(), r.status)).toBe(200));
    });
  });

  it('sheds on heap pressure too: over SHED_MAX_HEAP_USED_BYTES only critical requests pass', async () => {
    const running = await api({ SHED_MAX_HEAP_USED_BYTES: '1048576' }); // every Node process is over 1 MiB
    try {
      const f = fixtures(running);
      expectOverloaded(await request(running.url).get('/v1/products').set(f.as(f.customer)), '/v1/products');
      expectOverloaded(await request(running.url).get('/v1/orders').set(f.as(f.customer)), '/v1/orders');
      await request(running.url).get('/health/live').expect(200);
      await request(running.url).post('/v1/auth/refresh').send({ refreshToken: 'unknown-token' }).expect(401); // admitted, then refused by the route
      const metrics = (await request(running.internalUrl).get('/metrics').expect(200)).text;
      expect(Number(/^load_pressure_ratio\{signal="heap"\} ([\d.e+]+)$/m.exec(metrics)![1])).toBeGreaterThan(1);
    } finally {
      await running.close();
    }
  });

  it('with SHED_ENABLED=false sheds nothing at the same pressure, and still reports it', async () => {
    const running = await api({ SHED_ENABLED: 'false', SHED_MAX_HEAP_USED_BYTES: '1048576' });
    const held: HeldRequest[] = [];
    try {
      const f = fixtures(running);
      const user = await signUpAndLogin(running.url, 'Unshed');
      const productId = await f.product();
      for (let i = 0; i < 6; i++) held.push(new HeldRequest(running.url));
      await eventually(async () => (await inFlightGauge(running.internalUrl)) === 6);

      await request(running.url).get(`/v1/users/${user.id}`).set(f.as(user.accessToken)).expect(200);
      await request(running.url).get('/v1/products').set(f.as(f.customer)).expect(200);
      expect((await f.placeOrder(productId)).status).toBe(201);
      const metrics = (await request(running.internalUrl).get('/metrics').expect(200)).text;
      expect(metrics).toMatch(/^http_requests_shed_total\{class="sheddable"\} 0$/m);
      expect(metrics).toMatch(/^http_requests_shed_total\{class="normal"\} 0$/m);
      expect(metrics).toMatch(/^load_pressure_ratio\{signal="in_flight"\} 1\.75$/m); // 6 held + the scrape, of 4
    } finally {
      for (const h of held) h.hangUp();
      await running.close();
    }
  });
});
