import { Pool, type PoolClient } from 'pg';
import type Bull from 'bull';
import { ConfigError, type AppConfig, type DomainModuleName } from '../config/app-config';
import { withTimeout } from '../redis/redis-connection';
import { inboxQueueName, type IntegrationEvent } from './integration-event';
import { EventRouting, type ModuleManifest } from './module-manifest';
import { JITTERED_BACKOFF, QueueFactory } from './queue.factory';

/** An operator's request the manifests or the syntax rule out (the CLI exits 64). */
export class UsageError extends ConfigError {
  override name = 'UsageError';
}

/** Rows set back to unpublished per statement: short locks, bounded WAL per statement. */
export const REPLAY_BATCH_SIZE = 1000;
const REDIS_TIMEOUT_MS = 10_000;
/** Operator statements may wait on row locks longer than a request may; never forever. */
const MIN_STATEMENT_TIMEOUT_MS = 60_000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const EVENT_TYPE = /^[a-z][a-z0-9-]*\.[a-z0-9][a-z0-9-]*\.v[1-9][0-9]*$/;
const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:T([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d)(?:\.\d{1,6})?)?(Z|[+-](?:[01]\d|2[0-3]):?[0-5]\d))?$/;

/**
 * Parses an operator-supplied ISO 8601 time. A time of day needs its zone (`Z` or an
 * offset): read in the machine's zone, the same text would select other events on
 * another host. A bare date is midnight UTC.
 */
export function parseIsoTime(value: string | undefined, flag: string): Date {
  if (!value) throw new UsageError(`${flag} needs an ISO 8601 time, e.g. ${flag} 2024-05-01T12:00:00Z`);
  const match = ISO_TIME.exec(value);
  if (!match && /^\d{4}-\d{2}-\d{2}T[\d:.]+$/.test(value)) {
    throw new UsageError(`${flag} "${value}" has no time zone: add Z or an offset, e.g. ${value}Z`);
  }
  const [year, month, day] = match ? [Number(match[1]), Number(match[2]), Number(match[3])] : [NaN, NaN, NaN];
  const calendarDay = new Date(Date.UTC(year, month - 1, day));
  const time = new Date(match && match[4] === undefined ? `${value}T00:00:00Z` : value);
  if (!match || calendarDay.getUTCMonth() !== month - 1 || calendarDay.getUTCDate() !== day || Number.isNaN(time.getTime())) {
    throw new UsageError(`${flag} "${value}" is not an ISO 8601 time (expected e.g. 2024-05-01, 2024-05-01T12:00:00Z or 2024-05-01T14:00:00+02:00)`);
  }
  return time;
}

export interface OutboxReplayRequest {
  module: string;
  /** Inclusive. */
  since: Date;
  /** Exclusive; unset: up to the newest row at the start of the replay. */
  until?: Date;
  type?: string;
}

export interface OutboxReplayResult {
  module: string;
  /** Rows set back to unpublished, by event type (sorted by type). */
  byType: Map<string, number>;
  total: number;
}

export interface DeadLetterFilter {
  module?: string;
  type?: string;
}

export interface DeadLetterGroup {
  module: string;
  eventType: string;
  count: number;
  newestFailedAt: Date;
  /** Error of the newest dead letter of the group. */
  lastError: string;
}

export interface DeadLetterRow {
  module: string;
  eventId: string;
  eventType: string;
  attempts: number;
  failedAt: Date;
  error: string;
}

export interface DeadLetter extends DeadLetterRow {
  envelope: IntegrationEvent;
}

/** One dead letter acted on (replayed or discarded) in one consumer module. */
export interface DeadLetterOutcome {
  module: string;
  eventId: string;
  eventType: string;
}

export interface DeadLetterBatchResult {
  done: DeadLetterOutcome[];
  failed: (DeadLetterOutcome & { error: string })[];
}

export class DeadLetterNotFoundError extends Error {
  override name = 'DeadLetterNotFoundError';
}

/**
 * Operator actions on the event backbone, for any module the manifests declare (the
 * platform knows no domain module): replaying a module's kept outbox rows, and listing,
 * replaying or discarding the dead letters of consumer modules.
 *
 * Connects to each module's database with that module's own role, lazily, and to Bull
 * with the same options as the running processes (QueueFactory: key prefix, backoff).
 * Starts no relay and no consumer: the running processes do the delivery. Call close().
 */
export class EventOperations {
  private readonly routing: EventRouting;
  private readonly pools = new Map<string, Pool>();
  private readonly queues: QueueFactory;

