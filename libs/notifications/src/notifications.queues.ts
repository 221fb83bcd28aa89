import type { DeliveryChannel } from './domain/notification';

/** Every Bull queue the notifications module owns (and only it consumes). */
export const NOTIFICATIONS_QUEUES = {
  email: 'notifications.email',
  webhook: 'notifications.webhook',
  retention: 'notifications.retention',
} as const;

export const DELIVERY_QUEUE: Record<DeliveryChannel, string> = {
  email: NOTIFICATIONS_QUEUES.email,
  webhook: NOTIFICATIONS_QUEUES.webhook,
};

/** Data of a delivery job; the job id is the delivery id too. */
export interface DeliveryJob {
  deliveryId: string;
}
