import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { Global, Module, type Provider, type Type } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import pino from 'pino';
import {
  createHttpService,
  inboxQueueName,
  QueueFactory,
  type AppConfig,
  type DomainModuleName,
  type IntegrationEvent,
} from '@app/platform';
import { MODULE_MANIFESTS } from '@app/manifests';
import { DOMAIN_MODULE_CATALOGUE } from '../../apps/api/src/modules';
import { testTokens } from './auth-helpers';
import { createTestDatabase, deleteRedisPrefix, testConfig } from './test-env';

/** The Nest module of a domain module, from the API's catalogue (every module, generated ones too). */
function nestModuleOf(module: DomainModuleName): Type {
  const entry = Object.hasOwn(DOMAIN_MODULE_CATALOGUE, module) ? DOMAIN_MODULE_CATALOGUE[module] : undefined;
  if (!entry) {
    throw new Error(`bootModuleAlone: no module "${module}" in apps/api/src/modules.ts (DOMAIN_MODULE_CATALOGUE: ${Object.keys(DOMAIN_MODULE_CATALOGUE).join(', ')})`);
  }
  return entry.module;
}

export interface IsolatedModule {
  app: NestFastifyApplication;
  url: string;
  config: AppConfig;
  db: string;
  /** A bearer token for a user id (minted locally: no users module needed). */
  token(role?: 'customer' | 'admin', userId?: string): { userId: string; token: string };
  /** Delivers an integration event to the module's inbox queue, as another module's relay would, and waits for it. */
  deliver<T>(type: string, payload: T, producer?: string): Promise<IntegrationEvent<T>>;
  close(): Promise<void>;
}

/**
 * Boots ONE domain module with only the platform: no other module's code, tables or
 * consumers. The public APIs it may use (facades) are replaced by `fakes`; events from
 * other modules are delivered straight into its inbox. If a module secretly needed
 * another one, its tests would fail here.
 */
export async function bootModuleAlone(module: DomainModuleName, options: { fakes?: Provider[]; env?: Record<string, string> } = {}): Promise<IsolatedModule> {
  const nestModule = nestModuleOf(module);
  const db = await createTestDatabase();
  const config = testConfig(db, { env: { MODULES_ENABLED: module, ...options.env } });
  @Global()
  @Module({ providers: options.fakes ?? [], exports: (options.fakes ?? []).map((p) => (typeof p === 'function' ? p : p.provide)) })
  class FakesModule {}
  const app = await createHttpService(
    { name: `${module}-alone`, title: module, modules: () => [FakesModule, nestModule], databases: () => [], manifests: MODULE_MANIFESTS },
    config,
    pino({ level: config.env.LOG_LEVEL }),
  );
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.getHttpServer().address() as { port: number };
  const tokens = testTokens(config);
  return {
    app,
    url: `http://127.0.0.1:${port}`,
    config,
    db,
    token: (role = 'customer', userId = randomUUID()) => ({ userId, token: tokens.sign({ userId, role, sessionId: randomUUID() }).token }),
    async deliver<T>(type: string, payload: T, producer = type.split('.')[0]) {
      const event: IntegrationEvent<T> = { id: randomUUID(), type, producer, occurredAt: new Date().toISOString(), payload, metadata: {} };
      const job = await app.get(QueueFactory).get(inboxQueueName(module)).add(type, event, { jobId: event.id, attempts: 1, removeOnComplete: false });
      await job.finished();
      return event;
    },
    async close() {
      await app.close();
      await deleteRedisPrefix(config.env.REDIS_URL, config.env.REDIS_KEY_PREFIX);
    },
  };
}
