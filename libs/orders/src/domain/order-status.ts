import type { OrderStatus } from '../contracts';
import { IllegalTransitionError } from './order.errors';

export type OrderAction = 'confirm' | 'ship' | 'deliver' | 'cancel' | 'expire';

/** The order state machine: which action moves which status where. Nothing else may. */
const TRANSITIONS: Record<OrderAction, Partial<Record<OrderStatus, OrderStatus>>> = {
  confirm: { pending: 'confirmed' },
  ship: { confirmed: 'shipped' },
  deliver: { shipped: 'delivered' },
  cancel: { pending: 'cancelled', confirmed: 'cancelled' },
  expire: { pending: 'expired' },
};

export function nextStatus(current: OrderStatus, action: OrderAction): OrderStatus {
  const next = TRANSITIONS[action][current];
  if (!next) throw new IllegalTransitionError(current, action);
  return next;
}

/** Transitions that give the reserved stock back. */
export function restoresStock(action: OrderAction): boolean {
  return action === 'cancel' || action === 'expire';
}
