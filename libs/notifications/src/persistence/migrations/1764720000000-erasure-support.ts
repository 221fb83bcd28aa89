import { erasureSupportDown, erasureSupportUp } from '@app/platform';
import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Erasure lookups by the event payload's `userId` (outbox, dead letters) and the durable
 * list of erasure steps outside Postgres (docs/architecture.md, "Erasure and retention").
 */
export class NotificationsErasureSupport1764720000000 implements MigrationInterface {
  name = 'NotificationsErasureSupport1764720000000';

  async up(runner: QueryRunner): Promise<void> {
    for (const sql of erasureSupportUp('notifications', 'userId')) await runner.query(sql);
  }

  async down(runner: QueryRunner): Promise<void> {
    for (const sql of erasureSupportDown('notifications')) await runner.query(sql);
  }
}
