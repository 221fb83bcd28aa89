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
    // Wakes the relay as soon as a transaction that wrote events commits.
    `CREATE FUNCTION ${s}.outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
       PERFORM pg_notify('${schema}_outbox', '');
       RETURN NULL;
     END $$`,
    `CREATE TRIGGER outbox_notify AFTER INSERT ON ${s}.outbox
       FOR EACH STATEMENT EXECUTE FUNCTION ${s}.outbox_notify()`,
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
    `DROP TRIGGER outbox_notify ON ${s}.outbox`,
    `DROP FUNCTION ${s}.outbox_notify()`,
    `DROP TABLE ${s}.outbox`,
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
