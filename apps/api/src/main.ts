import 'reflect-metadata';
import { setTimeout as sleep } from 'node:timers/promises';
import { bootstrapDatabases, ConfigError, createRootLogger, loadConfig, ShutdownState, type AppConfig } from '@app/platform';
import type { Logger } from 'pino';
import { createApiApp, enabledDatabases } from './api.app';

function describeUrl(url: string): string {
  const parsed = new URL(url);
  parsed.password = parsed.password ? '***' : '';
  return parsed.toString();
}

function readConfig(): AppConfig {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      // One line naming the variable, then stop: a half-configured service must not start.
      process.stderr.write(`${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
}

async function main(): Promise<void> {
  const config = readConfig();
  const logger: Logger = createRootLogger(config.env.LOG_LEVEL);
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled promise rejection'));

  logger.info(
    {
      postgres: describeUrl(config.env.DATABASE_URL),
      redis: describeUrl(config.env.REDIS_URL),
      modules: [...config.enabledModules],
    },
    'using these servers',
  );
  if (config.env.DB_BOOTSTRAP_ON_START) await bootstrapDatabases(config, enabledDatabases(config), logger);

  const app = await createApiApp(config, logger);
  await app.listen({ port: config.env.PORT, host: config.env.HOST });
  logger.info({ port: config.env.PORT }, 'api listening');

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: readiness now fails, in-flight work finishes');
    const force = setTimeout(() => {
      logger.error('graceful shutdown timed out; exiting');
      process.exit(1);
    }, config.env.SHUTDOWN_TIMEOUT_MS);
    force.unref();
    app.get(ShutdownState).startDraining();
    // Give the load balancer time to see the failing readiness before we stop accepting.
    await sleep(config.env.SHUTDOWN_DRAIN_MS);
    await app.close();
    logger.info('shutdown complete');
    process.exit(0);
  };
  process.once('SIGTERM', (signal) => void shutdown(signal));
  process.once('SIGINT', (signal) => void shutdown(signal));
}

void main().catch((error: unknown) => {
  process.stderr.write(`api failed to start: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
