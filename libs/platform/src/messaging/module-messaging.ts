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
import { SubscriptionRegistry } from './subscription.registry';
import { MessagingRegistry } from './messaging.registry';

/** Starts and stops a module's relay and inbox consumer with the application. */
export class ModuleMessagingLifecycle implements OnApplicationBootstrap, BeforeApplicationShutdown {
  constructor(
    readonly relay: OutboxRelay,
    readonly consumer: InboxConsumer | undefined,
  ) {}

  onApplicationBootstrap(): void {
    this.consumer?.start();
    this.relay.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.relay.stop();
    await this.consumer?.stop();
  }
}

export interface ModuleMessagingOptions {
  module: DomainModuleName;
  /** Inbox handlers: providers of the module itself, so they can use its repositories. */
  handlers?: Type<InboxEventHandler>[];
}

/**
 * The outbox publisher, relay and inbox consumer of one module, as providers to spread
 * into that module's `providers`. Everything is bound to the module's own connection
 * and schema; nothing here knows which modules exist.
 */
export function moduleMessagingProviders(options: ModuleMessagingOptions): Provider[] {
  const handlers = options.handlers ?? [];
  return [
    ...handlers,
    // Marks the Nest module as this domain module's: its @Processor classes claim queues as it.
    { provide: OWNING_DOMAIN_MODULE, useValue: options.module },
    {
      provide: OutboxPublisher,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => new OutboxPublisher(config.databases[options.module].schema),
    },
    {
      provide: ModuleMessagingLifecycle,
      inject: [getDataSourceToken(options.module), QueueFactory, SubscriptionRegistry, MessagingRegistry, APP_CONFIG, ROOT_LOGGER, ...handlers],
      useFactory: (
        dataSource: DataSource,
        queues: QueueFactory,
        subscriptions: SubscriptionRegistry,
        registry: MessagingRegistry,
        config: AppConfig,
        logger: Logger,
        ...handlerInstances: InboxEventHandler[]
      ) => {
        const relay = new OutboxRelay(options.module, dataSource, queues, subscriptions, config, logger);
        const consumer = handlerInstances.length
          ? new InboxConsumer(options.module, handlerInstances, dataSource, queues, subscriptions, config, logger)
          : undefined;
        registry.register(options.module, relay, consumer);
        return new ModuleMessagingLifecycle(relay, consumer);
      },
    },
  ];
}
