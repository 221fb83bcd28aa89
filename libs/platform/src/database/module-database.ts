import type { DataSourceOptions, EntitySchema, MixedList } from 'typeorm';
import type { DomainModuleName, ModuleDatabaseConfig } from '../config/app-config';
import { AfterCommitSubscriber } from './after-commit';

/**
 * What a domain module tells the platform about its database: its TypeORM entities and
 * its own migration history. The platform adds the connection (the module's own role,
 * pool and timeouts); the module never sees another module's tables.
 */
export interface ModuleDatabaseDefinition {
  module: DomainModuleName;
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  entities: MixedList<Function | string | EntitySchema>;
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  migrations: MixedList<Function | string>;
  /** TypeORM subscribers of the module's connection (the platform's after-commit hook is always there). */
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  subscribers?: MixedList<Function | string>;
  /**
   * How the module's tables would be spread over a sharded Postgres (Citus), see
   * docs/scaling.md. By default every table of a module is distributed by its `user_id`
   * column; the ones that are not say so here, with the reason (test/architecture/shard-readiness.spec.ts).
   */
  distribution?: TableDistribution;
}

/** Tables of a module that are not distributed by a `user_id` column, each with the reason. */
export interface TableDistribution {
  /** Distributed by another column that holds the user's id (e.g. users.users by `id`): table → column and reason. */
  distributedBy?: Record<string, { column: string; reason: string }>;
  /** Small, read-mostly tables copied to every node (Citus reference tables). */
  reference?: Record<string, string>;
  /** Tables that stay on the coordinator (Citus local tables). */
  local?: Record<string, string>;
  /** Children of a distributed table that must get its user_id before sharding (a listed step in docs/scaling.md). */
  colocateBeforeSharding?: Record<string, string>;
}

/** TypeORM connection name of a module; also the schema name. */
export function dataSourceName(module: DomainModuleName): string {
  return module;
}

export function moduleDataSourceOptions(
  definition: ModuleDatabaseDefinition,
  db: ModuleDatabaseConfig,
): DataSourceOptions {
  return {
    type: 'postgres',
    name: dataSourceName(definition.module),
    url: db.url,
    schema: db.schema,
    entities: definition.entities,
    migrations: definition.migrations,
    // afterCommit() works on every module's connection.
    subscribers: [AfterCommitSubscriber, ...toArray(definition.subscribers)],
    // Each module keeps its own migration history inside its own schema.
    migrationsTableName: 'migrations',
    migrationsTransactionMode: 'each',
    synchronize: false,
    logging: false,
    applicationName: `mm:${db.module}`,
    connectTimeoutMS: db.connectTimeoutMs,
    extra: {
      max: db.poolMax,
      connectionTimeoutMillis: db.connectTimeoutMs,
      // Enforced by the server: a runaway query is cancelled instead of holding a pool slot.
      statement_timeout: db.statementTimeoutMs,
      idle_in_transaction_session_timeout: Math.max(db.statementTimeoutMs * 5, 10_000),
      options: `-c search_path=${db.schema}`,
    },
  };
}

/**
 * The names TypeORM records for a module's migrations in `<schema>.migrations` (the
 * instance's `name`, else its class name, as TypeORM's MigrationExecutor does); null when
 * some are given as file paths (only TypeORM can resolve those).
 */
export function migrationNames(definition: ModuleDatabaseDefinition): string[] | null {
  const list = toArray(definition.migrations);
  if (list.some((migration) => typeof migration === 'string')) return null;
  return list.map((migration) => {
    const instance = new (migration as new () => { name?: string })();
    return instance.name || instance.constructor.name;
  });
}

// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
function toArray(list: MixedList<Function | string> | undefined): (Function | string)[] {
  if (!list) return [];
  return Array.isArray(list) ? list : Object.values(list);
}
