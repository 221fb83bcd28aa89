import { messagingTablesDown, messagingTablesUp } from '@app/platform';
import type { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateNotifications1732406600000 implements MigrationInterface {
  name = 'CreateNotifications1732406600000';

  async up(runner: QueryRunner): Promise<void> {
    // user_id has no foreign key on purpose: users live in another module's schema.
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
        CONSTRAINT notifications_event_user_key UNIQUE (source_event_id, user_id)
      )`);
    await runner.query(
      `CREATE INDEX notifications_user_created_idx ON notifications.notifications (user_id, created_at DESC, id DESC)`,
    );
    for (const sql of messagingTablesUp('notifications')) await runner.query(sql);
  }

  async down(runner: QueryRunner): Promise<void> {
    for (const sql of messagingTablesDown('notifications')) await runner.query(sql);
    await runner.query(`DROP TABLE notifications.notifications`);
  }
}
