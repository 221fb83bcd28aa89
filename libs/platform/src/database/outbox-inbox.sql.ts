import type { TableDistribution } from './module-database';

/**
 * How every module's messaging tables would be placed on a sharded Postgres (Citus), see
 * docs/scaling.md, "Messaging tables": they have no user_id and stay on the coordinator.
 */
export const messagingTablesDistribution: TableDistribution = {
  local: {
    outbox: 'written in the same transaction as the user rows it describes; the relay claims rows across all users in seq order with FOR UPDATE SKIP LOCKED, which Citus runs only on one node',
    inbox: 'keyed by event_id, written in the consumer transaction; events are not per user (one event may notify several users)',
    dead_letters: 'keyed by event_id, written and replayed by operators, a handful of rows',
    erasure_work: 'a few rows per erased user, claimed across users by any instance with FOR UPDATE SKIP LOCKED; deleted once done',
  },
};

/**
 * DDL for the messaging tables every module owns in its own schema. Each module's first
 * migration calls these, so the tables live and migrate with the module that owns them.
 */
export function messagingTablesUp(schema: string): string[] {
  const s = `"${schema}"`;
  return [
    `CREATE TABLE ${s}.outbox (
       id uuid PRIMARY KEY,
       seq bigint GENERATED ALWAYS AS IDENTITY,
       event_type text NOT NULL,
       payload jsonb NOT NULL,
       metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
       occurred_at timestamptz NOT NULL DEFAULT now()
     )`,
    `CREATE INDEX outbox_seq_idx ON ${s}.outbox (seq)`,
    // No NOTIFY trigger (it had one until outboxNotifyTriggerDown): the writer wakes its
    // own relay after the commit (OutboxPublisher).
    `CREATE TABLE ${s}.inbox (
       event_id uuid PRIMARY KEY,
       event_type text NOT NULL,
       handled_at timestamptz NOT NULL DEFAULT now()
     )`,
    `CREATE INDEX inbox_handled_at_idx ON ${s}.inbox (handled_at)`,
    `CREATE TABLE ${s}.dead_letters (
       event_id uuid PRIMARY KEY,
       event_type text NOT NULL,
       envelope jsonb NOT NULL,
       error text NOT NULL,
       attempts int NOT NULL,
       failed_at timestamptz NOT NULL DEFAULT now()
     )`,
  ];
}

export function messagingTablesDown(schema: string): string[] {
  const s = `"${schema}"`;
  return [
    `DROP TABLE ${s}.dead_letters`,
    `DROP TABLE ${s}.inbox`,
    `DROP TRIGGER IF EXISTS outbox_notify ON ${s}.outbox`,
    `DROP FUNCTION IF EXISTS ${s}.outbox_notify()`,
    `DROP TABLE ${s}.outbox`,
  ];
}

/**
 * The outbox's statement trigger NOTIFYing `<schema>_outbox` on every insert goes: Postgres
 * serialises the commits of all transactions that NOTIFY (one lock on the notification
 * queue, held through the commit's WAL flush), and every instance's relay woke for every
 * commit anywhere. The process that wrote the events now wakes its own relay after the
 * commit (OutboxPublisher); the relay still LISTENs for producers outside the application
 * (`events:replay` NOTIFYs explicitly), and its poll covers anything else.
 * IF EXISTS: databases created after messagingTablesUp stopped creating it have none.
 */
export function outboxNotifyTriggerDown(schema: string): string[] {
  const s = `"${schema}"`;
  return [`DROP TRIGGER IF EXISTS outbox_notify ON ${s}.outbox`, `DROP FUNCTION IF EXISTS ${s}.outbox_notify()`];
}

/** The trigger as it was, for the down migration. */
export function outboxNotifyTriggerUp(schema: string): string[] {
  const s = `"${schema}"`;
  return [
    `CREATE FUNCTION ${s}.outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
       PERFORM pg_notify('${schema}_outbox', '');
       RETURN NULL;
     END $$`,
    `CREATE TRIGGER outbox_notify AFTER INSERT ON ${s}.outbox
       FOR EACH STATEMENT EXECUTE FUNCTION ${s}.outbox_notify()`,
  ];
}

