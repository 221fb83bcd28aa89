/**
 * @app/orders/contracts: versioned order event payloads and the public facade of
 * `orders`. Imports nothing from the module's internals, so it can become a published
 * package the day `orders` is extracted.
 */

export const OrderEvents = {
  placed: 'orders.order-placed.v1',
  confirmed: 'orders.order-confirmed.v1',
  shipped: 'orders.order-shipped.v1',
  delivered: 'orders.order-delivered.v1',
  cancelled: 'orders.order-cancelled.v1',
  expired: 'orders.order-expired.v1',
} as const;
export type OrderEventType = (typeof OrderEvents)[keyof typeof OrderEvents];

export type OrderStatus = 'pending' | 'confirmed' | 'shipped' | 'delivered' | 'cancelled' | 'expired';

export interface OrderLineSummaryV1 {
  productId: string;
  sku: string;
  name: string;
  quantity: number;
  unitPriceCents: number;
}

/**
 * The payload of every `orders.order-*.v1` event: what consumers need to tell the
 * customer what happened, without calling back into `orders`.
 */
export interface OrderEventV1 {
  orderId: string;
  userId: string;
  status: OrderStatus;
  /** The status before this transition (absent for order-placed). */
  previousStatus?: OrderStatus;
  totalCents: number;
  currency: string;
  lines: OrderLineSummaryV1[];
  occurredAt: string;
  /** Why a cancellation happened: the customer, an admin, or account erasure. */
  reason?: 'customer' | 'admin' | 'account-deleted';
}

export type OrderPlacedV1 = OrderEventV1;
export type OrderConfirmedV1 = OrderEventV1;
export type OrderShippedV1 = OrderEventV1;
export type OrderDeliveredV1 = OrderEventV1;
export type OrderCancelledV1 = OrderEventV1;
export type OrderExpiredV1 = OrderEventV1;

/**
 * Event type → payload type of every event `orders` publishes: one entry per type in its
 * manifest's `publishes`, checked with the committed JSON Schemas under `./events/`
 * (`npm run contracts:check`; docs/architecture.md, "Event contracts").
 */
export interface EventPayloads {
  /** An order was placed (status `pending`). */
  [OrderEvents.placed]: OrderPlacedV1;
  /** A pending order was confirmed. */
  [OrderEvents.confirmed]: OrderConfirmedV1;
  /** A confirmed order was shipped. */
  [OrderEvents.shipped]: OrderShippedV1;
  /** A shipped order was delivered. */
  [OrderEvents.delivered]: OrderDeliveredV1;
  /** A pending or confirmed order was cancelled; `reason` says why. */
  [OrderEvents.cancelled]: OrderCancelledV1;
  /** A pending order was not confirmed in time (the expiry saga). */
  [OrderEvents.expired]: OrderExpiredV1;
}
