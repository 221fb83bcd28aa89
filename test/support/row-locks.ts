import { Client } from 'pg';
import { query } from './test-env';

/**
 * Holds a product's row lock from a separate connection, as a slow writer would, so that
 * requests touching the row stall inside their transactions until `release()`. The lock an
 * UPDATE takes (FOR NO KEY UPDATE): it blocks stock writes, not order lines' foreign-key checks.
 */
export async function holdProductRowLock(db: string, productId: string): Promise<{ release(): Promise<void> }> {
  const client = new Client({ connectionString: db });
  await client.connect();
  await client.query('BEGIN');
  await client.query('SELECT 1 FROM orders.products WHERE id = $1 FOR NO KEY UPDATE', [productId]);
  return {
    release: async () => {
      await client.query('COMMIT');
      await client.end();
    },
  };
}

/** How many statements containing `sql` wait for a lock in database `db`. */
export async function statementsWaitingOnLock(db: string, sql: string): Promise<number> {
  const [{ n }] = await query<{ n: string }>(
    db,
    `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND strpos(query, $1) > 0`,
    [sql],
  );
  return Number(n);
}
