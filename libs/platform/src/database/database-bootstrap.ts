import { Client } from 'pg';
import { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import type { AppConfig, ModuleDatabaseConfig } from '../config/app-config';
import { migrationNames, moduleDataSourceOptions, type ModuleDatabaseDefinition } from './module-database';
import { bootstrapPlatformSchema } from '../flags/platform-database';

const IDENTIFIER = /^[a-z][a-z0-9_]{0,62}$/;
const BOOTSTRAP_LOCK = 0x6d6d_0001; // any constant; serialises concurrent bootstraps

function ident(name: string): string {
  if (!IDENTIFIER.test(name)) throw new Error(`Refusing unsafe SQL identifier "${name}"`);
  return `"${name}"`;
}

function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * A serving process found its database not ready (DB_BOOTSTRAP_ON_START=false and no
 * bootstrap ran, or a module URL is wrong). The message is one line naming the module and
 * what to do.
 */
export class DatabaseNotReadyError extends Error {
  override name = 'DatabaseNotReadyError';
}

/**
 * Idempotently prepares the database through the admin URL (DATABASE_URL): revokes what
 * PUBLIC gets by default (CONNECT on the database, everything on schema `public`), creates
 * each module's login role with its own password and grants it CONNECT, creates its
 * schema, then runs each module's migrations as that module's own role (so the module
 * owns its tables) without the serving statement timeout. Safe to run from several
 * instances at once: an advisory lock serialises it. docs/architecture.md, "Database roles".
 */
export async function bootstrapDatabases(
  config: AppConfig,
  definitions: ModuleDatabaseDefinition[],
  logger: Logger,
): Promise<void> {
  const modules = definitions.map((definition) => config.databases[definition.module]);
  const shared = modules.find((db, i) => modules.findIndex((other) => other.role === db.role) !== i);
  if (shared) throw new Error(`Refusing to bootstrap: two modules would log in as role "${shared.role}" (each module needs its own role)`);
  const admin = new Client({ connectionString: config.env.DATABASE_URL, connectionTimeoutMillis: 5000 });
  await admin.connect();
  try {
    await admin.query('SELECT pg_advisory_lock($1)', [BOOTSTRAP_LOCK]);
    const { rows } = await admin.query<{ db: string }>('SELECT current_database() AS db');
    const database = rows[0].db;
    // Nothing by default: no role may connect to this database unless granted below, and
    // no role may create objects in (or use) schema public. PUBLIC means every role.
    await admin.query(`REVOKE CONNECT, TEMPORARY ON DATABASE ${ident(database)} FROM PUBLIC`);
    await admin.query('REVOKE ALL ON SCHEMA public FROM PUBLIC');
    for (const db of modules) {
      await ensureRole(admin, db, database);
      logger.info({ module: db.module, role: db.role, schema: db.schema }, 'database role and schema ready');
    }
    for (const definition of definitions) {
      const db = config.databases[definition.module];
      // Up to date (every migration of this build in the schema's history, as the admin
      // reads it): nothing to run, so no connection as the role and no TypeORM metadata
      // build just to find that out (README, "Design notes", "Start-up time").
      if (migrationsUpToDate(migrationNames(definition), await appliedMigrationNames(admin, db.schema))) {
        logger.info({ module: definition.module, applied: [] }, 'migrations up to date');
        continue;
      }
      const options = moduleDataSourceOptions(definition, db);
      const dataSource = new DataSource({
        ...options,
        extra: {
          ...options.extra,
          max: 1,
          // A migration may rewrite a large table: the serving timeout (DB_STATEMENT_TIMEOUT_MS)
          // would cancel it halfway. 0 = no limit.
          statement_timeout: config.env.DB_MIGRATION_STATEMENT_TIMEOUT_MS,
          idle_in_transaction_session_timeout: config.env.DB_MIGRATION_STATEMENT_TIMEOUT_MS,
        },
      } as typeof options);
      await dataSource.initialize();
      try {
        const applied = await dataSource.runMigrations({ transaction: 'each' });
        logger.info(
          { module: definition.module, applied: applied.map((m) => m.name) },
          applied.length ? 'migrations applied' : 'migrations up to date',
        );
      } finally {
        await dataSource.destroy();
      }
    }
    // The platform's own schema (feature flags), under the same lock.
    await bootstrapPlatformSchema(admin, config, logger);
  } finally {
    await admin.query('SELECT pg_advisory_unlock($1)', [BOOTSTRAP_LOCK]).catch(() => undefined);
    await admin.end();
  }
}

/**
 * The migration names of the schema's TypeORM history (`<schema>.migrations`), read by the
 * admin; null when there is no history yet or it cannot be read (then the caller runs the
 * migrations as the role, which finds out for itself).
 */
async function appliedMigrationNames(admin: Client, schema: string): Promise<Set<string> | null> {
  try {
    const { rows } = await admin.query<{ name: string }>(`SELECT name FROM ${ident(schema)}.migrations`);
    return new Set(rows.map((row) => row.name));
  } catch {
    return null;
  }
}

/** True when `applied` holds every one of `names` (null: unknown, so not up to date). */
function migrationsUpToDate(names: string[] | null, applied: ReadonlySet<string> | null): boolean {
  return names !== null && applied !== null && names.every((name) => applied.has(name));
}

async function ensureRole(admin: Client, db: ModuleDatabaseConfig, database: string): Promise<void> {
  const role = ident(db.role);
  const rawPassword = new URL(db.url).password;
  const password = rawPassword ? literal(decodeURIComponent(rawPassword)) : 'NULL';
  const exists = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [db.role]);
  if (exists.rowCount === 0) {
    await admin.query(`CREATE ROLE ${role} LOGIN`).catch((error: { code?: string }) => {
      // Another bootstrap on another database of the same cluster may have won the race.
      if (error.code !== '23505' && error.code !== '42710') throw error;
    });
  }
  // The role's own password (from its module URL); no role may create roles or databases.
  await admin.query(`ALTER ROLE ${role} LOGIN PASSWORD ${password} NOSUPERUSER NOCREATEDB NOCREATEROLE`);
  await admin.query(`GRANT CONNECT ON DATABASE ${ident(database)} TO ${role}`);
  await admin.query(`CREATE SCHEMA IF NOT EXISTS ${ident(db.schema)} AUTHORIZATION ${role}`);
  await admin.query(`ALTER SCHEMA ${ident(db.schema)} OWNER TO ${role}`);
}

