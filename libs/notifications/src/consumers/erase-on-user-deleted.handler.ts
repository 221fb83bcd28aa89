import { Injectable } from '@nestjs/common';
import { afterCommit, type InboxEventHandler, type IntegrationEvent } from '@app/platform';
import { UserEvents, type UserDeletedV1 } from '@app/users/contracts';
import type { EntityManager } from 'typeorm';
import { LiveNotifications } from '../application/live-notifications';

/**
 * `users.user-deleted.v1` → the user's notifications, deliveries, preferences (webhook URL
 * and secret) and address are erased, and a tombstone keeps events that arrive late (an
 * order cancelled because of the erasure, a delayed welcome) from creating new rows.
 * Delivery jobs already queued find no row and end without sending.
 */
@Injectable()
export class EraseOnUserDeletedHandler implements InboxEventHandler<UserDeletedV1> {
  readonly eventTypes = [UserEvents.deleted];

  constructor(private readonly live: LiveNotifications) {}

  async handle(event: IntegrationEvent<UserDeletedV1>, manager: EntityManager): Promise<void> {
    const { userId } = event.payload;
    await manager.query('INSERT INTO notifications.erased_users (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING', [userId]);
    await manager.query('DELETE FROM notifications.deliveries WHERE user_id = $1', [userId]);
    await manager.query('DELETE FROM notifications.notifications WHERE user_id = $1', [userId]);
    await manager.query('DELETE FROM notifications.preferences WHERE user_id = $1', [userId]);
    await manager.query('DELETE FROM notifications.recipients WHERE user_id = $1', [userId]);
    afterCommit(manager, () => this.live.publishErased(userId));
  }
}
