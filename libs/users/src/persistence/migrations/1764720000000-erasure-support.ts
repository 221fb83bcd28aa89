import { erasureSupportDown, erasureSupportUp } from '@app/platform';
import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Erasure lookups by the event payload's `userId` (outbox, dead letters) and the durable
 * list of erasure steps outside Postgres (docs/architecture.md, "Erasure and retention").
 */
export class UsersErasureSupport1764720000000 implements MigrationInterface {
  name = 'UsersErasureSupport1764720000000';

  async up(runner: QueryRunner): Promise<void> {
    for (const sql of erasureSupportUp('users', 'userId')) await runner.query(sql);
  }

  async down(runner: QueryRunner): Promise<void> {
    for (const sql of erasureSupportDown('users')) await runner.query(sql);
  }
}
