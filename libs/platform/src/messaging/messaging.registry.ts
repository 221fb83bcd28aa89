import { Injectable, type OnModuleInit } from '@nestjs/common';
import { ModulesContainer } from '@nestjs/core';
import type { InboxConsumer } from './inbox.consumer';
import type { OutboxRelay } from './outbox.relay';
import { findProcessorClaims } from './processor-ownership';

/**
 * Every relay and inbox consumer running in this process, by module: what health,
 * metrics and tests look at. Also where queue ownership is checked: a queue consumed
 * by two modules, or by a module that does not own it, stops the boot. Inbox consumers
 * claim their queue as they are created; @nestjs/bull processors at module init.
 */
@Injectable()
export class MessagingRegistry implements OnModuleInit {
  readonly relays = new Map<string, OutboxRelay>();
  readonly consumers = new Map<string, InboxConsumer>();
  /** Queue name -> the module consuming it. */
  readonly queueOwners = new Map<string, string>();

  constructor(private readonly modules: ModulesContainer) {}

  onModuleInit(): void {
    for (const claim of findProcessorClaims(this.modules)) {
      if (!claim.module) {
        throw new Error(
          `Queue ownership unknown: processor ${claim.processor} for queue "${claim.queue}" is declared in ${claim.host}, which is no domain module (declare it in the module that owns the queue)`,
        );
      }
      this.claimQueue(claim.queue, claim.module);
    }
  }

  register(module: string, relay: OutboxRelay, consumer?: InboxConsumer): void {
    this.relays.set(module, relay);
    if (consumer) {
      this.claimQueue(consumer.queueName, module);
      this.consumers.set(module, consumer);
    }
  }

  /** Throws when a module consumes a queue that another module already owns. */
  claimQueue(queue: string, module: string): void {
    const owner = this.queueOwners.get(queue) ?? (queue.startsWith(`${module}.`) ? undefined : queue.split('.')[0]);
    if (owner && owner !== module) {
      throw new Error(
        `Queue ownership violated: module "${module}" registers a consumer for queue "${queue}", which is owned by module "${owner}"`,
      );
    }
    this.queueOwners.set(queue, module);
  }

  /** Drains every relay once: lets tests and shutdown flush pending events promptly. */
  async drainAll(): Promise<void> {
    await Promise.all([...this.relays.values()].map((relay) => relay.drainNow()));
  }
}
