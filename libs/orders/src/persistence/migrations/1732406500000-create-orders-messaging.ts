import { messagingTablesDown, messagingTablesUp } from '@app/platform';
import type { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateOrdersMessaging1732406500000 implements MigrationInterface {
  name = 'CreateOrdersMessaging1732406500000';

  async up(runner: QueryRunner): Promise<void> {
    for (const sql of messagingTablesUp('orders')) await runner.query(sql);
  }

  async down(runner: QueryRunner): Promise<void> {
    for (const sql of messagingTablesDown('orders')) await runner.query(sql);
  }
}
