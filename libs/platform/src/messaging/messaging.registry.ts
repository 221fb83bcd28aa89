import { Injectable, type OnModuleInit } from '@nestjs/common';
import { ModulesContainer } from '@nestjs/core';
import type { InboxConsumer } from './inbox.consumer';
import { EventRouting } from './module-manifest';
import type { OutboxRelay } from './outbox.relay';
import { getDataSourceToken, getEntityManagerToken } from '@nestjs/typeorm';
import { getQueueToken } from '@nestjs/bull';
import { findInjectionClaims, findProcessorClaims } from './processor-ownership';
import { replicaReaderToken } from '../database/read-replica';

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

  constructor(
    private readonly modules: ModulesContainer,
    private readonly routing: EventRouting,
  ) {}

  onModuleInit(): void {
    for (const claim of findProcessorClaims(this.modules)) {
      if (!claim.module) {
        throw new Error(
          `Queue ownership unknown: processor ${claim.processor} for queue "${claim.queue}" is declared in ${claim.host}, which is no domain module (declare it in the module that owns the queue)`,
        );
      }
      this.claimQueue(claim.queue, claim.module);
    }
    this.checkInjections();
  }

  /**
   * A domain module injects only its own connection (DataSource, EntityManager,
   * repositories) and its own queues: the lint rules [boundary/foreign-resource] and
   * [boundary/queue-ownership] say so at build time, this at boot.
   */
  private checkInjections(): void {
    const modules = this.routing.manifests.map((m) => m.name);
    const queueOwner = new Map(this.routing.allQueues().map((q) => [getQueueToken(q.queue) as string, q]));
    for (const claim of findInjectionClaims(this.modules)) {
      for (const other of modules.filter((m) => m !== claim.module)) {
        const connection =
          claim.token === getDataSourceToken(other) || claim.token === getEntityManagerToken(other) || claim.token === replicaReaderToken(other) ||
          (claim.token.startsWith(`${other}_`) && claim.token.endsWith('Repository'));
        if (connection) {
          throw new Error(
            `Resource ownership violated: ${claim.consumer} in module "${claim.module}" injects "${claim.token}", the database connection of module "${other}" (a module uses only its own)`,
          );
        }
      }
      const queue = queueOwner.get(claim.token);
      if (queue && queue.module !== claim.module) {
        throw new Error(
          `Queue ownership violated: ${claim.consumer} in module "${claim.module}" injects queue "${queue.queue}", which is owned by module "${queue.module}"`,
        );
      }
    }
  }

  register(module: string, relay: OutboxRelay, consumer?: InboxConsumer): void {
    this.relays.set(module, relay);
    if (consumer) {
      this.claimQueue(consumer.queueName, module);
      this.consumers.set(module, consumer);
    }
  }

  /**
   * Throws when a module consumes a queue that another module owns or already consumes,
   * or one its manifest does not declare (the manifest is the list of what it owns).
   */
  claimQueue(queue: string, module: string): void {
    const declaredOwner = this.routing.ownerOf(queue);
    const owner = this.queueOwners.get(queue) ?? declaredOwner ?? (queue.startsWith(`${module}.`) ? undefined : queue.split('.')[0]);
    if (owner && owner !== module) {
      throw new Error(
        `Queue ownership violated: module "${module}" registers a consumer for queue "${queue}", which is owned by module "${owner}"`,
      );
    }
    if (!declaredOwner) {
      throw new Error(
        `Queue ownership undeclared: module "${module}" registers a consumer for queue "${queue}", which its manifest does not list under queues`,
      );
    }
    this.queueOwners.set(queue, module);
  }

  /** Drains every relay once: lets tests and shutdown flush pending events promptly. */
  async drainAll(): Promise<void> {
    await Promise.all([...this.relays.values()].map((relay) => relay.drainNow()));
  }
}
