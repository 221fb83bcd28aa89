/** The Bull queues the orders module owns (declared in its manifest too). */
export const ORDER_EXPIRY_QUEUE = 'orders.expiry';

/** Data of an expiry job; the job id is the order id. */
export interface ExpireOrderJob {
  orderId: string;
}
