import { Injectable } from '@nestjs/common';
import type { InboxConsumer } from './inbox.consumer';
import type { OutboxRelay } from './outbox.relay';

/**
 * Every relay and inbox consumer running in this process, by module: what health,
 * metrics and tests look at. Also where queue ownership is checked: a queue consumed
 * by two modules stops the boot.
 */
@Injectable()
export class MessagingRegistry {
  readonly relays = new Map<string, OutboxRelay>();
  readonly consumers = new Map<string, InboxConsumer>();
  private readonly queueOwners = new Map<string, string>();

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
