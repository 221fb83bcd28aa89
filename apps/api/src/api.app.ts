import { VersioningType } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import {
  configureHttpApp,
  createHttpAdapter,
  PinoNestLogger,
  PlatformModule,
  type AppConfig,
  type ModuleDatabaseDefinition,
} from '@app/platform';
import { Module, type DynamicModule } from '@nestjs/common';
import type { Logger } from 'pino';
import { DOMAIN_MODULE_CATALOGUE } from './modules';

@Module({})
class ApiModule {
  static forConfig(config: AppConfig, logger: Logger): DynamicModule {
    return {
      module: ApiModule,
      imports: [
        PlatformModule.forRoot(config, logger),
        ...[...config.enabledModules].map((name) => DOMAIN_MODULE_CATALOGUE[name].module),
      ],
    };
  }
}

/** The database definitions of the modules this instance runs (for the bootstrap step). */
export function enabledDatabases(config: AppConfig): ModuleDatabaseDefinition[] {
  return [...config.enabledModules].map((name) => DOMAIN_MODULE_CATALOGUE[name].database);
}

/** Builds the API application (not yet listening); shared by main.ts and the tests. */
export async function createApiApp(config: AppConfig, logger: Logger): Promise<NestFastifyApplication> {
  const app = await NestFactory.create<NestFastifyApplication>(ApiModule.forConfig(config, logger), createHttpAdapter(config), {
    logger: new PinoNestLogger(logger.child({ component: 'nest' })),
    bufferLogs: false,
    abortOnError: false,
  });
  app.enableVersioning({ type: VersioningType.URI, defaultVersion: undefined });
  configureHttpApp(app, config, logger, 'Modular monolith API');
  await app.init();
  return app;
}
