import type { BeforeApplicationShutdown, OnApplicationBootstrap, Provider, Type } from '@nestjs/common';
import { getDataSourceToken } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig, DomainModuleName } from '../config/app-config';
import { ROOT_LOGGER } from '../logging/logging.module';
import { InboxConsumer, type InboxEventHandler } from './inbox.consumer';
import { OutboxPublisher } from './outbox.publisher';
import { OutboxRelay } from './outbox.relay';
import { OWNING_DOMAIN_MODULE } from './processor-ownership';
import { QueueFactory } from './queue.factory';
import { EventRouting, type ModuleManifest } from './module-manifest';
import { MessagingRegistry } from './messaging.registry';
import { ErasureWork } from './erasure-work';
import { CacheAside } from '../cache/cache-aside';
import { messagingRetentionRules, RetentionStats, RetentionSweeper, type RetentionRule } from '../maintenance/retention';

/** Starts and stops a module's relay, inbox consumer, erasure work and retention with the application. */
export class ModuleMessagingLifecycle implements OnApplicationBootstrap, BeforeApplicationShutdown {
  constructor(
    readonly relay: OutboxRelay,
    readonly consumer: InboxConsumer | undefined,
    readonly erasure: ErasureWork,
    readonly retention: RetentionSweeper,
  ) {}

  onApplicationBootstrap(): void {
    this.consumer?.start();
    this.relay.start();
    // At boot: finishes erasure steps a crash of any instance left undone.
    this.erasure.start();
    this.retention.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.retention.stop();
    await this.erasure.stop();
    await this.relay.stop();
    await this.consumer?.stop();
  }
}

export interface ModuleMessagingOptions {
  /** The module's manifest: its name, and the event types it publishes and consumes. */
  manifest: ModuleManifest;
  /** Inbox handlers: providers of the module itself, so they can use its repositories. */
  handlers?: Type<InboxEventHandler>[];
  /**
   * Retention of the module's own tables that grow with traffic (idempotency keys, ended
   * sessions…), run with the outbox's, inbox's and dead letters' (maintenance/retention.ts).
   */
  retention?: (config: AppConfig) => RetentionRule[];
}

/**
 * The outbox publisher, relay and inbox consumer of one module, as providers to spread
 * into that module's `providers`. Everything is bound to the module's own connection
 * and schema; nothing here knows which modules exist.
 */
export function moduleMessagingProviders(options: ModuleMessagingOptions): Provider[] {
  const handlers = options.handlers ?? [];
  const module = options.manifest.name as DomainModuleName;
  return [
    ...handlers,
    // Marks the Nest module as this domain module's: its @Processor classes claim queues as it.
    { provide: OWNING_DOMAIN_MODULE, useValue: module },
    {
      provide: OutboxPublisher,
      inject: [APP_CONFIG, MessagingRegistry],
      useFactory: (config: AppConfig, registry: MessagingRegistry) =>
        new OutboxPublisher(config.databases[module].schema, module, options.manifest.events.publishes.map((e) => e.type), () =>
          registry.relays.get(module)?.wake(),
        ),
    },
    {
      // The module's durable erasure steps outside Postgres (its `erasure_work` table).
      provide: ErasureWork,
      inject: [getDataSourceToken(module), QueueFactory, CacheAside, APP_CONFIG, ROOT_LOGGER],
      useFactory: (dataSource: DataSource, queues: QueueFactory, cache: CacheAside, config: AppConfig, logger: Logger) =>
        new ErasureWork(config.databases[module].schema, dataSource, queues, cache, logger),
    },
    {
      provide: ModuleMessagingLifecycle,
      inject: [getDataSourceToken(module), QueueFactory, EventRouting, MessagingRegistry, APP_CONFIG, ROOT_LOGGER, ErasureWork, RetentionStats, ...handlers],
      useFactory: (
        dataSource: DataSource,
        queues: QueueFactory,
        routing: EventRouting,
        registry: MessagingRegistry,
        config: AppConfig,
        logger: Logger,
        erasure: ErasureWork,
        retentionStats: RetentionStats,
        ...handlerInstances: InboxEventHandler[]
      ) => {
        checkHandlersAgainstManifest(options.manifest, handlerInstances, logger);
        const relay = new OutboxRelay(module, dataSource, queues, routing, config, logger);
        const consumer = options.manifest.events.consumes.length || handlerInstances.length
          ? new InboxConsumer(module, handlerInstances, dataSource, queues, config, logger)
          : undefined;
        registry.register(module, relay, consumer);
        const rules = [...messagingRetentionRules(config.databases[module].schema, config), ...(options.retention?.(config) ?? [])];
        const retention = new RetentionSweeper(module, dataSource, rules, config.env.RETENTION_INTERVAL_MS, logger, retentionStats);
        return new ModuleMessagingLifecycle(relay, consumer, erasure, retention);
      },
    },
  ];
}

/**
 * A handler for a type the manifest does not declare would never receive it (nothing
 * routes it here): that stops the boot. A declared type without a handler is what older
 * code sees during a rolling deploy: such events are retried, then dead-lettered, so it
 * is logged loudly but allowed.
 */
function checkHandlersAgainstManifest(manifest: ModuleManifest, handlers: InboxEventHandler[], logger: Logger): void {
  const declared = new Set(manifest.events.consumes);
  const handled = new Set(handlers.flatMap((h) => [...h.eventTypes]));
  const undeclared = [...handled].filter((type) => !declared.has(type));
  if (undeclared.length) {
    throw new Error(
      `Module "${manifest.name}" has inbox handlers for ${undeclared.map((t) => `"${t}"`).join(', ')}, which its manifest does not list under events.consumes (nothing would route them to it)`,
    );
  }
  for (const type of declared) {
    if (!handled.has(type)) {
      logger.error({ module: manifest.name, eventType: type }, 'manifest declares an event type this code has no inbox handler for; such events will be retried, then dead-lettered');
    }
  }
}
