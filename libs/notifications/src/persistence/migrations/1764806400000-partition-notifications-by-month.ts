import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Notifications and their deliveries become range-partitioned by month (UTC), so the
 * retention job drops whole months instead of deleting rows (docs/architecture.md,
 * "Notification partitions").
 *
 * A partitioned table's keys must contain the partition key, hence:
 * - notifications: PRIMARY KEY (id, created_at). A lookup by id alone probes the id index
 *   of each partition (a handful: retention / 1 month + the months created ahead).
 * - deliveries are partitioned by their notification's `notification_created_at`, so a
 *   delivery sits in the same month as its notification and both go in one drop; the
 *   foreign key is (notification_id, notification_created_at) → (id, created_at).
 * - (source_event_id, user_id) can no longer be UNIQUE (created_at is now() at insert, so
 *   a redelivery would not collide): the writer serialises per (event, user) with an
 *   advisory lock and checks first (application/notification-writer.ts); the inbox row in
 *   the same transaction stays the first guard.
 *
 * Rows are moved inside this migration (one transaction): fine at this product's size
 * (the notifications of the retention period, ~ a few million rows at most); a much
 * bigger table would be copied in batches beside a dual-write instead.
 *
 * `ensure_month_partition(month)` is the one definition of a month's partitions, used
 * here and by the maintenance job: it creates both tables' partitions for that month,
 * moves rows that landed in the DEFAULT partitions meanwhile, and attaches them.
 */
