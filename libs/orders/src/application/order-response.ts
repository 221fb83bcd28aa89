import type { OrderView } from '../persistence/order.queries';

/** The public shape of an order (docs/api.md, "Orders"); also what idempotent replays store. */
export function toOrderResponse(order: OrderView) {
  return {
    id: order.id,
    userId: order.userId,
    status: order.status,
    items: order.items,
    totalCents: order.totalCents,
    currency: order.currency,
    createdAt: order.createdAt,
    updatedAt: order.updatedAt,
    expiresAt: order.expiresAt,
  };
}
export type OrderResponse = ReturnType<typeof toOrderResponse>;
