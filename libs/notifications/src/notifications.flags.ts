/** Runtime flags of the notifications module (`npm run cli -- flags:list`). */
export const NOTIFICATIONS_FLAGS = {
  /** Kill switch: off, the notifications.email queue is paused; deliveries wait in it and in Postgres. */
  emailDelivery: 'notifications.email-delivery',
  /** Kill switch: off, the notifications.webhook queue is paused; deliveries wait in it and in Postgres. */
  webhookDelivery: 'notifications.webhook-delivery',
  /** Kill switch: off, new live streams get 503 and open ones get a `closed` event and end. */
  liveStream: 'notifications.live-stream',
} as const;
