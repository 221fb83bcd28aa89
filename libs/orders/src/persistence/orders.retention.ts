import type { RetentionRule } from '@app/platform';

/**
 * What the orders module deletes as it ages (run by the platform's RetentionSweeper with
 * the outbox, inbox and dead letters; docs/architecture.md "Retention"): idempotency keys
 * once they expired (KEY_TTL_HOURS after their request). An expired key no longer answers a repeat (a
 * request with it claims it afresh, application/idempotent-order-placement.ts), so
 * deleting it changes nothing a client can see; it only keeps the table at a day's keys.
 */
export function ordersRetentionRules(): RetentionRule[] {
  return [
    {
      table: 'idempotency_keys',
      sql: `DELETE FROM orders.idempotency_keys WHERE (user_id, key) IN (
              SELECT user_id, key FROM orders.idempotency_keys WHERE expires_at < now()
               ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)`,
    },
  ];
}