export class PartitionNotificationsByMonth1764806400000 implements MigrationInterface {
  name = 'PartitionNotificationsByMonth1764806400000';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`ALTER TABLE notifications.deliveries RENAME TO deliveries_unpartitioned`);
    await runner.query(`ALTER TABLE notifications.notifications RENAME TO notifications_unpartitioned`);

    await runner.query(`
      CREATE TABLE notifications.notifications (
        id uuid NOT NULL,
        user_id uuid NOT NULL,
        kind text NOT NULL,
        title text NOT NULL,
        body text NOT NULL,
        source_event_id uuid NOT NULL,
        read_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        data jsonb NOT NULL DEFAULT '{}'::jsonb
      ) PARTITION BY RANGE (created_at)`);
    await runner.query(`
      CREATE TABLE notifications.deliveries (
        id uuid NOT NULL,
        notification_id uuid NOT NULL,
        -- The partition key: its notification's created_at (same month, dropped together).
        notification_created_at timestamptz NOT NULL,
        user_id uuid NOT NULL,
        channel text NOT NULL CHECK (channel IN ('email', 'webhook')),
        status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'dead')),
        attempts integer NOT NULL DEFAULT 0,
        last_error text,
        enqueued_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        sent_at timestamptz
      ) PARTITION BY RANGE (notification_created_at)`);
    // Catch anything outside the months that exist (a stopped maintenance job, a skewed
    // clock); the job moves such rows into their month when it creates it.
    await runner.query(`CREATE TABLE notifications.notifications_default PARTITION OF notifications.notifications DEFAULT`);
    await runner.query(`CREATE TABLE notifications.deliveries_default PARTITION OF notifications.deliveries DEFAULT`);

    await runner.query(`
      CREATE FUNCTION notifications.ensure_month_partition(month date, OUT created boolean, OUT moved bigint)
      LANGUAGE plpgsql AS $fn$
      DECLARE
        lo timestamptz := date_trunc('month', month)::timestamp AT TIME ZONE 'UTC';
        hi timestamptz := (date_trunc('month', month) + interval '1 month')::timestamp AT TIME ZONE 'UTC';
        n_part text := 'notifications_p' || to_char(month, 'YYYY_MM');
        d_part text := 'deliveries_p' || to_char(month, 'YYYY_MM');
        moved_deliveries bigint;
      BEGIN
        -- Instances (and the migration) may run this at the same time: one at a time.
        PERFORM pg_advisory_xact_lock(hashtext('notifications.partitions'));
        moved := 0;
        IF to_regclass('notifications.' || n_part) IS NOT NULL THEN
          created := false;
          RETURN;
        END IF;
        -- Created apart and then attached (not PARTITION OF): ATTACH takes only a SHARE
        -- UPDATE EXCLUSIVE lock on the parent, and rows of this month sitting in DEFAULT
        -- (which would make the attach fail) can be moved in first.
        EXECUTE format('CREATE TABLE notifications.%I (LIKE notifications.notifications INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', n_part);
        EXECUTE format('CREATE TABLE notifications.%I (LIKE notifications.deliveries INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', d_part);
        -- Deliveries first: deleting their notifications from DEFAULT would cascade to them.
        EXECUTE format(
          'WITH m AS (DELETE FROM notifications.deliveries_default WHERE notification_created_at >= $1 AND notification_created_at < $2 RETURNING *)
           INSERT INTO notifications.%I SELECT * FROM m', d_part) USING lo, hi;
        GET DIAGNOSTICS moved_deliveries = ROW_COUNT;
        EXECUTE format(
          'WITH m AS (DELETE FROM notifications.notifications_default WHERE created_at >= $1 AND created_at < $2 RETURNING *)
           INSERT INTO notifications.%I SELECT * FROM m', n_part) USING lo, hi;
        GET DIAGNOSTICS moved = ROW_COUNT;
        EXECUTE format('ALTER TABLE notifications.notifications ATTACH PARTITION notifications.%I FOR VALUES FROM (%L) TO (%L)', n_part, lo, hi);
        EXECUTE format('ALTER TABLE notifications.deliveries ATTACH PARTITION notifications.%I FOR VALUES FROM (%L) TO (%L)', d_part, lo, hi);
        created := true;
      END
      $fn$`);

    // Every month that has rows, up to next month (the job keeps NOTIFICATIONS_PARTITIONS_AHEAD).
    await runner.query(`
      SELECT notifications.ensure_month_partition(m::date)
        FROM generate_series(
               date_trunc('month', (SELECT least(min(created_at), now()) FROM notifications.notifications_unpartitioned) AT TIME ZONE 'UTC'),
               date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month',
               interval '1 month') AS m`);
    await runner.query(`
      INSERT INTO notifications.notifications (id, user_id, kind, title, body, source_event_id, read_at, created_at, data)
      SELECT id, user_id, kind, title, body, source_event_id, read_at, created_at, data FROM notifications.notifications_unpartitioned`);
    await runner.query(`
      INSERT INTO notifications.deliveries (id, notification_id, notification_created_at, user_id, channel, status, attempts,
                                            last_error, enqueued_at, created_at, updated_at, sent_at)
      SELECT d.id, d.notification_id, n.created_at, d.user_id, d.channel, d.status, d.attempts,
             d.last_error, d.enqueued_at, d.created_at, d.updated_at, d.sent_at
        FROM notifications.deliveries_unpartitioned d
        JOIN notifications.notifications_unpartitioned n ON n.id = d.notification_id`);
    await runner.query(`DROP TABLE notifications.deliveries_unpartitioned`);
    await runner.query(`DROP TABLE notifications.notifications_unpartitioned`);

    // Keys and indexes last (one build per partition instead of row-by-row upkeep); the
    // names are the old ones, and every partition, present or future, gets its own copy.
    await runner.query(`ALTER TABLE notifications.notifications ADD CONSTRAINT notifications_pkey PRIMARY KEY (id, created_at)`);
    await runner.query(`CREATE INDEX notifications_user_created_idx ON notifications.notifications (user_id, created_at DESC, id DESC)`);
    await runner.query(`
      CREATE INDEX notifications_user_unread_idx ON notifications.notifications (user_id, created_at DESC, id DESC)
        WHERE read_at IS NULL`);
    // The writer's "already made for this (event, user)?" probe.
    await runner.query(`CREATE INDEX notifications_source_event_idx ON notifications.notifications (source_event_id, user_id)`);
    // (notifications_read_created_idx is gone: retention drops months, it no longer looks for rows.)
    await runner.query(`ALTER TABLE notifications.deliveries ADD CONSTRAINT deliveries_pkey PRIMARY KEY (id, notification_created_at)`);
    await runner.query(`
      ALTER TABLE notifications.deliveries
        ADD CONSTRAINT deliveries_notification_channel_key UNIQUE (notification_id, channel, notification_created_at),
        ADD CONSTRAINT deliveries_notification_fkey FOREIGN KEY (notification_id, notification_created_at)
          REFERENCES notifications.notifications (id, created_at) ON DELETE CASCADE`);
    await runner.query(`CREATE INDEX deliveries_unenqueued_idx ON notifications.deliveries (created_at) WHERE enqueued_at IS NULL`);
    await runner.query(`CREATE INDEX deliveries_user_idx ON notifications.deliveries (user_id)`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`ALTER TABLE notifications.deliveries RENAME TO deliveries_partitioned`);
    await runner.query(`ALTER TABLE notifications.notifications RENAME TO notifications_partitioned`);
    await runner.query(`ALTER TABLE notifications.deliveries_partitioned RENAME CONSTRAINT deliveries_pkey TO deliveries_partitioned_pkey`);
    await runner.query(`ALTER TABLE notifications.deliveries_partitioned RENAME CONSTRAINT deliveries_notification_channel_key TO deliveries_partitioned_channel_key`);
    await runner.query(`ALTER TABLE notifications.notifications_partitioned RENAME CONSTRAINT notifications_pkey TO notifications_partitioned_pkey`);
    await runner.query(`ALTER INDEX notifications.notifications_user_created_idx RENAME TO notifications_partitioned_user_created_idx`);
    await runner.query(`ALTER INDEX notifications.notifications_user_unread_idx RENAME TO notifications_partitioned_user_unread_idx`);
    await runner.query(`ALTER INDEX notifications.deliveries_unenqueued_idx RENAME TO deliveries_partitioned_unenqueued_idx`);
    await runner.query(`ALTER INDEX notifications.deliveries_user_idx RENAME TO deliveries_partitioned_user_idx`);
    await runner.query(`
      CREATE TABLE notifications.notifications (
        id uuid PRIMARY KEY,
        user_id uuid NOT NULL,
        kind text NOT NULL,
        title text NOT NULL,
        body text NOT NULL,
        source_event_id uuid NOT NULL,
        read_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        data jsonb NOT NULL DEFAULT '{}'::jsonb,
        CONSTRAINT notifications_event_user_key UNIQUE (source_event_id, user_id)
      )`);
    await runner.query(`
      INSERT INTO notifications.notifications (id, user_id, kind, title, body, source_event_id, read_at, created_at, data)
      SELECT id, user_id, kind, title, body, source_event_id, read_at, created_at, data FROM notifications.notifications_partitioned`);
    await runner.query(`
      CREATE TABLE notifications.deliveries (
        id uuid PRIMARY KEY,
        notification_id uuid NOT NULL REFERENCES notifications.notifications (id) ON DELETE CASCADE,
        user_id uuid NOT NULL,
        channel text NOT NULL CHECK (channel IN ('email', 'webhook')),
        status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'dead')),
        attempts integer NOT NULL DEFAULT 0,
        last_error text,
        enqueued_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        sent_at timestamptz,
        CONSTRAINT deliveries_notification_channel_key UNIQUE (notification_id, channel)
      )`);
    await runner.query(`
      INSERT INTO notifications.deliveries (id, notification_id, user_id, channel, status, attempts, last_error, enqueued_at, created_at, updated_at, sent_at)
      SELECT id, notification_id, user_id, channel, status, attempts, last_error, enqueued_at, created_at, updated_at, sent_at
        FROM notifications.deliveries_partitioned`);
    await runner.query(`DROP TABLE notifications.deliveries_partitioned`);
    await runner.query(`DROP TABLE notifications.notifications_partitioned`);
    await runner.query(`DROP FUNCTION notifications.ensure_month_partition(date)`);
    await runner.query(`CREATE INDEX notifications_user_created_idx ON notifications.notifications (user_id, created_at DESC, id DESC)`);
    await runner.query(`
      CREATE INDEX notifications_user_unread_idx ON notifications.notifications (user_id, created_at DESC, id DESC)
        WHERE read_at IS NULL`);
    await runner.query(`CREATE INDEX notifications_read_created_idx ON notifications.notifications (created_at) WHERE read_at IS NOT NULL`);
    await runner.query(`CREATE INDEX deliveries_unenqueued_idx ON notifications.deliveries (created_at) WHERE enqueued_at IS NULL`);
    await runner.query(`CREATE INDEX deliveries_user_idx ON notifications.deliveries (user_id)`);
  }
}
