import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { USERS_FACADE, UserEvents, type UserDeletedV1, type UserRegisteredV1, type UsersFacade } from '@app/users/contracts';
import { bootModuleAlone, type IsolatedModule } from '../support/module-harness';
import { eventually, query } from '../support/test-env';

/** Module_Works_With_Other_Modules_Absent: each module boots and works with only the platform. */
describe('Each module works with the other modules absent', () => {
  describe('orders alone (users faked behind UsersFacade)', () => {
    let orders: IsolatedModule;
    const facade: UsersFacade = { findUser: async (id) => ({ id, name: 'Faked Customer', role: 'customer' }) };

    beforeAll(async () => {
      orders = await bootModuleAlone('orders', { fakes: [{ provide: USERS_FACADE, useValue: facade }] });
    });
    afterAll(async () => orders?.close());

    it('sells, reads through the facade, and reacts to users.user-deleted.v1 from its inbox', async () => {
      const admin = orders.token('admin');
      const buyer = orders.token();
      const auth = (t: string) => ({ Authorization: `Bearer ${t}` });
      const product = (await request(orders.url).post('/v1/products').set(auth(admin.token)).send({ sku: 'ALONE-1', name: 'Alone', priceCents: 500, currency: 'EUR', stock: 4 }).expect(201)).body;
      const order = (await request(orders.url).post('/v1/orders').set(auth(buyer.token)).send({ items: [{ productId: product.id, quantity: 3 }] }).expect(201)).body;
      const asAdmin = await request(orders.url).get(`/v1/orders/${order.id}`).set(auth(admin.token)).expect(200);
      expect(asAdmin.body.customer).toEqual({ id: buyer.userId, name: 'Faked Customer' });
      // No users routes, tables or connection exist in this process.
      await request(orders.url).post('/v1/users').send({}).expect(404);
      expect((await request(orders.url).get('/health/ready').expect(200)).body.details).not.toHaveProperty('postgres:users');

      await orders.deliver<UserDeletedV1>(UserEvents.deleted, { userId: buyer.userId, deletedAt: new Date().toISOString() });
      const [row] = await query<{ status: string }>(orders.db, 'SELECT status FROM orders.orders WHERE id = $1', [order.id]);
      expect(row.status).toBe('cancelled');
      expect((await query<{ stock: number }>(orders.db, 'SELECT stock FROM orders.products WHERE id = $1', [product.id]))[0].stock).toBe(4);
    });
  });

  describe('users alone', () => {
    let users: IsolatedModule;
    beforeAll(async () => {
      users = await bootModuleAlone('users');
    });
    afterAll(async () => users?.close());

    it('signs up, signs in and serves profiles without orders or notifications', async () => {
      const email = `alone-${randomUUID().slice(0, 8)}@example.com`;
      const created = await request(users.url).post('/v1/users').send({ email, password: 'correct horse battery', name: 'Solo' }).expect(201);
      const login = await request(users.url).post('/v1/auth/login').send({ email, password: 'correct horse battery' }).expect(200);
      await request(users.url).get(`/v1/users/${created.body.id}`).set('Authorization', `Bearer ${login.body.accessToken}`).expect(200);
      await request(users.url).get('/v1/orders').set('Authorization', `Bearer ${login.body.accessToken}`).expect(404);
    });
  });

  describe('notifications alone', () => {
    let notifications: IsolatedModule;
    beforeAll(async () => {
      notifications = await bootModuleAlone('notifications');
    });
    afterAll(async () => notifications?.close());

    it('turns a delivered users.user-registered.v1 into one welcome notification, once', async () => {
      const userId = randomUUID();
      const event = await notifications.deliver<UserRegisteredV1>(UserEvents.registered, { userId, email: 'solo@example.com', name: 'Solo', registeredAt: new Date().toISOString() });
      await eventually(async () => (await query(notifications.db, 'SELECT 1 FROM notifications.notifications WHERE user_id = $1', [userId])).length === 1);
      expect(event.type).toBe('users.user-registered.v1');
    });
  });
});
