import { Injectable } from '@nestjs/common';
import { eraseFromEventPath, ErasureWork, inboxQueueName, type InboxEventHandler, type IntegrationEvent } from '@app/platform';
import { UserEvents, type UserDeletedV1 } from '@app/users/contracts';
import type { EntityManager } from 'typeorm';
import { OrderLifecycleService } from '../application/order-lifecycle.service';
import { ordersManifest } from '../module.manifest';
import { findOrder } from '../persistence/order.queries';

/**
 * `users.user-deleted.v1`: pending orders are cancelled and their stock restored; every
 * other order is kept as the financial record. Orders hold no personal data (only the
 * opaque user id, no name, email or address), so keeping them erases nothing; they are
 * marked `user_erased_at`, and the user's idempotency records are dropped. Dead letters
 * and failed, delayed or waiting jobs of this module's inbox that concern the user go too
 * (they keep whole envelopes; the jobs through the durable erasure work list). A user's orders are few (placed one by one through the API),
 * so this stays one transaction; notifications, which can hold many rows per user, batches.
 */
@Injectable()
export class CancelOrdersOnUserDeletedHandler implements InboxEventHandler<UserDeletedV1> {
  readonly eventTypes = [UserEvents.deleted];

  constructor(
    private readonly lifecycle: OrderLifecycleService,
    private readonly erasure: ErasureWork,
  ) {}

  async handle(event: IntegrationEvent<UserDeletedV1>, manager: EntityManager): Promise<void> {
    const { userId } = event.payload;
    const pending = await manager.query<{ id: string }[]>(
      `SELECT id FROM orders.orders WHERE user_id = $1 AND status = 'pending' ORDER BY id FOR UPDATE`,
      [userId],
    );
    const orders = [];
    for (const { id } of pending) orders.push((await findOrder(manager, id))!);
    await this.lifecycle.applyAll(manager, orders, 'cancel', 'account-deleted');
    await manager.query('UPDATE orders.orders SET user_erased_at = now() WHERE user_id = $1 AND user_erased_at IS NULL', [userId]);
    await manager.query('DELETE FROM orders.idempotency_keys WHERE user_id = $1', [userId]);
    await eraseFromEventPath(manager, {
      schema: ordersManifest.schema,
      work: this.erasure,
      queues: [inboxQueueName('orders')],
      payloadField: 'userId',
      value: userId,
      exceptEventId: event.id,
    });
  }
}
