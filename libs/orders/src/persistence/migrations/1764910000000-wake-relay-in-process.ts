import { outboxNotifyTriggerDown, outboxNotifyTriggerUp } from '@app/platform';
import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The outbox no longer NOTIFYs on insert: the process that wrote the events wakes its own
 * relay after the commit (docs/architecture.md, "Events and routing").
 */
export class OrdersWakeRelayInProcess1764910000000 implements MigrationInterface {
  name = 'OrdersWakeRelayInProcess1764910000000';

  async up(runner: QueryRunner): Promise<void> {
    for (const sql of outboxNotifyTriggerDown('orders')) await runner.query(sql);
  }

  async down(runner: QueryRunner): Promise<void> {
    for (const sql of outboxNotifyTriggerUp('orders')) await runner.query(sql);
  }
}
