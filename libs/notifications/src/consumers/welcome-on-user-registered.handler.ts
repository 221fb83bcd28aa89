import { Injectable } from '@nestjs/common';
import type { InboxEventHandler, IntegrationEvent } from '@app/platform';
import { UserEvents, type UserRegisteredV1 } from '@app/users/contracts';
import type { EntityManager } from 'typeorm';
import { lockUserForErasure } from '../application/erased-users';
import { NotificationWriter } from '../application/notification-writer';
import { welcomeNotification } from '../domain/notification-templates';

/**
 * `users.user-registered.v1` → the recipient's address (so email never has to read the
 * users module's tables) and one welcome notification. Nothing for an erased user: the
 * registration may be handled after, or at the same time as, `users.user-deleted.v1`
 * (a retry, a relay that published late, a replay), so the user's erasure lock is taken
 * first and the tombstone decides (application/erased-users.ts).
 */
@Injectable()
export class WelcomeOnUserRegisteredHandler implements InboxEventHandler<UserRegisteredV1> {
  readonly eventTypes = [UserEvents.registered];

  constructor(private readonly writer: NotificationWriter) {}

  async handle(event: IntegrationEvent<UserRegisteredV1>, manager: EntityManager): Promise<void> {
    const { userId, email, name } = event.payload;
    await lockUserForErasure(manager, userId);
    await manager.query(
      `INSERT INTO notifications.recipients (user_id, email, name)
       SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM notifications.erased_users WHERE user_id = $1)
       ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name, updated_at = now()`,
      [userId, email, name],
    );
    await this.writer.create(manager, { userId, ...welcomeNotification(name), sourceEventId: event.id });
  }
}
