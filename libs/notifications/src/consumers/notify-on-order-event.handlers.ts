import { Injectable, type Type } from '@nestjs/common';
import type { InboxEventHandler, IntegrationEvent } from '@app/platform';
import { OrderEvents, type OrderEventType, type OrderEventV1 } from '@app/orders/contracts';
import type { EntityManager } from 'typeorm';
import { NotificationWriter } from '../application/notification-writer';
import { orderNotification } from '../domain/notification-templates';

/** Every `orders.order-*.v1` event → one notification for the order's customer. */
@Injectable() // emits the constructor's parameter types, which the subclasses inherit
abstract class NotifyOnOrderEventHandler implements InboxEventHandler<OrderEventV1> {
  abstract readonly eventType: OrderEventType;

  constructor(private readonly writer: NotificationWriter) {}

  async handle(event: IntegrationEvent<OrderEventV1>, manager: EntityManager): Promise<void> {
    // Orders cancelled because the account was erased: there is nobody left to tell, and
    // this event may overtake users.user-deleted.v1 (whose tombstone covers the other order).
    if (event.payload.reason === 'account-deleted') return;
    const content = orderNotification(this.eventType, event.payload);
    await this.writer.create(manager, { userId: event.payload.userId, ...content, sourceEventId: event.id });
  }
}

@Injectable()
export class NotifyOnOrderPlacedHandler extends NotifyOnOrderEventHandler {
  readonly eventType = OrderEvents.placed;
}

@Injectable()
export class NotifyOnOrderConfirmedHandler extends NotifyOnOrderEventHandler {
  readonly eventType = OrderEvents.confirmed;
}

@Injectable()
export class NotifyOnOrderShippedHandler extends NotifyOnOrderEventHandler {
  readonly eventType = OrderEvents.shipped;
}

@Injectable()
export class NotifyOnOrderDeliveredHandler extends NotifyOnOrderEventHandler {
  readonly eventType = OrderEvents.delivered;
}

@Injectable()
export class NotifyOnOrderCancelledHandler extends NotifyOnOrderEventHandler {
  readonly eventType = OrderEvents.cancelled;
}

@Injectable()
export class NotifyOnOrderExpiredHandler extends NotifyOnOrderEventHandler {
  readonly eventType = OrderEvents.expired;
}

export const ORDER_EVENT_HANDLERS: Type<InboxEventHandler>[] = [
  NotifyOnOrderPlacedHandler,
  NotifyOnOrderConfirmedHandler,
  NotifyOnOrderShippedHandler,
  NotifyOnOrderDeliveredHandler,
  NotifyOnOrderCancelledHandler,
  NotifyOnOrderExpiredHandler,
];
