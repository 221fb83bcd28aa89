import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { NewNotification, NotificationView } from '../domain/notification';
import { EmailSender } from '../channels/email.sender';
import { DeliveryDispatcher } from './delivery-dispatcher';
import { LiveNotifications } from './live-notifications';
import { toView } from './notifications.service';
import { afterCommit, currentTraceCarrier } from '@app/platform';
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
    // One notification per (event, user). The inbox row of the same transaction is the first
    // guard; this one also holds when that row is gone (pruned, replayed). The table is
    // partitioned by created_at, so (source_event_id, user_id) cannot be a UNIQUE key there:
    // a transaction-scoped advisory lock per (event, user) makes the check and the insert
    // one step (a second writer waits, then sees the committed row).
    await manager.query(`SELECT pg_advisory_xact_lock(hashtext('notifications.source'), hashtext($1::text || '/' || $2::text))`, [
      input.sourceEventId,
      input.userId,
    ]);
    // `partition_key`: created_at as text keeps its microseconds (a JavaScript Date would
    // not) for the deliveries' (notification_id, notification_created_at) foreign key.
    const [row] = await manager.query<{ id: string; created_at: Date; partition_key: string }[]>(
      `INSERT INTO notifications.notifications (id, user_id, kind, title, body, data, source_event_id)
       SELECT $1, $2, $3, $4, $5, $6, $7
        WHERE NOT EXISTS (SELECT 1 FROM notifications.erased_users WHERE user_id = $2)
          AND NOT EXISTS (SELECT 1 FROM notifications.notifications WHERE source_event_id = $7 AND user_id = $2)
       RETURNING id, created_at, created_at::text AS partition_key`,
      [randomUUID(), input.userId, input.kind, input.title, input.body, JSON.stringify(input.data), input.sourceEventId],
    );
    if (!row) return null;

    // One delivery per channel the user wants and we can serve, decided now (preferences
    // may change later; the processor checks them again before sending). The consumer's
    // trace context goes with them, so their sending joins the event's trace.
    const trace = currentTraceCarrier();
    const deliveries = await manager.query<{ id: string }[]>(
      `WITH p AS (
         SELECT coalesce((SELECT email_enabled FROM notifications.preferences WHERE user_id = $2), true)
                  AND EXISTS (SELECT 1 FROM notifications.recipients WHERE user_id = $2) AND $3::boolean AS email,
                (SELECT webhook_url IS NOT NULL FROM notifications.preferences WHERE user_id = $2) IS TRUE AS webhook
       )
       INSERT INTO notifications.deliveries (id, notification_id, notification_created_at, user_id, channel, trace_context)
       SELECT gen_random_uuid(), $1, $4::timestamptz, $2, c.channel, $5::jsonb
         FROM p, LATERAL (VALUES ('email', p.email), ('webhook', p.webhook)) AS c (channel, wanted)
        WHERE c.wanted
       RETURNING id`,
      [row.id, input.userId, this.email.enabled, row.partition_key, trace.traceparent ? JSON.stringify(trace) : null],
    );

    const view = toView({ ...input, id: row.id, read_at: null, created_at: row.created_at });
    afterCommit(manager, () => {
      this.live.publishCreated(input.userId, view);
      if (deliveries.length > 0) this.dispatcher.wake();
    });
    return view;
  }
}
