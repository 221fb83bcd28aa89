import { outboxPublishedAtDown, outboxPublishedAtUp } from '@app/platform';
import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Published events stay in the outbox for replay (docs/architecture.md, "Events and routing"). */
export class KeepUsersPublishedOutboxEvents1764633600000 implements MigrationInterface {
  name = 'KeepUsersPublishedOutboxEvents1764633600000';

  async up(runner: QueryRunner): Promise<void> {
    for (const sql of outboxPublishedAtUp('users')) await runner.query(sql);
  }

  async down(runner: QueryRunner): Promise<void> {
    for (const sql of outboxPublishedAtDown('users')) await runner.query(sql);
  }
}
