import { erasureSupportDown, erasureSupportUp } from '@app/platform';
import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Erasure lookups by the event payload's `userId` (outbox, dead letters) and the durable
 * list of erasure steps outside Postgres (docs/architecture.md, "Erasure and retention").
 */
export class OrdersErasureSupport1764720000000 implements MigrationInterface {
  name = 'OrdersErasureSupport1764720000000';

  async up(runner: QueryRunner): Promise<void> {
    for (const sql of erasureSupportUp('orders', 'userId')) await runner.query(sql);
  }

  async down(runner: QueryRunner): Promise<void> {
    for (const sql of erasureSupportDown('orders')) await runner.query(sql);
  }
}
