/** Runtime flags of the orders module (`npm run cli -- flags:list`). */
export const ORDERS_FLAGS = {
  /** Kill switch: off, no delayed expiry job is enqueued; the sweeper still expires orders. */
  expiryScheduling: 'orders.expiry-scheduling',
} as const;