/**
 * Published outbox rows are kept (for OUTBOX_RETENTION) instead of deleted, so events can
 * be replayed: `published_at` marks them. The relay's claim reads only the partial index
 * of unpublished rows, so kept rows cost it nothing; retention deletes by `published_at`.
 */
export function outboxPublishedAtUp(schema: string): string[] {
  const s = `"${schema}"`;
  return [
    `ALTER TABLE ${s}.outbox ADD COLUMN published_at timestamptz`,
    `DROP INDEX ${s}.outbox_seq_idx`,
    `CREATE INDEX outbox_unpublished_idx ON ${s}.outbox (seq) WHERE published_at IS NULL`,
    `CREATE INDEX outbox_published_at_idx ON ${s}.outbox (published_at) WHERE published_at IS NOT NULL`,
    // Replay finds rows by the time they happened.
    `CREATE INDEX outbox_occurred_at_idx ON ${s}.outbox (occurred_at)`,
  ];
}

export function outboxPublishedAtDown(schema: string): string[] {
  const s = `"${schema}"`;
  return [
    `DELETE FROM ${s}.outbox WHERE published_at IS NOT NULL`,
    `DROP INDEX ${s}.outbox_occurred_at_idx`,
    `DROP INDEX ${s}.outbox_published_at_idx`,
    `DROP INDEX ${s}.outbox_unpublished_idx`,
    `CREATE INDEX outbox_seq_idx ON ${s}.outbox (seq)`,
    `ALTER TABLE ${s}.outbox DROP COLUMN published_at`,
  ];
}

/**
 * What an erasure needs in a module's schema (docs/architecture.md, "Erasure and retention"):
 * - expression indexes on the event payload's subject field (`userId`) in the outbox and
 *   the dead letters, so "every event about this user" is an index probe, not a scan of
 *   a week of kept events (the inbox keeps no payload, only event ids);
 * - `erasure_work`: the erasure steps outside Postgres (Bull jobs, cache keys) recorded in
 *   the erasing transaction and retried until done, so a crash midway loses none of them.
 * `subjectField` must be a plain identifier: it becomes part of the index expressions.
 */
export function erasureSupportUp(schema: string, subjectField: string): string[] {
  const s = `"${schema}"`;
  const field = subjectLiteral(subjectField);
  return [
    `CREATE INDEX outbox_subject_idx ON ${s}.outbox ((payload->>${field}))`,
    `CREATE INDEX dead_letters_subject_idx ON ${s}.dead_letters ((envelope->'payload'->>${field}))`,
    `CREATE TABLE ${s}.erasure_work (
       id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       subject_field text NOT NULL,
       subject text NOT NULL,
       -- Queues whose waiting, delayed and failed jobs about the subject are removed.
       queues text[] NOT NULL DEFAULT '{}',
       -- The event being handled: its own (active) job is not removed.
       except_event_id text,
       -- Cache entries to drop: [{"cache": ..., "key": ...}].
       cache_entries jsonb NOT NULL DEFAULT '[]'::jsonb,
       run_after timestamptz NOT NULL DEFAULT now(),
       attempts int NOT NULL DEFAULT 0,
       last_error text,
       created_at timestamptz NOT NULL DEFAULT now()
     )`,
    `CREATE INDEX erasure_work_run_after_idx ON ${s}.erasure_work (run_after)`,
  ];
}

export function erasureSupportDown(schema: string): string[] {
  const s = `"${schema}"`;
  return [`DROP TABLE ${s}.erasure_work`, `DROP INDEX ${s}.dead_letters_subject_idx`, `DROP INDEX ${s}.outbox_subject_idx`];
}

/** A payload field name as an SQL string literal; only plain identifiers are accepted. */
export function subjectLiteral(field: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(field)) throw new Error(`not a plain payload field name: ${JSON.stringify(field)}`);
  return `'${field}'`;
}
