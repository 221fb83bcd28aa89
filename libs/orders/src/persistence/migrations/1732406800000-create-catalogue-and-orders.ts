import type { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateCatalogueAndOrders1732406800000 implements MigrationInterface {
  name = 'CreateCatalogueAndOrders1732406800000';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`
      CREATE TABLE orders.products (
        id uuid PRIMARY KEY,
        sku text NOT NULL,
        name text NOT NULL,
        price_cents integer NOT NULL CHECK (price_cents >= 0),
        currency char(3) NOT NULL,
        -- The database itself refuses to oversell, whatever the application does.
        stock integer NOT NULL CHECK (stock >= 0),
        -- Millisecond precision: keyset cursors carry the exact ISO timestamp.
        created_at timestamptz(3) NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await runner.query(`CREATE UNIQUE INDEX products_sku_key ON orders.products (lower(sku))`);
    await runner.query(`CREATE INDEX products_page_idx ON orders.products (created_at, id)`);
    // user_id has no foreign key on purpose: users live in another module's schema.
    await runner.query(`
      CREATE TABLE orders.orders (
        id uuid PRIMARY KEY,
        user_id uuid NOT NULL,
        status text NOT NULL CHECK (status IN ('pending', 'confirmed', 'shipped', 'delivered', 'cancelled', 'expired')),
        total_cents bigint NOT NULL CHECK (total_cents >= 0),
        currency char(3) NOT NULL,
        expires_at timestamptz NOT NULL,
        user_erased_at timestamptz,
        -- Millisecond precision: keyset cursors carry the exact ISO timestamp.
        created_at timestamptz(3) NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await runner.query(`CREATE INDEX orders_user_page_idx ON orders.orders (user_id, created_at DESC, id DESC)`);
    await runner.query(`CREATE INDEX orders_pending_expiry_idx ON orders.orders (expires_at) WHERE status = 'pending'`);
    await runner.query(`
      CREATE TABLE orders.order_lines (
        order_id uuid NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
        line_no smallint NOT NULL,
        product_id uuid NOT NULL REFERENCES orders.products (id),
        sku text NOT NULL,
        name text NOT NULL,
        quantity integer NOT NULL CHECK (quantity > 0),
        unit_price_cents integer NOT NULL CHECK (unit_price_cents >= 0),
        PRIMARY KEY (order_id, line_no)
      )`);
    await runner.query(`
      CREATE TABLE orders.idempotency_keys (
        user_id uuid NOT NULL,
        key text NOT NULL,
        request_hash text NOT NULL,
        state text NOT NULL CHECK (state IN ('in-progress', 'completed')),
        response_status smallint,
        response_body jsonb,
        locked_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (user_id, key)
      )`);
    await runner.query(`CREATE INDEX idempotency_keys_expiry_idx ON orders.idempotency_keys (expires_at)`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE orders.idempotency_keys`);
    await runner.query(`DROP TABLE orders.order_lines`);
    await runner.query(`DROP TABLE orders.orders`);
    await runner.query(`DROP TABLE orders.products`);
  }
}
