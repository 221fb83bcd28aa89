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