/**
 * With DB_BOOTSTRAP_ON_START=false a serving process has only module URLs: before it
 * serves, each module's role must connect and find its schema fully migrated. Otherwise
 * it refuses with one line naming the module and what is missing.
 */
export async function verifyDatabases(config: AppConfig, definitions: ModuleDatabaseDefinition[]): Promise<void> {
  // The modules are independent: checked side by side (each on its own connection), and
  // the first module in definition order that is not ready is the one reported, as before.
  const results = await Promise.allSettled(definitions.map((definition) => verifyDatabase(config, definition)));
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw failed.reason;
}

async function verifyDatabase(config: AppConfig, definition: ModuleDatabaseDefinition): Promise<void> {
  const db = config.databases[definition.module];
  const hint = `run the bootstrap first (npm run db:bootstrap, the db-bootstrap job) or set DB_BOOTSTRAP_ON_START=true; check ${db.urlVariable}`;
  const notReady = (what: string) =>
    new DatabaseNotReadyError(`Database not ready for module "${db.module}": ${what}; ${hint}`);
  const options = moduleDataSourceOptions(definition, db);
  const dataSource = new DataSource({ ...options, extra: { ...options.extra, max: 1 } } as typeof options);
  try {
    await dataSource.initialize();
  } catch (error) {
    throw notReady(`role "${db.role}" cannot connect (${(error as Error).message.split('\n')[0]})`);
  }
  try {
    const [found] = await dataSource.query<{ table: string | null }[]>('SELECT to_regclass($1)::text AS table', [
      `"${db.schema}".migrations`,
    ]);
    if (!found.table) throw notReady(`schema "${db.schema}" has no migrations table`);
    // showMigrations() is true when a migration of this build has not been applied.
    if (await dataSource.showMigrations()) throw notReady(`schema "${db.schema}" has pending migrations`);
  } catch (error) {
    if (error instanceof DatabaseNotReadyError) throw error;
    throw notReady(`role "${db.role}" cannot read schema "${db.schema}" (${(error as Error).message.split('\n')[0]})`);
  } finally {
    await dataSource.destroy();
  }
}
