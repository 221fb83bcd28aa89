import 'reflect-metadata';
import { bootstrapDatabases, ConfigError, createRootLogger, loadConfig } from '@app/platform';
import { MODULE_MANIFESTS } from '@app/manifests';
import { enabledDatabases } from './api.app';

/**
 * `npm run db:bootstrap`, and the one-shot job of docker/compose.yaml and
 * deploy/k8s/db-bootstrap-job.yaml: roles, schemas and migrations for every enabled
 * module, through the admin DATABASE_URL. Serving processes then run with
 * DB_BOOTSTRAP_ON_START=false and only their module URLs.
 */
async function run(): Promise<void> {
  const config = loadConfig(process.env, MODULE_MANIFESTS, { purpose: 'bootstrap' });
  const logger = createRootLogger(config.env.LOG_LEVEL);
  await bootstrapDatabases(config, enabledDatabases(config), logger);
}

run().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof ConfigError ? error.message : error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(error instanceof ConfigError ? 78 : 1);
  },
);
