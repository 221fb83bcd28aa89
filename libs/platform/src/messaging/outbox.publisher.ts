import { randomUUID } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { afterCommit } from '../database/after-commit';
import { RequestContextStore } from '../logging/request-context';
import { currentTraceCarrier } from '../tracing/trace-context';
import type { EventMetadata, NewIntegrationEvent } from './integration-event';

/**
 * Writes integration events into the module's own `outbox` table using the caller's
 * transaction: the use case's rows and its events commit or roll back together. After the
 * commit it wakes the module's relay in this process (`wakeRelay`), so events leave at once
 * without a NOTIFY per transaction; a crash in between only delays them to the relay's
 * next poll.
 */
export class OutboxPublisher {
  private readonly declared: ReadonlySet<string>;

  constructor(
    private readonly schema: string,
    private readonly module: string,
    /** The types the module's manifest publishes: anything else is refused. */
    declaredTypes: readonly string[],
    private readonly wakeRelay: () => void = () => undefined,
  ) {
    this.declared = new Set(declaredTypes);
  }

  async publish(manager: EntityManager, events: NewIntegrationEvent[]): Promise<string[]> {
    if (!manager.queryRunner?.isTransactionActive) {
      throw new Error('OutboxPublisher.publish must run inside the use case transaction');
    }
    for (const event of events) {
      // An undeclared type would sit unrouted in the outbox: fail the use case instead.
      if (!this.declared.has(event.type)) {
        throw new Error(`Module "${this.module}" publishes "${event.type}", which its manifest does not declare under events.publishes`);
      }
    }
    const requestId = RequestContextStore.requestId();
    // The use case's span: the relay and the consumer continue its trace from here.
    const metadata: EventMetadata = { ...(requestId ? { requestId } : {}), ...currentTraceCarrier() };
    const metadataJson = JSON.stringify(metadata);
    const ids: string[] = [];
    const values: unknown[] = [];
    const rows: string[] = [];
    for (const event of events) {
      const id = randomUUID();
      ids.push(id);
      const n = values.length;
      rows.push(`($${n + 1}, $${n + 2}, $${n + 3}, $${n + 4})`);
      values.push(id, event.type, JSON.stringify(event.payload), metadataJson);
    }
    if (rows.length === 0) return ids;
    await manager.query(
      `INSERT INTO "${this.schema}".outbox (id, event_type, payload, metadata) VALUES ${rows.join(', ')}`,
      values,
    );
    afterCommit(manager, this.wakeRelay);
    return ids;
  }
}
