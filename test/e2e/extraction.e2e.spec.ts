import { spawnSync } from 'node:child_process';
import path from 'node:path';
import request from 'supertest';
import { generateSigningKey } from '@app/platform';
import { createTestDatabase, deleteRedisPrefix, eventually, query, runId, uniqueEmail } from '../support/test-env';
import { decodeClaims, forgeToken, keyPairEnv } from '../support/auth-helpers';
import { AppProcess, freePort, ROOT } from '../support/processes';
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
  const keys = keyPairEnv();

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
      // Public key only: the service verifies, only the API (users) signs.
      ...keys.verifier,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      OUTBOX_POLL_INTERVAL_MS: '250',
    };
    // The service first here; test/e2e/extraction-start-order.e2e.spec.ts starts the API
    // first and stops the service in between: routing comes from the manifests, so the
    // order does not matter.
    service = new AppProcess({ ...common, PORT: String(servicePort) }, 'notifications-service');
    service.start();
    // Generous: a cold Nest boot on a loaded 2-core machine has taken over 20 s.
    await service.waitForLog(/"msg":"notifications-service listening"/, 45_000);
    api = new AppProcess({ ...common, PORT: String(apiPort), MODULES_ENABLED: 'users,orders', ...keys.signer });
    api.start();
    await api.waitForLog(/"msg":"api listening"/, 45_000);
    router = await startRouter([{ prefix: '/v1/notifications', port: servicePort }], apiPort);
  }, 100_000);

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

  it('the service verifies the API\'s tokens with the public key alone and holds nothing that can mint one', async () => {
    const customer = { email: uniqueEmail('verifier'), password: 'correct horse battery', name: 'Verifier' };
    await request(router.url).post('/v1/users').send(customer).expect(201);
    const credentials = { email: customer.email, password: customer.password };
    const login = (await request(router.url).post('/v1/auth/login').send(credentials).expect(200)).body;
    // Straight to the service, minted by the API: verified with AUTH_PUBLIC_KEYS only.
    await request(serviceUrl).get('/v1/notifications').set('Authorization', `Bearer ${login.accessToken}`).expect(200);
    // No signing code or key there: no login, no refresh, no key set of its own, no generated key.
    await request(serviceUrl).post('/v1/auth/login').send(credentials).expect(404);
    await request(serviceUrl).post('/v1/auth/refresh').send({ refreshToken: login.refreshToken }).expect(404);
    await request(serviceUrl).get('/.well-known/jwks.json').expect(404);
    expect(service.text()).not.toMatch(/key generated for this start/);
    // A token from any other key is refused, as problem+json.
    const claims = decodeClaims(login.accessToken);
    const stranger = generateSigningKey();
    const forged = await request(serviceUrl)
      .get('/v1/notifications')
      .set('Authorization', `Bearer ${forgeToken({ alg: 'EdDSA', typ: 'JWT', kid: stranger.kid }, { ...claims, role: 'admin' }, stranger.privateKey)}`)
      .expect(401);
    expect(forged.headers['content-type']).toMatch(/^application\/problem\+json/);
    // Logout on the API ends the token on the service too (shared revocation).
    await request(router.url).post('/v1/auth/logout').set('Authorization', `Bearer ${login.accessToken}`).expect(204);
    await request(serviceUrl).get('/v1/notifications').set('Authorization', `Bearer ${login.accessToken}`).expect(401);
  }, 30_000);

  it('a production service handed the private key refuses to start (exit 78, the key not echoed)', () => {
    const privateKey = keys.signer.USERS_TOKEN_SIGNING_KEY;
    const result = spawnSync(process.execPath, [path.join(ROOT, 'dist/apps/notifications-service/src/main.js')], {
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', NOTIFICATIONS_DB_PASSWORD: 'notifications-pass', FLAGS_DB_PASSWORD: 'platform-pass', ...keys.signer },
      encoding: 'utf8',
      timeout: 45_000,
    });
    expect(result.status).toBe(78);
    expect(result.stderr.trim()).toMatch(/^Invalid configuration: USERS_TOKEN_SIGNING_KEY must not be set in notifications-service/);
    const body = privateKey.split('\n').filter((line) => line && !line.startsWith('-----'));
    for (const line of body) expect(result.stderr + result.stdout).not.toContain(line);
  }, 60_000);
});
