import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Optimistic concurrency for the catalogue and a fencing token for idempotency claims
 * (docs/api.md, "PATCH /v1/products/:id" and "Idempotency").
 */
export class ProductVersionsAndIdempotencyFencing1764807000000 implements MigrationInterface {
  name = 'ProductVersionsAndIdempotencyFencing1764807000000';

  async up(runner: QueryRunner): Promise<void> {
    // Every UPDATE of a product row adds 1 (admin edits, stock taken by an order, stock
    // restored): it is the product's ETag, so a stale If-Match can never overwrite stock.
    await runner.query(`ALTER TABLE orders.products ADD COLUMN version bigint NOT NULL DEFAULT 1`);
    // Who holds an in-progress claim: a takeover gives it a new id, and the first holder's
    // completion, fenced on its own id, then writes nothing.
    await runner.query(`ALTER TABLE orders.idempotency_keys ADD COLUMN claim_id uuid NOT NULL DEFAULT gen_random_uuid()`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`ALTER TABLE orders.idempotency_keys DROP COLUMN claim_id`);
    await runner.query(`ALTER TABLE orders.products DROP COLUMN version`);
  }
}
