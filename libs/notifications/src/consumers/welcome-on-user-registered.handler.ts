import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { InboxEventHandler, IntegrationEvent } from '@app/platform';
import { UserEvents, type UserRegisteredV1 } from '@app/users/contracts';
import type { EntityManager } from 'typeorm';
import { NotificationEntity } from '../persistence/notification.entity';

/** `users.user-registered.v1` → one welcome notification for the new user. */
@Injectable()
export class WelcomeOnUserRegisteredHandler implements InboxEventHandler<UserRegisteredV1> {
  readonly eventType = UserEvents.registered;

  async handle(event: IntegrationEvent<UserRegisteredV1>, manager: EntityManager): Promise<void> {
    const { userId, name } = event.payload;
    // The unique (source_event_id, user_id) key backs up the inbox: one row per event and user.
    await manager
      .createQueryBuilder()
      .insert()
      .into(NotificationEntity)
      .values({
        id: randomUUID(),
        userId,
        kind: 'welcome',
        title: 'Welcome!',
        body: `Hi ${name}, your account is ready.`,
        sourceEventId: event.id,
      })
      .orIgnore()
      .execute();
  }
}
