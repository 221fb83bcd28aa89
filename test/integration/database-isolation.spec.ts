import { Client } from 'pg';
import { MODULE_MANIFESTS } from '@app/manifests';
import type { DomainModuleName } from '@app/platform';
import { createTestDatabase, testConfig } from '../support/test-env';

/**
 * Rule: each module owns a schema, and its own database role has privileges on that
 * schema only. A query from one module into another's tables fails in Postgres itself.
 */
const DOMAIN_MODULES = MODULE_MANIFESTS.map((m) => m.name);

describe('Module_Role_Is_Denied_On_Other_Module_Schemas', () => {
  let db: string;
  const clients = new Map<DomainModuleName, Client>();

  beforeAll(async () => {
    db = await createTestDatabase();
    const config = testConfig(db);
    for (const module of DOMAIN_MODULES) {
      const client = new Client({ connectionString: config.databases[module].url });
      await client.connect();
      clients.set(module, client);
    }
  });
  afterAll(async () => {
    await Promise.all([...clients.values()].map((c) => c.end()));
  });

  const pairs = DOMAIN_MODULES.flatMap((from) => DOMAIN_MODULES.filter((to) => to !== from).map((to) => [from, to] as const));

  it.each(pairs)('role of %s gets "permission denied" reading and writing schema %s', async (from, to) => {
    const client = clients.get(from)!;
    await expect(client.query(`SELECT count(*) FROM "${to}".outbox`)).rejects.toMatchObject({
      code: '42501',
      message: expect.stringMatching(/permission denied for schema/),
    });
    await expect(
      client.query(`INSERT INTO "${to}".inbox (event_id, event_type) VALUES (gen_random_uuid(), 'x')`),
    ).rejects.toMatchObject({ code: '42501' });
  });

  it.each(DOMAIN_MODULES)('role of %s can use its own schema', async (module) => {
    const client = clients.get(module)!;
    const { rows } = await client.query(`SELECT count(*)::int AS n FROM "${module}".outbox`);
    expect(rows[0].n).toBeGreaterThanOrEqual(0);
    const whoami = await client.query('SELECT current_user AS role');
    expect(whoami.rows[0].role).toBe(`${process.env.TEST_RUN_ID}_${module}`);
  });

  it.each(DOMAIN_MODULES)('role of %s cannot create tables outside its schema (public)', async (module) => {
    await expect(clients.get(module)!.query('CREATE TABLE public.sneaky (id int)')).rejects.toMatchObject({ code: '42501' });
  });

  it('a users table is out of reach for the orders role (the brief\'s example)', async () => {
    await expect(clients.get('orders')!.query('SELECT email FROM users.users')).rejects.toThrow(/permission denied/);
  });

  // Notifications are partitioned by month (docs/architecture.md, "Notification partitions"):
  // its role keeps its partitions itself, in its own schema only.
  describe('partitions of notifications.notifications', () => {
    const month = '2199-01-01';

    it('the notifications role creates, detaches and drops month partitions of its own tables', async () => {
      const own = clients.get('notifications')!;
      const { rows } = await own.query('SELECT created FROM notifications.ensure_month_partition($1::date)', [month]);
      expect(rows).toEqual([{ created: true }]);
      await own.query('BEGIN');
      await own.query('ALTER TABLE notifications.deliveries DETACH PARTITION notifications.deliveries_p2199_01');
      await own.query('DROP TABLE notifications.deliveries_p2199_01');
      await own.query('ALTER TABLE notifications.notifications DETACH PARTITION notifications.notifications_p2199_01');
      await own.query('DROP TABLE notifications.notifications_p2199_01');
      await own.query('COMMIT');
      expect((await own.query(`SELECT to_regclass('notifications.notifications_p2199_01') AS t`)).rows).toEqual([{ t: null }]);
    });

    it('it cannot put a partition of its tables in another schema', async () => {
      await expect(
        clients.get('notifications')!.query(`CREATE TABLE public.sneaky_p PARTITION OF notifications.notifications FOR VALUES FROM ('2198-01-01') TO ('2198-02-01')`),
      ).rejects.toMatchObject({ code: '42501' });
    });

    it.each(DOMAIN_MODULES.filter((m) => m !== 'notifications'))('role of %s can neither add, detach nor create partitions of notifications', async (from) => {
      const client = clients.get(from)!;
      await expect(
        client.query(`CREATE TABLE "${from}".sneaky_p PARTITION OF notifications.notifications FOR VALUES FROM ('2198-01-01') TO ('2198-02-01')`),
      ).rejects.toMatchObject({ code: '42501' });
      await expect(client.query('ALTER TABLE notifications.notifications DETACH PARTITION notifications.notifications_default')).rejects.toMatchObject({ code: '42501' });
      await expect(client.query('SELECT notifications.ensure_month_partition($1::date)', [month])).rejects.toMatchObject({ code: '42501' });
    });
  });
});
