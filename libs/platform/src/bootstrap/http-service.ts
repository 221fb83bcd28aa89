import 'reflect-metadata';
import { setTimeout as sleep } from 'node:timers/promises';
import { Module, VersioningType, type DynamicModule, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { Logger } from 'pino';
import { ConfigError, loadConfig, type AppConfig } from '../config/app-config';
import { bootstrapDatabases, DatabaseNotReadyError, verifyDatabases } from '../database/database-bootstrap';
import type { ModuleDatabaseDefinition } from '../database/module-database';
import { configureHttpApp, createHttpAdapter, listenInternal } from '../http/http-app';
import { ShutdownState } from '../lifecycle/shutdown.state';
import { createRootLogger, PinoNestLogger } from '../logging/logger';
import type { ModuleManifest } from '../messaging/module-manifest';
import { PlatformModule } from '../platform.module';
import { shutdownTracing, tracingSummary } from '../tracing/tracing.setup';

/** What an application (the API, an extracted module's service) is made of. */
export interface HttpServiceDefinition {
  /** Appears in logs (`service`) and the OpenAPI title. */
  name: string;
  title: string;
  /** Domain modules to run, chosen from the config (MODULES_ENABLED). */
  modules(config: AppConfig): Type[];
  databases(config: AppConfig): ModuleDatabaseDefinition[];
  /** Every domain module's manifest (`@app/manifests`): events route from all of them. */
  manifests: readonly ModuleManifest[];
  /** Applied to the environment before validation (e.g. a service that runs one module). */
  envOverrides?: Record<string, string>;
}

@Module({})
class HttpServiceModule {
  static compose(config: AppConfig, logger: Logger, manifests: readonly ModuleManifest[], modules: Type[]): DynamicModule {
    return { module: HttpServiceModule, imports: [PlatformModule.forRoot(config, logger, manifests), ...modules] };
  }
}

/** Builds the application (not yet listening); shared by main.ts files and the tests. */
export async function createHttpService(definition: HttpServiceDefinition, config: AppConfig, logger: Logger): Promise<NestFastifyApplication> {
  const app = await NestFactory.create<NestFastifyApplication>(
    HttpServiceModule.compose(config, logger, definition.manifests, definition.modules(config)),
    createHttpAdapter(config),
    { logger: new PinoNestLogger(logger.child({ component: 'nest' })), abortOnError: false },
  );
  app.enableVersioning({ type: VersioningType.URI });
  configureHttpApp(app, config, logger, definition.title);
  await app.init();
  return app;
}

function describeUrl(url: string): string {
  const parsed = new URL(url);
  parsed.password = parsed.password ? '***' : '';
  return parsed.toString();
}

/**
 * The process lifecycle of every deployable: validated config (one line naming a bad
 * variable, exit 78), the database bootstrap, listening, and graceful shutdown on
 * SIGTERM/SIGINT (readiness fails first, in-flight work finishes, hard deadline).
 */
export async function runHttpService(definition: HttpServiceDefinition): Promise<void> {
  let config: AppConfig;
  try {
    config = loadConfig({ ...process.env, ...definition.envOverrides }, definition.manifests);
    // A service that does not run the signing module must not be handed its private key.
    if (config.env.NODE_ENV === 'production' && config.auth.ignored.length > 0) {
      throw new ConfigError(
        `Invalid configuration: ${config.auth.ignored.join(', ')} must not be set in ${definition.name}: it does not run the module that signs access tokens (give it AUTH_PUBLIC_KEYS only)`,
      );
    }
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
  const logger = createRootLogger(config.env.LOG_LEVEL, { service: definition.name });
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled promise rejection'));
  logger.info(
    {
      postgres: definition.databases(config).map(({ module }) => describeUrl(config.databases[module].url)),
      replicas: definition.databases(config).flatMap(({ module }) => {
        const replica = config.databases[module].replicaUrl;
        return replica ? [`${module}: ${describeUrl(replica)}`] : [];
      }),
      redis: config.env.REDIS_CLUSTER_NODES ? `cluster ${config.env.REDIS_CLUSTER_NODES}` : describeUrl(config.env.REDIS_URL),
      modules: [...config.enabledModules],
      tracing: tracingSummary() ?? 'off',
    },
    'using these servers',
  );
  // Serving with only module URLs (no admin URL) is the production shape: the bootstrap is
  // its own one-shot step (docker/compose.yaml, deploy/k8s/db-bootstrap-job.yaml).
  if (config.env.DB_BOOTSTRAP_ON_START) await bootstrapDatabases(config, definition.databases(config), logger);
  else await verifyDatabases(config, definition.databases(config));

  const app = await createHttpService(definition, config, logger);
  await app.listen({ port: config.env.PORT, host: config.env.HOST });
  // /metrics and /docs: internal port only (README, "Operational endpoints").
  const internalPort = await listenInternal(app, config);
  logger.info({ port: config.env.PORT, internalPort }, `${definition.name} listening`);

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
    await shutdownTracing(); // the spans of the last requests and events
    logger.info('shutdown complete');
    process.exit(0);
  };
  process.once('SIGTERM', (signal) => void shutdown(signal));
  process.once('SIGINT', (signal) => void shutdown(signal));
}

/** Entry-point helper: run, and turn a start-up failure into one clear line and exit 1. */
export function startHttpService(definition: HttpServiceDefinition): void {
  runHttpService(definition).catch((error: unknown) => {
    const detail = error instanceof DatabaseNotReadyError ? error.message : error instanceof Error ? error.stack : String(error);
    process.stderr.write(`${definition.name} failed to start: ${detail}\n`);
    process.exit(1);
  });
}
