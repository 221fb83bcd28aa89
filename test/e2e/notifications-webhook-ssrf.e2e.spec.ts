import { lookup } from 'node:dns/promises';
import { hostname } from 'node:os';
import request from 'supertest';
import { OrderEvents } from '@app/orders/contracts';
import { QueueFactory } from '@app/platform';
import { signUpAndLogin, type SignedUpUser } from '../support/auth-helpers';
import { deliveriesOf, notificationsOf, orderEvent, publishOrderEvent, WebhookReceiver, type DeliveryRow } from '../support/notifications';
import { eventsSettled } from '../support/settled';
import { createTestDatabase, eventually, query, startApi, type RunningApi } from '../support/test-env';

/**
 * Webhooks must not become a way into the network the service runs in (SSRF): with
 * NOTIFICATIONS_ALLOW_PRIVATE_WEBHOOKS off (the default) a URL whose host is a literal
 * loopback, private, link-local or metadata address (or `localhost`) is refused when it is
 * saved; DNS is not asked then. Every delivery resolves the host and sends nothing unless
 * every address is public, and a host that does not resolve and one that resolves
 * internally end the same way, so users cannot probe internal names.
 */
describe('Webhook destinations: no internal addresses (e2e)', () => {
  let db: string;
  let api: RunningApi;
  let user: SignedUpUser;
  let hook: WebhookReceiver;

  beforeAll(async () => {
    db = await createTestDatabase();
    hook = await new WebhookReceiver().start();
    // NOTIFICATIONS_ALLOW_PRIVATE_WEBHOOKS keeps its default: false.
    api = await startApi(db, { env: { NOTIFICATIONS_DELIVERY_MAX_ATTEMPTS: '3', NOTIFICATIONS_DELIVERY_BACKOFF_BASE_MS: '50' } });
    user = await signUpAndLogin(api.url, 'Mallory');
  });
  afterAll(async () => {
    await api?.close();
    await hook?.stop();
  });

  it.each([
    'http://127.0.0.1:8080/hook',
    'http://localhost/hook',
    'http://api.localhost:8080/hook',
    'http://169.254.169.254/latest/meta-data/',
    'http://[::1]/hook',
    'http://[::ffff:127.0.0.1]/hook',
    'http://[fd00:ec2::254]/',
    'http://10.0.0.8/hook',
    'http://172.16.5.4/hook',
    'https://192.168.1.1/hook',
    'http://0.0.0.0/hook',
    'http://2130706433/hook',
  ])('PUT preferences refuses %s with 400 naming webhookUrl', async (webhookUrl) => {
    const response = await request(api.url)
      .put('/v1/notifications/preferences')
      .set({ Authorization: `Bearer ${user.accessToken}` })
      .send({ email: true, webhookUrl })
      .expect(400);
    expect(response.body.errors).toEqual([{ field: 'webhookUrl', message: 'must not point to a loopback, private, link-local or metadata address' }]);
    expect(await query(db, 'SELECT 1 FROM notifications.preferences WHERE user_id = $1', [user.id])).toHaveLength(0);
  });

  const auth = (who: SignedUpUser) => ({ Authorization: `Bearer ${who.accessToken}` });
  const putWebhook = (who: SignedUpUser, webhookUrl: string) =>
    request(api.url).put('/v1/notifications/preferences').set(auth(who)).send({ email: false, webhookUrl });

  async function deadWebhookDelivery(who: SignedUpUser): Promise<DeliveryRow> {
    const [delivery] = await eventually(async () => {
      const rows = await deliveriesOf(db, who.id, 'webhook');
      return rows[0]?.status === 'dead' ? rows : undefined;
    });
    return delivery;
  }

  it('saves a URL whose host does not resolve (no DNS when saving: a failure then must not refuse a valid setting)', async () => {
    const who = await signUpAndLogin(api.url, 'Nomad');
    const saved = await putWebhook(who, 'https://does-not-exist.invalid/hook').expect(200);
    expect(saved.body).toEqual({ email: false, webhookUrl: 'https://does-not-exist.invalid/hook', webhookSecret: expect.stringMatching(/^whsec_/) });
    expect((await request(api.url).get('/v1/notifications/preferences').set(auth(who)).expect(200)).body.webhookUrl).toBe(
      'https://does-not-exist.invalid/hook',
    );
  });

  it('refuses at delivery a host that does not resolve and one that resolves internally in the same way, calling nothing', async () => {
    // This machine's own name resolves to one of its addresses: loopback or private wherever tests run.
    const internalName = hostname();
    const addresses = await lookup(internalName, { all: true });
    expect(addresses.length).toBeGreaterThan(0);
    const port = new URL(hook.url).port;
    const [missing, internal] = await Promise.all([signUpAndLogin(api.url, 'Missing'), signUpAndLogin(api.url, 'Internal')]);
    for (const who of [missing, internal]) await eventually(async () => (await notificationsOf(db, who.id)).length === 1);
    // Both are saved: what a name resolves to is not known when it is saved.
    await putWebhook(missing, `http://does-not-exist.invalid:${port}/hook`).expect(200);
    await putWebhook(internal, `http://${internalName}:${port}/hook`).expect(200);

    await publishOrderEvent(db, OrderEvents.placed, orderEvent(missing.id));
    await publishOrderEvent(db, OrderEvents.placed, orderEvent(internal.id));
    const [a, b] = await Promise.all([deadWebhookDelivery(missing), deadWebhookDelivery(internal)]);

    // Retried like any failure (DNS may answer otherwise later), then dead; the same record either way.
    const asSeen = (d: DeliveryRow, host: string) => ({ status: d.status, attempts: d.attempts, last_error: d.last_error?.replace(host, '<host>') });
    expect(asSeen(a, 'does-not-exist.invalid')).toEqual({
      status: 'dead',
      attempts: 3,
      last_error: 'DestinationRefusedError: destination refused: <host> has no address webhooks may reach',
    });
    expect(asSeen(b, internalName.toLowerCase())).toEqual(asSeen(a, 'does-not-exist.invalid'));
    // And what the user sees in the API is identical.
    const seen = async (who: SignedUpUser) =>
      (await request(api.url).get('/v1/notifications').set(auth(who)).expect(200)).body.items.find((n: { kind: string }) => n.kind === 'order-placed').deliveries;
    expect(await seen(internal)).toEqual(await seen(missing));
    expect(await seen(missing)).toEqual([{ channel: 'webhook', status: 'dead', attempts: 3 }]);
    expect(hook.received).toHaveLength(0);
  });

  it('checks again at delivery time: a stored internal URL gets no request, and its delivery ends dead like any refused one', async () => {
    // As if the URL had been saved while the setting was on (or DNS changed since).
    await query(
      db,
      `INSERT INTO notifications.preferences (user_id, email_enabled, webhook_url, webhook_secret) VALUES ($1, false, $2, 'whsec_test')`,
      [user.id, hook.url],
    );
    await publishOrderEvent(db, OrderEvents.placed, orderEvent(user.id));
    const delivery = await deadWebhookDelivery(user);
    expect(delivery.attempts).toBe(3);
    expect(delivery.last_error).toBe('DestinationRefusedError: destination refused: 127.0.0.1 has no address webhooks may reach');
    // Once nothing is under way any more (no event, delivery or retry), the job is in the
    // failed set after its attempts, and the receiver was never called.
    await eventsSettled(api.app, db);
    const job = await api.app.get(QueueFactory).get('notifications.webhook').getJob(delivery.id);
    expect(await job?.getState()).toBe('failed');
    expect(job?.attemptsMade).toBe(3);
    expect(hook.received).toHaveLength(0);
  });
});