  constructor(
    private readonly config: AppConfig,
    manifests: readonly ModuleManifest[],
  ) {
    this.routing = new EventRouting(manifests);
    this.queues = new QueueFactory(config);
  }

  /** Module names, in manifest order. */
  get modules(): string[] {
    return this.routing.manifests.map((m) => m.name);
  }

  /** Throws a UsageError unless the manifests declare `module` and the config can reach its database. */
  assertModule(module: string | undefined, flag = '--module'): string {
    if (!module) throw new UsageError(`${flag} needs a module name (one of: ${this.modules.join(', ')})`);
    if (!this.modules.includes(module)) {
      throw new UsageError(`unknown module "${module}" (known: ${this.modules.join(', ')})`);
    }
    return module;
  }

  assertEventId(eventId: string | undefined): string {
    if (!eventId) throw new UsageError('an event id is required');
    if (!UUID.test(eventId)) throw new UsageError(`"${eventId}" is not an event id (expected a UUID)`);
    return eventId.toLowerCase();
  }

  assertEventTypeShape(type: string | undefined, flag = '--type'): string {
    if (!type) throw new UsageError(`${flag} needs an event type, e.g. ${flag} <module>.<event-name>.v1`);
    if (!EVENT_TYPE.test(type)) throw new UsageError(`${flag} "${type}" is not an event type (expected <module>.<event-name>.v<N>)`);
    return type;
  }

  /**
   * Sets the module's published outbox rows with `since <= occurred_at < until` back to
   * unpublished, in batches by sequence, and wakes the relays (NOTIFY): a running relay of
   * the module publishes them again to every inbox that declares their type. Consumers
   * that handled an event already ignore it (inbox deduplication). Bull ignores an event
   * whose job id is still in a queue (waiting, or failed: a dead letter, replayed with
   * replayDeadLetter instead); a module's `external` queue receives every replayed event.
   */
  async replayOutbox(request: OutboxReplayRequest): Promise<OutboxReplayResult> {
    const module = this.assertModule(request.module);
    const routable = this.routing.routableTypes(module);
    const published = this.routing.manifest(module).events.publishes.map((e) => e.type);
    if (published.length === 0) throw new UsageError(`module "${module}" publishes no events: nothing to replay`);
    if (request.type !== undefined && !published.includes(request.type)) {
      throw new UsageError(`module "${module}" does not publish event type "${request.type}" (it publishes: ${published.join(', ')})`);
    }
    // A type nobody consumes is never claimed by a relay: set back to unpublished, it would stay so.
    if (request.type !== undefined && !routable.includes(request.type)) {
      throw new UsageError(`event type "${request.type}" has no declared consumer, so the relay would not publish it again`);
    }
    if (request.until && request.until.getTime() <= request.since.getTime()) {
      throw new UsageError(`--until (${request.until.toISOString()}) must be later than --since (${request.since.toISOString()})`);
    }
    const types = request.type ? [request.type] : routable;
    const schema = this.schemaOf(module);
    const pool = this.pool(module);
    // Rows written after the start are published normally; the bound also guarantees the
    // loop ends although the relay publishes (and so changes) replayed rows meanwhile.
    const [{ last }] = (await pool.query<{ last: string | null }>(`SELECT max(seq)::text AS last FROM "${schema}".outbox`)).rows;
    const byType = new Map<string, number>();
    let total = 0;
    let after = '0';
    for (;;) {
      if (last === null) break; // an empty outbox
      const { rows } = await pool.query<{ seq: string; event_type: string }>(
        `WITH batch AS (
           SELECT id FROM "${schema}".outbox
            WHERE seq > $1 AND seq <= $2 AND published_at IS NOT NULL
              AND occurred_at >= $3 AND ($4::timestamptz IS NULL OR occurred_at < $4)
              AND event_type = ANY($5::text[])
            ORDER BY seq LIMIT $6
            FOR UPDATE)
         UPDATE "${schema}".outbox o SET published_at = NULL FROM batch WHERE o.id = batch.id
         RETURNING o.seq::text AS seq, o.event_type`,
        [after, last, request.since, request.until ?? null, types, REPLAY_BATCH_SIZE],
      );
      if (rows.length === 0) break;
      for (const row of rows) byType.set(row.event_type, (byType.get(row.event_type) ?? 0) + 1);
      total += rows.length;
      after = rows.reduce((max, row) => (BigInt(row.seq) > BigInt(max) ? row.seq : max), after);
      // Each batch is committed: relays start publishing while the next one is marked.
      await pool.query('SELECT pg_notify($1, $2)', [`${schema}_outbox`, '']);
      if (rows.length < REPLAY_BATCH_SIZE) break;
    }
    return { module, total, byType: new Map([...byType].sort(([a], [b]) => a.localeCompare(b))) };
  }

