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
});
