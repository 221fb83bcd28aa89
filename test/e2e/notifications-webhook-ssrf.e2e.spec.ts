import request from 'supertest';
import { OrderEvents } from '@app/orders/contracts';
import { QueueFactory } from '@app/platform';
import { signUpAndLogin, type SignedUpUser } from '../support/auth-helpers';
import { deliveriesOf, orderEvent, publishOrderEvent, WebhookReceiver } from '../support/notifications';
import { eventsSettled } from '../support/settled';
import { createTestDatabase, eventually, query, startApi, type RunningApi } from '../support/test-env';

/**
 * Webhooks must not become a way into the network the service runs in (SSRF): with
 * NOTIFICATIONS_ALLOW_PRIVATE_WEBHOOKS off (the default) a URL whose host is or resolves to
 * a loopback, private, link-local or metadata address is refused when it is saved, and
 * again at delivery time, where nothing is sent.
 */
describe('Webhook destinations: no internal addresses (e2e)', () => {
  let db: string;
  let api: RunningApi;
  let user: SignedUpUser;
  let hook: WebhookReceiver;

  beforeAll(async () => {
    db = await createTestDatabase();
    hook = await new WebhookReceiver().start();
    api = await startApi(db); // NOTIFICATIONS_ALLOW_PRIVATE_WEBHOOKS keeps its default: false
    user = await signUpAndLogin(api.url, 'Mallory');
  });
  afterAll(async () => {
    await api?.close();
    await hook?.stop();
  });

  it.each([
    'http://127.0.0.1:8080/hook',
    'http://localhost/hook',
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

  it('checks again at delivery time: a stored internal URL gets no request and the delivery is dead at once', async () => {
    // As if the URL had been saved while the setting was on (or DNS changed since).
    await query(
      db,
      `INSERT INTO notifications.preferences (user_id, email_enabled, webhook_url, webhook_secret) VALUES ($1, false, $2, 'whsec_test')`,
      [user.id, hook.url],
    );
    await publishOrderEvent(db, OrderEvents.placed, orderEvent(user.id));
    const [delivery] = await eventually(async () => {
      const rows = await deliveriesOf(db, user.id, 'webhook');
      return rows[0]?.status === 'dead' ? rows : undefined;
    });
    expect(delivery.attempts).toBe(1);
    expect(delivery.last_error).toMatch(/^DestinationNotAllowedError: 127\.0\.0\.1 resolves to 127\.0\.0\.1, an internal address/);
    // Once nothing is under way any more (no event, delivery or retry), the job is in the
    // failed set after its one attempt, and the receiver was never called.
    await eventsSettled(api.app, db);
    const job = await api.app.get(QueueFactory).get('notifications.webhook').getJob(delivery.id);
    expect(await job?.getState()).toBe('failed');
    expect(job?.attemptsMade).toBe(1);
    expect(hook.received).toHaveLength(0);
  });
});
