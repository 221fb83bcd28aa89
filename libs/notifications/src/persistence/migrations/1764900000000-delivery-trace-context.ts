import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A delivery keeps the trace context of the event that created it, so its send (a later
 * Bull job) joins that trace (README, "Tracing"). Nullable, no default: adding it rewrites
 * no partition, and rows written with tracing off stay NULL.
 */
export class DeliveryTraceContext1764900000000 implements MigrationInterface {
  name = 'DeliveryTraceContext1764900000000';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query('ALTER TABLE notifications.deliveries ADD COLUMN trace_context jsonb');
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('ALTER TABLE notifications.deliveries DROP COLUMN trace_context');
  }
}
