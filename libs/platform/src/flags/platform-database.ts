import { Client } from 'pg';
import type { Logger } from 'pino';
import type { AppConfig } from '../config/app-config';

/** The platform's own schema: tables no domain module owns (today: `flags`). */
export const PLATFORM_SCHEMA = 'platform';
/** NOTIFY channel of `platform.flags` changes (database-scoped, like the outbox channels). */
export const FLAGS_CHANNEL = 'flags_changed';

export interface PlatformDatabase {
  role: string;
  url: string;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
}

/**
 * The platform's connection: its own role `<DB_ROLE_PREFIX>_platform`, which owns schema
 * `platform` and nothing else (no module role can read it, and it can read no module's
 * schema). Its URL and password follow the modules' rules (FLAGS_DATABASE_URL or
 * FLAGS_DB_PASSWORD; see loadConfig), so it shares no password with any module role.
 */
export function platformDatabase(config: AppConfig): PlatformDatabase {
  const { role, url } = config.platformDatabase;
  return { role, url, connectTimeoutMs: config.env.DB_CONNECT_TIMEOUT_MS, statementTimeoutMs: config.env.DB_STATEMENT_TIMEOUT_MS };
}

/**
 * The platform schema's migrations, in order; applied once each (history in
 * `platform.migrations`) by the platform role, so it owns what they create. Append only.
 */
const PLATFORM_MIGRATIONS: readonly { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'create-flags',
    sql: `
      CREATE TABLE platform.flags (
        key        text PRIMARY KEY,
        state      text NOT NULL CHECK (state IN ('on', 'off', 'rollout')),
        percentage smallint NOT NULL DEFAULT 0 CHECK (percentage BETWEEN 0 AND 100),
        user_ids   text[] NOT NULL DEFAULT '{}',
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      -- Any change, by the CLI or by hand, wakes every instance's flag cache at once.
      CREATE FUNCTION platform.notify_flags_changed() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('${FLAGS_CHANNEL}', '');
        RETURN NULL;
      END $$;
      CREATE TRIGGER flags_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON platform.flags
        FOR EACH STATEMENT EXECUTE FUNCTION platform.notify_flags_changed();`,
  },
];

const IDENTIFIER = /^[a-z][a-z0-9_]{0,62}$/;
const quote = (name: string) => {
  if (!IDENTIFIER.test(name)) throw new Error(`Refusing unsafe SQL identifier "${name}"`);
  return `"${name}"`;
};
const literal = (value: string) => `'${value.replace(/'/g, "''")}'`;

/**
 * Creates the platform role and schema through the admin connection (the caller holds the
 * bootstrap's advisory lock), then applies the platform's migrations as that role.
 * Idempotent, like the modules' part of the bootstrap.
 */
export async function bootstrapPlatformSchema(admin: Client, config: AppConfig, logger: Logger): Promise<void> {
  const db = platformDatabase(config);
  const role = quote(db.role);
  const password = decodeURIComponent(new URL(db.url).password);
  const exists = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [db.role]);
  if (exists.rowCount === 0) {
    await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD ${literal(password)}`).catch((error: { code?: string }) => {
      if (error.code !== '23505' && error.code !== '42710') throw error; // created meanwhile on another database
    });
  }
  await admin.query(`ALTER ROLE ${role} LOGIN PASSWORD ${literal(password)} NOSUPERUSER NOCREATEDB NOCREATEROLE`);
  const [{ db: database }] = (await admin.query<{ db: string }>('SELECT current_database() AS db')).rows;
  await admin.query(`GRANT CONNECT ON DATABASE ${quote(database)} TO ${role}`);
  await admin.query(`CREATE SCHEMA IF NOT EXISTS ${PLATFORM_SCHEMA} AUTHORIZATION ${role}`);
  await admin.query(`ALTER SCHEMA ${PLATFORM_SCHEMA} OWNER TO ${role}`);

  // Up to date as the admin reads the history: no connection as the role just to find that out.
  const recorded = await admin.query<{ version: number }>(`SELECT version FROM ${PLATFORM_SCHEMA}.migrations`).then(
    (result) => new Set(result.rows.map((r) => r.version)),
    () => null, // no history yet (or unreadable): the role creates and checks it below
  );
  if (recorded && PLATFORM_MIGRATIONS.every((migration) => recorded.has(migration.version))) {
    logger.info({ role: db.role, schema: PLATFORM_SCHEMA, applied: [] }, 'platform migrations up to date');
    return;
  }

  const client = new Client({ connectionString: db.url, connectionTimeoutMillis: 5000, application_name: 'mm:platform:bootstrap' });
  await client.connect();
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS ${PLATFORM_SCHEMA}.migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set((await client.query<{ version: number }>(`SELECT version FROM ${PLATFORM_SCHEMA}.migrations`)).rows.map((r) => r.version));
    const applied: string[] = [];
    for (const migration of PLATFORM_MIGRATIONS) {
      if (done.has(migration.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(migration.sql);
        await client.query(`INSERT INTO ${PLATFORM_SCHEMA}.migrations (version, name) VALUES ($1, $2)`, [migration.version, migration.name]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
      applied.push(migration.name);
    }
    logger.info({ role: db.role, schema: PLATFORM_SCHEMA, applied }, applied.length ? 'platform migrations applied' : 'platform migrations up to date');
  } finally {
    await client.end();
  }
}
