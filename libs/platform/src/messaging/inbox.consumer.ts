import type { Job } from 'bull';
import type { DataSource, EntityManager } from 'typeorm';
import type { Logger } from 'pino';
import type { AppConfig, DomainModuleName } from '../config/app-config';
import { RequestContextStore } from '../logging/request-context';
import { withTimeout } from '../redis/redis-connection';
import { inConsumerSpan } from '../tracing/trace-context';
import { inboxQueueName, type IntegrationEvent } from './integration-event';
import type { QueueFactory } from './queue.factory';

/**
 * A module's reaction to one or more integration event types (one handler may serve a
 * family, e.g. every order event). `handle` runs inside the transaction that also
 * records the event id in the module's inbox, so the effect happens exactly once however
 * often the event is delivered.
 */
export interface InboxEventHandler<TPayload = unknown> {
  readonly eventTypes: readonly string[];
  handle(event: IntegrationEvent<TPayload>, manager: EntityManager): Promise<void>;
}

/** An event reached a module whose running code has no handler for its type. */
export class NoInboxHandlerError extends Error {
  override name = 'NoInboxHandlerError';
  constructor(module: string, eventType: string) {
    super(`module "${module}" has no inbox handler for "${eventType}" in this version of its code`);
  }
}

/**
 * Consumes a module's inbox queue. An event counts as delivered only when its handler's
 * transaction commits; a failure rolls back the inbox row too, and Bull retries with
 * jittered exponential backoff up to INBOX_MAX_ATTEMPTS. The last failure is recorded in
 * the module's `dead_letters` table (and the Bull job stays in the failed set).
 */
export class InboxConsumer {
  private readonly handlers = new Map<string, InboxEventHandler>();
  readonly queueName: string;
  private closing?: Promise<void>;

  constructor(
    private readonly module: DomainModuleName,
    handlers: InboxEventHandler[],
    private readonly dataSource: DataSource,
    private readonly queues: QueueFactory,
    private readonly config: AppConfig,
    private readonly logger: Logger,
  ) {
    this.queueName = inboxQueueName(module);
    for (const handler of handlers) {
      for (const type of handler.eventTypes) {
        if (this.handlers.has(type)) throw new Error(`Module ${module} registers two inbox handlers for ${type}`);
        this.handlers.set(type, handler);
      }
    }
  }

  get eventTypes(): string[] {
    return [...this.handlers.keys()];
  }

  private get schema(): string {
    return this.config.databases[this.module].schema;
  }

  start(): void {
    void this.queues
      .get(this.queueName)
      // '*': jobs are named after their event type (readable in Bull Board).
      .process('*', this.config.env.INBOX_CONCURRENCY, (job: Job<IntegrationEvent>) => this.consume(job))
      .catch((error: unknown) => this.logger.error({ err: error, queue: this.queueName }, 'inbox consumer stopped'));
  }

  /** Waits for the jobs in progress, then stops taking new ones. */
  async stop(): Promise<void> {
    this.closing ??= withTimeout(this.queues.get(this.queueName).close(), 10_000, `closing ${this.queueName}`);
    await this.closing.catch((error: unknown) => this.logger.warn({ err: error, queue: this.queueName }, 'inbox queue did not close cleanly'));
  }

  async consume(job: Job<IntegrationEvent>): Promise<void> {
    const event = job.data;
    const attributes = () => ({
      'messaging.system': 'bull',
      'messaging.operation.type': 'process',
      'messaging.destination.name': this.queueName,
      'messaging.message.id': event.id,
      'messaging.message.type': event.type,
      'messaging.consumer.group.name': this.module,
    });
    // A child of the relay's publish span, in the trace of the request that caused the event.
    await inConsumerSpan(`process ${event.type}`, event.metadata, attributes, () => this.consumeInContext(job));
  }

  private async consumeInContext(job: Job<IntegrationEvent>): Promise<void> {
    const event = job.data;
    await RequestContextStore.run({ requestId: event.metadata?.requestId ?? event.id }, async () => {
      try {
        const handler = this.handlers.get(event.type);
        // Routed here by a manifest this code does not match yet (older code during a
        // rolling deploy): never acknowledge it. Retries, then a dead letter to replay.
        if (!handler) throw new NoInboxHandlerError(this.module, event.type);
        const handled = await this.handleOnce(event, handler, job.attemptsMade > 0);
        this.logger.info(
          { eventId: event.id, eventType: event.type, module: this.module, duplicate: !handled, attempt: job.attemptsMade + 1 },
          handled ? 'event handled' : 'duplicate event ignored',
        );
      } catch (error) {
        const attempt = job.attemptsMade + 1;
        const maxAttempts = job.opts.attempts ?? 1;
        if (attempt >= maxAttempts) {
          await this.recordDeadLetter(event, error, attempt);
          this.logger.error({ err: error, eventId: event.id, eventType: event.type, attempt }, 'event dead-lettered');
        } else {
          this.logger.warn({ err: error, eventId: event.id, eventType: event.type, attempt }, 'event handling failed; will retry');
        }
        throw error;
      }
    });
  }

  /** Returns false when the event was already handled (a redelivery). */
  /**
   * `retried`: an earlier attempt failed, so a dead letter may exist (e.g. a failed job
   * retried from Bull Board): once handled, it is no longer one. First attempts skip it.
   */
  private async handleOnce(event: IntegrationEvent, handler: InboxEventHandler, retried: boolean): Promise<boolean> {
    return this.dataSource.transaction(async (manager) => {
      const inserted: unknown[] = await manager.query(
        `INSERT INTO "${this.schema}".inbox (event_id, event_type) VALUES ($1, $2)
         ON CONFLICT (event_id) DO NOTHING RETURNING event_id`,
        [event.id, event.type],
      );
      if (retried) await manager.query(`DELETE FROM "${this.schema}".dead_letters WHERE event_id = $1`, [event.id]);
      if (inserted.length === 0) return false;
      await handler.handle(event, manager);
      return true;
    });
  }

  private async recordDeadLetter(event: IntegrationEvent, error: unknown, attempts: number): Promise<void> {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    await this.dataSource
      .query(
        `INSERT INTO "${this.schema}".dead_letters (event_id, event_type, envelope, error, attempts)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (event_id) DO UPDATE SET error = EXCLUDED.error, attempts = EXCLUDED.attempts, failed_at = now()`,
        [event.id, event.type, JSON.stringify(event), message.slice(0, 2000), attempts],
      )
      .catch((dbError: unknown) => this.logger.error({ err: dbError, eventId: event.id }, 'could not record dead letter'));
  }
}
