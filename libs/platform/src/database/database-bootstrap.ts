import { Client } from 'pg';
import { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import type { AppConfig } from '../config/app-config';
import { moduleDataSourceOptions, type ModuleDatabaseDefinition } from './module-database';
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
 * Idempotently creates each module's login role and schema through the admin URL, then
 * runs each module's migrations as that module's own role (so the module owns its
 * tables). Safe to run from several instances at once: an advisory lock serialises it.
 */
export async function bootstrapDatabases(
  config: AppConfig,
  definitions: ModuleDatabaseDefinition[],
  logger: Logger,
): Promise<void> {
  const admin = new Client({ connectionString: config.env.DATABASE_URL, connectionTimeoutMillis: 5000 });
  await admin.connect();
  try {
    await admin.query('SELECT pg_advisory_lock($1)', [BOOTSTRAP_LOCK]);
    const { rows } = await admin.query<{ db: string }>('SELECT current_database() AS db');
    const database = rows[0].db;
    for (const definition of definitions) {
      const db = config.databases[definition.module];
      const role = ident(db.role);
      const exists = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [db.role]);
      const password = new URL(db.url).password ? decodeURIComponent(new URL(db.url).password) : config.env.DB_ROLE_PASSWORD;
      if (exists.rowCount === 0) {
        await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD ${literal(password)}`).catch((error: { code?: string }) => {
          // Another bootstrap on another database of the same cluster may have won the race.
          if (error.code !== '23505' && error.code !== '42710') throw error;
        });
      }
      await admin.query(`ALTER ROLE ${role} LOGIN PASSWORD ${literal(password)} NOSUPERUSER NOCREATEDB NOCREATEROLE`);
      await admin.query(`GRANT CONNECT ON DATABASE ${ident(database)} TO ${role}`);
      await admin.query(`CREATE SCHEMA IF NOT EXISTS ${ident(db.schema)} AUTHORIZATION ${role}`);
      await admin.query(`ALTER SCHEMA ${ident(db.schema)} OWNER TO ${role}`);
      logger.info({ module: definition.module, role: db.role, schema: db.schema }, 'database role and schema ready');
    }
    for (const definition of definitions) {
      const dataSource = new DataSource(moduleDataSourceOptions(definition, config.databases[definition.module]));
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
