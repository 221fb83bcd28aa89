/** What a client sees of a notification (REST list items and live stream events). */
export interface NotificationView {
  id: string;
  kind: string;
  title: string;
  body: string;
  data: Record<string, unknown>;
  read: boolean;
  readAt: string | null;
  createdAt: string;
}

/** A notification to create from an event, at most once per (event, user). */
export interface NewNotification {
  userId: string;
  kind: string;
  title: string;
  body: string;
  data: Record<string, unknown>;
  sourceEventId: string;
}

export const DELIVERY_CHANNELS = ['email', 'webhook'] as const;
export type DeliveryChannel = (typeof DELIVERY_CHANNELS)[number];

/**
 * pending: not tried yet; failed: the last attempt failed and another is scheduled;
 * sent: done; dead: attempts exhausted or a permanent failure (the dead-letter state).
 */
export type DeliveryStatus = 'pending' | 'sent' | 'failed' | 'dead';
