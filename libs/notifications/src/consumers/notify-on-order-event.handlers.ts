import { Injectable } from '@nestjs/common';
import type { InboxEventHandler, IntegrationEvent } from '@app/platform';
import { OrderEvents, type OrderEventType, type OrderEventV1 } from '@app/orders/contracts';
import type { EntityManager } from 'typeorm';
import { NotificationWriter } from '../application/notification-writer';
import { orderNotification } from '../domain/notification-templates';

/** Every `orders.order-*.v1` event → one notification for the order's customer. */
@Injectable()
export class NotifyOnOrderEventHandler implements InboxEventHandler<OrderEventV1> {
  readonly eventTypes = Object.values(OrderEvents);

  constructor(private readonly writer: NotificationWriter) {}

  async handle(event: IntegrationEvent<OrderEventV1>, manager: EntityManager): Promise<void> {
    // Orders cancelled because the account was erased: there is nobody left to tell, and
    // this event may overtake users.user-deleted.v1 (whose tombstone covers the other order).
    if (event.payload.reason === 'account-deleted') return;
    const content = orderNotification(event.type as OrderEventType, event.payload);
    await this.writer.create(manager, { userId: event.payload.userId, ...content, sourceEventId: event.id });
  }
}
