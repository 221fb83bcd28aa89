import { messagingTablesDown, messagingTablesUp } from '@app/platform';
import type { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateUsers1732406400000 implements MigrationInterface {
  name = 'CreateUsers1732406400000';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`
      CREATE TABLE users.users (
        id uuid PRIMARY KEY,
        email text NOT NULL,
        name text NOT NULL,
        password_hash text NOT NULL,
        role text NOT NULL DEFAULT 'customer' CHECK (role IN ('customer', 'admin')),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    // Emails are unique in any letter case.
    await runner.query(`CREATE UNIQUE INDEX users_email_lower_key ON users.users (lower(email))`);
    for (const sql of messagingTablesUp('users')) await runner.query(sql);
  }

  async down(runner: QueryRunner): Promise<void> {
    for (const sql of messagingTablesDown('users')) await runner.query(sql);
    await runner.query(`DROP TABLE users.users`);
  }
}
