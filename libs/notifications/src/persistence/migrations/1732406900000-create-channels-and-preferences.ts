import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Channels (email, webhook) with a stored status per delivery, the user's preferences,
 * the addresses learnt from users' events, and erasure tombstones. No foreign key leaves
 * the schema: user ids come from events, never from the users module's tables.
 */
export class CreateChannelsAndPreferences1732406900000 implements MigrationInterface {
  name = 'CreateChannelsAndPreferences1732406900000';

  async up(runner: QueryRunner): Promise<void> {
    // Structured facts for clients (order id, status, totals); texts stay in title/body.
    await runner.query(`ALTER TABLE notifications.notifications ADD COLUMN data jsonb NOT NULL DEFAULT '{}'::jsonb`);
    // `?unread=true` pages walk this one, and the retention job finds its victims with the other.
    await runner.query(`
      CREATE INDEX notifications_user_unread_idx ON notifications.notifications (user_id, created_at DESC, id DESC)
        WHERE read_at IS NULL`);
    await runner.query(`CREATE INDEX notifications_read_created_idx ON notifications.notifications (created_at) WHERE read_at IS NOT NULL`);

    // Where to send email: copied from users.user-registered.v1, erased with the user.
    await runner.query(`
      CREATE TABLE notifications.recipients (
        user_id uuid PRIMARY KEY,
        email text NOT NULL,
        name text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await runner.query(`
      CREATE TABLE notifications.preferences (
        user_id uuid PRIMARY KEY,
        email_enabled boolean NOT NULL DEFAULT true,
        webhook_url text,
        -- The HMAC key of the user's webhook: shown once, needed in clear to sign.
        webhook_secret text,
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT preferences_webhook_secret_chk CHECK ((webhook_url IS NULL) = (webhook_secret IS NULL))
      )`);
    await runner.query(`
      CREATE TABLE notifications.deliveries (
        id uuid PRIMARY KEY,
        notification_id uuid NOT NULL REFERENCES notifications.notifications (id) ON DELETE CASCADE,
        user_id uuid NOT NULL,
        channel text NOT NULL CHECK (channel IN ('email', 'webhook')),
        status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'dead')),
        attempts integer NOT NULL DEFAULT 0,
        last_error text,
        -- Set when the dispatcher has handed the delivery to its Bull queue.
        enqueued_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        sent_at timestamptz,
        CONSTRAINT deliveries_notification_channel_key UNIQUE (notification_id, channel)
      )`);
    await runner.query(`CREATE INDEX deliveries_unenqueued_idx ON notifications.deliveries (created_at) WHERE enqueued_at IS NULL`);
    await runner.query(`CREATE INDEX deliveries_user_idx ON notifications.deliveries (user_id)`);
    // An erased user gets nothing new, even from an event that arrives after the erasure.
    await runner.query(`
      CREATE TABLE notifications.erased_users (
        user_id uuid PRIMARY KEY,
        erased_at timestamptz NOT NULL DEFAULT now()
      )`);
    await runner.query(`CREATE INDEX erased_users_erased_at_idx ON notifications.erased_users (erased_at)`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE notifications.erased_users`);
    await runner.query(`DROP TABLE notifications.deliveries`);
    await runner.query(`DROP TABLE notifications.preferences`);
    await runner.query(`DROP TABLE notifications.recipients`);
    await runner.query(`DROP INDEX notifications.notifications_read_created_idx`);
    await runner.query(`DROP INDEX notifications.notifications_user_unread_idx`);
    await runner.query(`ALTER TABLE notifications.notifications DROP COLUMN data`);
  }
}
