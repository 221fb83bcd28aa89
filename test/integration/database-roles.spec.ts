import { Client } from 'pg';
import pino from 'pino';
import { DataSource, type MigrationInterface, type QueryRunner } from 'typeorm';
import { MODULE_MANIFESTS } from '@app/manifests';
import { bootstrapDatabases, loadConfig, moduleDataSourceOptions, type AppConfig } from '@app/platform';
import { enabledDatabases } from '../../apps/api/src/api.app';
import { freePort, ThrowawayPostgres } from '../support/processes';
import { adminUrl, query, runId } from '../support/test-env';

/**
 * Least privilege in the database (docs/architecture.md, "Database roles"): each module
 * role has its own password, role names carry a per-environment prefix, nothing is granted
 * to PUBLIC, and migrations run without the serving statement timeout.
 */
const logger = pino({ level: 'silent' });
const MODULES = MODULE_MANIFESTS.map((m) => m.name);

const config = (env: Record<string, string>): AppConfig => loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', ...env }, MODULE_MANIFESTS);

async function connect(url: string): Promise<Client> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  return client;
}

async function canConnect(url: string): Promise<true | string> {
  try {
    const client = await connect(url);
    await client.end();
    return true;
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
}

/** An empty database on the shared server (dropped by the global teardown: it has the run id). */
async function emptyDatabase(tag: string): Promise<string> {
  const name = `${runId()}_${tag}`;
  await query(adminUrl(), `CREATE DATABASE "${name}"`);
  return adminUrl(name);
}

describe('Module_Roles_Have_Their_Own_Passwords', () => {
  // The shared server trusts every connection; this one checks passwords (scram-sha-256).
  let server: ThrowawayPostgres;
  let cfg: AppConfig;

  beforeAll(async () => {
    server = new ThrowawayPostgres(await freePort());
    await server.start();
    cfg = config({ DATABASE_URL: server.adminUrl(), DB_ROLE_PREFIX: 'shop', ORDERS_DB_PASSWORD: 'orders-own-password' });
    await bootstrapDatabases(cfg, enabledDatabases(cfg), logger);
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('every role logs in with its own password', async () => {
    for (const module of MODULES) expect(await canConnect(cfg.databases[module].url)).toBe(true);
    expect(decodeURIComponent(new URL(cfg.databases.orders.url).password)).toBe('orders-own-password');
  });

  it.each(MODULES.flatMap((as) => MODULES.filter((other) => other !== as).map((other) => [as, other])))(
    'role of %s is refused with the password of %s',
    async (as, other) => {
      const url = new URL(cfg.databases[as].url);
      url.password = new URL(cfg.databases[other].url).password;
      expect(await canConnect(url.toString())).toBe('28P01'); // invalid_password
    },
  );
});

describe('Role_Prefixes_Keep_Environments_Apart', () => {
  let staging: AppConfig;
  let production: AppConfig;

  beforeAll(async () => {
    const stagingDb = await emptyDatabase('staging');
    const productionDb = await emptyDatabase('production');
    staging = config({ DATABASE_URL: stagingDb, DB_ROLE_PREFIX: `${runId()}_stg` });
    production = config({ DATABASE_URL: productionDb, DB_ROLE_PREFIX: `${runId()}_prd` });
    await bootstrapDatabases(staging, enabledDatabases(staging), logger);
    await bootstrapDatabases(production, enabledDatabases(production), logger);
    // What any role might be handed in public by an extension or a careless script.
    await query(productionDb, 'CREATE TABLE public.leak (secret text); GRANT SELECT ON public.leak TO PUBLIC');
  }, 60_000);

  it('names roles <prefix>_<module>, and both environments have their own in one server', async () => {
    const roles = await query<{ rolname: string }>(adminUrl(), 'SELECT rolname FROM pg_roles WHERE rolname LIKE $1 ORDER BY 1', [`${runId()}\\_%\\_%`]);
    const names = roles.map((r) => r.rolname);
    for (const module of MODULES) {
      expect(staging.databases[module].role).toBe(`${runId()}_stg_${module}`);
      expect(names).toEqual(expect.arrayContaining([`${runId()}_stg_${module}`, `${runId()}_prd_${module}`]));
    }
  });

  it.each(MODULES)('role of %s connects to its own database and is refused CONNECT on the other', async (module) => {
    expect(await canConnect(staging.databases[module].url)).toBe(true);
    expect(await canConnect(production.databases[module].url)).toBe(true);
    const stagingRoleOnProduction = new URL(production.databases[module].url);
    stagingRoleOnProduction.username = staging.databases[module].role;
    stagingRoleOnProduction.password = new URL(staging.databases[module].url).password;
    expect(await canConnect(stagingRoleOnProduction.toString())).toBe('42501'); // no CONNECT privilege
  });

  it('PUBLIC has no CONNECT on the database, only the module roles (and the owner)', async () => {
    const [row] = await query<{ acl: string }>(adminUrl(), 'SELECT datacl::text AS acl FROM pg_database WHERE datname = $1', [
      new URL(production.env.DATABASE_URL).pathname.slice(1),
    ]);
    expect(row.acl).not.toMatch(/(^|[{,])=/); // an entry "=c/owner" would be PUBLIC's
    for (const module of MODULES) expect(row.acl).toContain(`${production.databases[module].role}=c/`);
  });

  it.each(MODULES)('role of %s can neither create objects in public nor use what PUBLIC was granted there', async (module) => {
    const client = await connect(production.databases[module].url);
    try {
      await expect(client.query('CREATE TABLE public.sneaky (id int)')).rejects.toMatchObject({ code: '42501' });
      await expect(client.query('SELECT secret FROM public.leak')).rejects.toMatchObject({
        code: '42501',
        message: expect.stringMatching(/permission denied for schema public/),
      });
    } finally {
      await client.end();
    }
  });
});

class SlowMigration1700000000000 implements MigrationInterface {
  name = 'SlowMigration1700000000000';
  async up(runner: QueryRunner): Promise<void> {
    // Longer than the serving statement timeout (DB_STATEMENT_TIMEOUT_MS, 2 s by default).
    await runner.query('SELECT pg_sleep(2.3)');
    await runner.query('CREATE TABLE slow_done (id int)');
  }
  async down(runner: QueryRunner): Promise<void> {
    await runner.query('DROP TABLE slow_done');
  }
}

describe('Migrations_Run_Without_The_Serving_Statement_Timeout', () => {
  it('a migration longer than 2 s succeeds through the bootstrap, while serving connections keep the 2 s limit', async () => {
    const db = await emptyDatabase('slowmig');
    const cfg = config({ DATABASE_URL: db, DB_ROLE_PREFIX: `${runId()}_slow`, MODULES_ENABLED: 'orders' });
    expect(cfg.databases.orders.statementTimeoutMs).toBe(2000);
    const definition = { module: 'orders', entities: [], migrations: [SlowMigration1700000000000] };
    await bootstrapDatabases(cfg, [definition], logger);
    expect(await query(db, 'SELECT name FROM orders.migrations')).toEqual([{ name: 'SlowMigration1700000000000' }]);
    expect(await query(db, "SELECT to_regclass('orders.slow_done')::text AS t")).toEqual([{ t: 'orders.slow_done' }]);

    const serving = new DataSource(moduleDataSourceOptions(definition, cfg.databases.orders));
    await serving.initialize();
    try {
      await expect(serving.query('SELECT pg_sleep(2.3)')).rejects.toMatchObject({ driverError: { code: '57014' } });
    } finally {
      await serving.destroy();
    }
  }, 30_000);
});