  /** Dead letters by module and type, with the newest failure time and its error. */
  async deadLetterGroups(filter: DeadLetterFilter = {}): Promise<DeadLetterGroup[]> {
    const groups: DeadLetterGroup[] = [];
    for (const module of this.modulesFor(filter)) {
      const { rows } = await this.pool(module).query<{ event_type: string; count: number; newest: Date; last_error: string }>(
        `SELECT event_type, count(*)::int AS count, max(failed_at) AS newest,
                (array_agg(error ORDER BY failed_at DESC))[1] AS last_error
           FROM "${this.schemaOf(module)}".dead_letters
          WHERE $1::text IS NULL OR event_type = $1
          GROUP BY event_type ORDER BY event_type`,
        [this.typeOf(filter)],
      );
      groups.push(...rows.map((r) => ({ module, eventType: r.event_type, count: r.count, newestFailedAt: r.newest, lastError: r.last_error })));
    }
    return groups;
  }

  /** The newest `limit` dead letters of each selected module. */
  async listDeadLetters(filter: DeadLetterFilter = {}, limit = 100): Promise<DeadLetterRow[]> {
    const found: DeadLetterRow[] = [];
    for (const module of this.modulesFor(filter)) {
      const { rows } = await this.pool(module).query<{ event_id: string; event_type: string; attempts: number; failed_at: Date; error: string }>(
        `SELECT event_id, event_type, attempts, failed_at, error FROM "${this.schemaOf(module)}".dead_letters
          WHERE $1::text IS NULL OR event_type = $1
          ORDER BY failed_at DESC, event_id LIMIT $2`,
        [this.typeOf(filter), limit],
      );
      found.push(...rows.map((r) => ({ module, eventId: r.event_id, eventType: r.event_type, attempts: r.attempts, failedAt: r.failed_at, error: r.error })));
    }
    return found;
  }

  /** The event's dead letters in every consumer module that has one (one event may fail in several). */
  async findDeadLetters(eventId: string, module?: string): Promise<DeadLetter[]> {
    const id = this.assertEventId(eventId);
    const found: DeadLetter[] = [];
    for (const m of this.modulesFor({ module })) {
      const { rows } = await this.pool(m).query<{ event_id: string; event_type: string; attempts: number; failed_at: Date; error: string; envelope: IntegrationEvent }>(
        `SELECT event_id, event_type, attempts, failed_at, error, envelope FROM "${this.schemaOf(m)}".dead_letters WHERE event_id = $1`,
        [id],
      );
      found.push(...rows.map((r) => ({ module: m, eventId: r.event_id, eventType: r.event_type, attempts: r.attempts, failedAt: r.failed_at, error: r.error, envelope: r.envelope })));
    }
    return found;
  }

  /**
   * Delivers a dead letter again to its consumer module's inbox queue, with fresh attempts.
   * The row is deleted (and so locked) in a transaction that commits only once the job is
   * in Redis: if Redis refuses, the row stays. The failed Bull job of the same id is
   * removed first, since Bull ignores an add whose job id exists. Throws
   * DeadLetterNotFoundError when no selected module has it.
   */
  async replayDeadLetter(eventId: string, module?: string): Promise<DeadLetterOutcome[]> {
    return this.actOnEach(eventId, module, 'replay');
  }

  /** Deletes a dead letter and its failed Bull job: the event is given up for that module. */
  async discardDeadLetter(eventId: string, module?: string): Promise<DeadLetterOutcome[]> {
    return this.actOnEach(eventId, module, 'discard');
  }

  /** Replays every dead letter the filter selects, oldest first; one failure does not stop the rest. */
  async replayDeadLetters(filter: DeadLetterFilter = {}): Promise<DeadLetterBatchResult> {
    return this.actOnAll(filter, 'replay');
  }

