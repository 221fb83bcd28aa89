import type { TraceCarrier } from '@app/platform';
import type { DeliveryChannel } from './domain/notification';

/** Every Bull queue the notifications module owns (and only it consumes). */
export const NOTIFICATIONS_QUEUES = {
  email: 'notifications.email',
  webhook: 'notifications.webhook',
  retention: 'notifications.retention',
} as const;

// `as const`: the queue names stay literal types, so the queue-ownership lint rule can check them.
export const DELIVERY_QUEUE = {
  email: NOTIFICATIONS_QUEUES.email,
  webhook: NOTIFICATIONS_QUEUES.webhook,
} as const satisfies Record<DeliveryChannel, string>;
export type DeliveryQueue = (typeof DELIVERY_QUEUE)[DeliveryChannel];

/** Data of a delivery job; the job id is the delivery id too. */
export interface DeliveryJob {
  deliveryId: string;
  /** Whose delivery: an erasure finds the user's failed jobs by it (absent in jobs queued before it was added). */
  userId?: string;
  /** The dispatcher's span, parent of the send's (README, "Tracing"); absent with tracing off. */
  trace?: TraceCarrier;
}
