import request from 'supertest';
import { createTestDatabase, deleteRedisPrefix, eventually, query, runId, uniqueEmail } from '../support/test-env';
import { AppProcess, freePort } from '../support/processes';
import { startRouter } from '../support/router';

/**
 * Extraction is configuration: the API runs with notifications switched off, and
 * apps/notifications-service runs the same module as its own process (own port, own
 * consumers, own database role). A router sends /v1/notifications/* to the service.
 */
describe('notifications extracted into its own service (two real processes)', () => {
  let db: string;
  let api: AppProcess;
  let service: AppProcess;
  let router: { url: string; close(): Promise<void> };
  let apiUrl: string;
  let serviceUrl: string;
  const prefix = `${runId()}:extraction`;

  beforeAll(async () => {
    db = await createTestDatabase();
    const [apiPort, servicePort] = [await freePort(), await freePort()];
    apiUrl = `http://127.0.0.1:${apiPort}`;
    serviceUrl = `http://127.0.0.1:${servicePort}`;
    const common = {
      DATABASE_URL: db,
      DB_ROLE_PREFIX: runId(),
      REDIS_URL: process.env.TEST_REDIS_URL!,
      REDIS_KEY_PREFIX: prefix,
      JWT_SECRET: 'extraction-test-secret-0123456789abcdef',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      OUTBOX_POLL_INTERVAL_MS: '250',
    };
    // The service first here; test/e2e/extraction-start-order.e2e.spec.ts starts the API
    // first and stops the service in between: routing comes from the manifests, so the
    // order does not matter.
    service = new AppProcess({ ...common, PORT: String(servicePort) }, 'notifications-service');
    service.start();
    await service.waitForLog(/"msg":"notifications-service listening"/);
    api = new AppProcess({ ...common, PORT: String(apiPort), MODULES_ENABLED: 'users,orders' });
    api.start();
    await api.waitForLog(/"msg":"api listening"/);
    router = await startRouter([{ prefix: '/v1/notifications', port: servicePort }], apiPort);
  }, 60_000);

  afterAll(async () => {
    api?.signal('SIGTERM');
    service?.signal('SIGTERM');
    await Promise.all([api?.exit, service?.exit]);
    await router?.close();
    await deleteRedisPrefix(process.env.TEST_REDIS_URL!, prefix);
  });

  it('an order placed on the API becomes a notification written and served by the service', async () => {
    const customer = { email: uniqueEmail('extracted'), password: 'correct horse battery', name: 'Extracted' };
    const boss = { email: uniqueEmail('boss'), password: 'correct horse battery', name: 'Boss' };
    const user = (await request(router.url).post('/v1/users').send(customer).expect(201)).body;
    await request(router.url).post('/v1/users').send(boss).expect(201);
    await query(db, `UPDATE users.users SET role = 'admin' WHERE lower(email) = lower($1)`, [boss.email]);
    const bossToken = (await request(router.url).post('/v1/auth/login').send({ email: boss.email, password: boss.password }).expect(200)).body.accessToken;
    const token = (await request(router.url).post('/v1/auth/login').send({ email: customer.email, password: customer.password }).expect(200)).body.accessToken;

    const product = (await request(router.url).post('/v1/products').set('Authorization', `Bearer ${bossToken}`)
      .send({ sku: 'EXTRACT-1', name: 'Extracted mug', priceCents: 1200, currency: 'EUR', stock: 5 }).expect(201)).body;
    const order = (await request(router.url).post('/v1/orders').set('Authorization', `Bearer ${token}`)
      .send({ items: [{ productId: product.id, quantity: 1 }] }).expect(201)).body;

    // Written by the service's consumer (the API runs no notifications consumer)...
    await eventually(async () => (await query(db, 'SELECT 1 FROM notifications.notifications WHERE user_id = $1', [user.id])).length >= 2, 20_000, 200);
    expect(service.text()).toMatch(new RegExp(`"eventType":"orders.order-placed.v1","module":"notifications"`));
    expect(api.text()).not.toMatch(/"module":"notifications"/);

    // ...and served by the service, through the router.
    const list = await eventually(async () => {
      const response = await request(router.url).get('/v1/notifications').set('Authorization', `Bearer ${token}`);
      return response.status === 200 && response.body.items.length >= 2 ? response.body : undefined;
    }, 10_000, 200);
    expect(JSON.stringify(list)).toContain(order.id.slice(0, 8));

    // The API itself has no notifications routes, consumers or connection.
    await request(apiUrl).get('/v1/notifications').set('Authorization', `Bearer ${token}`).expect(404);
    const apiReady = (await request(apiUrl).get('/health/ready').expect(200)).body.details;
    expect(Object.keys(apiReady).sort()).toEqual(['postgres:orders', 'postgres:users', 'redis']);
    const serviceReady = (await request(serviceUrl).get('/health/ready').expect(200)).body.details;
    expect(Object.keys(serviceReady).sort()).toEqual(['postgres:notifications', 'redis']);
  }, 60_000);
});