  /** Discards every dead letter of one module (of one type, with `type`). */
  async discardDeadLetters(filter: DeadLetterFilter & { module: string }): Promise<DeadLetterBatchResult> {
    this.assertModule(filter.module);
    return this.actOnAll(filter, 'discard');
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.pools.values()].map((pool) => pool.end()));
    this.pools.clear();
    await this.queues.onApplicationShutdown();
  }

  private async actOnEach(eventId: string, module: string | undefined, action: 'replay' | 'discard'): Promise<DeadLetterOutcome[]> {
    const id = this.assertEventId(eventId);
    const modules = this.modulesFor({ module });
    const done: DeadLetterOutcome[] = [];
    for (const m of modules) {
      const outcome = await this.actOn(m, id, action);
      if (outcome) done.push(outcome);
    }
    if (done.length === 0) {
      throw new DeadLetterNotFoundError(
        `no dead letter with event id ${id} in ${module ? `module "${module}"` : `any module (${modules.join(', ')})`}`,
      );
    }
    return done;
  }

  private async actOnAll(filter: DeadLetterFilter, action: 'replay' | 'discard'): Promise<DeadLetterBatchResult> {
    const result: DeadLetterBatchResult = { done: [], failed: [] };
    for (const module of this.modulesFor(filter)) {
      const { rows } = await this.pool(module).query<{ event_id: string; event_type: string }>(
        `SELECT event_id, event_type FROM "${this.schemaOf(module)}".dead_letters
          WHERE $1::text IS NULL OR event_type = $1 ORDER BY failed_at, event_id`,
        [this.typeOf(filter)],
      );
      for (const row of rows) {
        try {
          // Gone meanwhile (replayed or discarded by someone else): nothing to report.
          const outcome = await this.actOn(module, row.event_id, action);
          if (outcome) result.done.push(outcome);
        } catch (error) {
          result.failed.push({ module, eventId: row.event_id, eventType: row.event_type, error: error instanceof Error ? error.message : String(error) });
        }
      }
    }
    return result;
  }

  /** One dead letter in one module: the row goes only if Redis did its part. */
  private async actOn(module: string, eventId: string, action: 'replay' | 'discard'): Promise<DeadLetterOutcome | undefined> {
    const client = await this.pool(module).connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<{ event_type: string; envelope: IntegrationEvent }>(
        `DELETE FROM "${this.schemaOf(module)}".dead_letters WHERE event_id = $1 RETURNING event_type, envelope`,
        [eventId],
      );
      if (rows.length === 0) {
        await client.query('ROLLBACK');
        return undefined;
      }
      const queue = this.queues.get(inboxQueueName(module));
      await withTimeout(
        action === 'replay' ? this.requeue(queue, rows[0].envelope) : this.removeJob(queue, eventId),
        REDIS_TIMEOUT_MS,
        `${action === 'replay' ? 'replaying' : 'discarding'} dead letter ${eventId} in Redis`,
      );
      // A lost commit after a successful add leaves the row behind: replaying it again is
      // harmless (the inbox deduplicates), losing the event would not be.
      await client.query('COMMIT');
      return { module, eventId, eventType: rows[0].event_type };
    } catch (error) {
      await rollback(client);
      throw error;
    } finally {
      client.release();
    }
  }

  private async requeue(queue: Bull.Queue, envelope: IntegrationEvent): Promise<void> {
    await this.removeJob(queue, envelope.id);
    await queue.add(envelope.type, envelope, {
      jobId: envelope.id,
      attempts: this.config.env.INBOX_MAX_ATTEMPTS,
      backoff: { type: JITTERED_BACKOFF },
    });
  }

  /** Removes the job of that id if Redis still has it; fails if a worker holds it right now. */
  private async removeJob(queue: Bull.Queue, jobId: string): Promise<void> {
    const job = await queue.getJob(jobId);
    if (!job) return;
    try {
      await job.remove();
    } catch (error) {
      throw new Error(`the Bull job ${jobId} in ${queue.name} could not be removed (a worker may be processing it): ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  private modulesFor(filter: DeadLetterFilter): string[] {
    if (filter.type !== undefined) this.assertEventTypeShape(filter.type);
    return filter.module !== undefined ? [this.assertModule(filter.module)] : [...this.modules];
  }

  private typeOf(filter: DeadLetterFilter): string | null {
    return filter.type ?? null;
  }

  private schemaOf(module: string): string {
    return this.config.databases[module as DomainModuleName].schema;
  }

  private pool(module: string): Pool {
    let pool = this.pools.get(module);
    if (!pool) {
      const db = this.config.databases[module as DomainModuleName];
      pool = new Pool({
        connectionString: db.url,
        max: 2,
        connectionTimeoutMillis: db.connectTimeoutMs,
        statement_timeout: Math.max(db.statementTimeoutMs, MIN_STATEMENT_TIMEOUT_MS),
        application_name: `mm:${module}:event-operations`,
      });
      // An idle client's error (server restart) must not crash the operator's process.
      pool.on('error', () => undefined);
      this.pools.set(module, pool);
    }
    return pool;
  }
}

async function rollback(client: PoolClient): Promise<void> {
  await client.query('ROLLBACK').catch(() => undefined);
}
