import { outboxPublishedAtDown, outboxPublishedAtUp } from '@app/platform';
import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Published events stay in the outbox for replay (docs/architecture.md, "Events and routing"). */
export class KeepOrdersPublishedOutboxEvents1764633600000 implements MigrationInterface {
  name = 'KeepOrdersPublishedOutboxEvents1764633600000';

  async up(runner: QueryRunner): Promise<void> {
    for (const sql of outboxPublishedAtUp('orders')) await runner.query(sql);
  }

  async down(runner: QueryRunner): Promise<void> {
    for (const sql of outboxPublishedAtDown('orders')) await runner.query(sql);
  }
}
