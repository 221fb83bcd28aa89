import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createHttpService, type AppConfig, type HttpServiceDefinition, type ModuleDatabaseDefinition } from '@app/platform';
import type { Logger } from 'pino';
import { MODULE_MANIFESTS } from '@app/manifests';
import { DOMAIN_MODULE_CATALOGUE } from './modules';

/** The database definitions of the modules this instance runs (for the bootstrap step). */
export function enabledDatabases(config: AppConfig): ModuleDatabaseDefinition[] {
  return [...config.enabledModules].map((name) => DOMAIN_MODULE_CATALOGUE[name].database);
}

/** The monolith: every enabled module in one process (MODULES_ENABLED switches them). */
export const API_SERVICE: HttpServiceDefinition = {
  name: 'api',
  title: 'Modular monolith API',
  modules: (config) => [...config.enabledModules].map((name) => DOMAIN_MODULE_CATALOGUE[name].module),
  databases: enabledDatabases,
  manifests: MODULE_MANIFESTS,
};

/** Builds the API application (not yet listening); shared by main.ts and the tests. */
export function createApiApp(config: AppConfig, logger: Logger): Promise<NestFastifyApplication> {
  return createHttpService(API_SERVICE, config, logger);
}
