import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { NewNotification, NotificationView } from '../domain/notification';
import { EmailSender } from '../channels/email.sender';
import { DeliveryDispatcher } from './delivery-dispatcher';
import { LiveNotifications } from './live-notifications';
import { toView } from './notifications.service';
import { afterCommit } from '@app/platform';
import { lockUserForErasure } from './erased-users';

/**
 * Creates a notification and its deliveries inside the consumer's inbox transaction, and
 * announces it (live stream, dispatcher) only once that transaction has committed.
 */
@Injectable()
export class NotificationWriter {
  constructor(
    private readonly live: LiveNotifications,
    private readonly dispatcher: DeliveryDispatcher,
    private readonly email: EmailSender,
  ) {}

  /** Returns null when this (event, user) already has its notification, or the user was erased. */
  async create(manager: EntityManager, input: NewNotification): Promise<NotificationView | null> {
    // After a concurrent erasure of the user has committed, or before it starts (erased-users.ts).
    await lockUserForErasure(manager, input.userId);
    // The unique (source_event_id, user_id) key backs up the inbox: one row per event and user.
    const [row] = await manager.query<{ id: string; created_at: Date }[]>(
      `INSERT INTO notifications.notifications (id, user_id, kind, title, body, data, source_event_id)
       SELECT $1, $2, $3, $4, $5, $6, $7
        WHERE NOT EXISTS (SELECT 1 FROM notifications.erased_users WHERE user_id = $2)
       ON CONFLICT (source_event_id, user_id) DO NOTHING
       RETURNING id, created_at`,
      [randomUUID(), input.userId, input.kind, input.title, input.body, JSON.stringify(input.data), input.sourceEventId],
    );
    if (!row) return null;

    // One delivery per channel the user wants and we can serve, decided now (preferences
    // may change later; the processor checks them again before sending).
    const deliveries = await manager.query<{ id: string }[]>(
      `WITH p AS (
         SELECT coalesce((SELECT email_enabled FROM notifications.preferences WHERE user_id = $2), true)
                  AND EXISTS (SELECT 1 FROM notifications.recipients WHERE user_id = $2) AND $3::boolean AS email,
                (SELECT webhook_url IS NOT NULL FROM notifications.preferences WHERE user_id = $2) IS TRUE AS webhook
       )
       INSERT INTO notifications.deliveries (id, notification_id, user_id, channel)
       SELECT gen_random_uuid(), $1, $2, c.channel
         FROM p, LATERAL (VALUES ('email', p.email), ('webhook', p.webhook)) AS c (channel, wanted)
        WHERE c.wanted
       RETURNING id`,
      [row.id, input.userId, this.email.enabled],
    );

    const view = toView({ ...input, id: row.id, read_at: null, created_at: row.created_at });
    afterCommit(manager, () => {
      this.live.publishCreated(input.userId, view);
      if (deliveries.length > 0) this.dispatcher.wake();
    });
    return view;
  }
}
