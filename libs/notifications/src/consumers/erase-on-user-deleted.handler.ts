import { Inject, Injectable } from '@nestjs/common';
import {
  afterCommit,
  eraseFromEventPath,
  ErasureWork,
  inboxQueueName,
  ROOT_LOGGER,
  type InboxEventHandler,
  type IntegrationEvent,
} from '@app/platform';
import { UserEvents, type UserDeletedV1 } from '@app/users/contracts';
import type { EntityManager } from 'typeorm';
import type { Logger } from 'pino';
import { lockUserForErasure } from '../application/erased-users';
import { ErasurePurge } from '../application/erasure-purge';
import { DELIVERY_QUEUE } from '../notifications.queues';
import { LiveNotifications } from '../application/live-notifications';
import { notificationsManifest } from '../module.manifest';

/**
 * Notifications deleted inside the handler's transaction: enough for most users to be gone
 * at once, small enough that the transaction stays short on a busy database (a statement
 * timeout here would retry the whole event). The rest go in `ErasurePurge`'s batches.
 */
const HANDLER_BATCH_SIZE = 200;

/**
 * `users.user-deleted.v1` → the user's notifications, deliveries, preferences (webhook URL
 * and secret) and address are erased, and a tombstone keeps events that arrive late (an
 * order cancelled because of the erasure, a delayed welcome, an `events:replay`) from
 * creating new rows, in either order and at the same time (the user's erasure lock,
 * application/erased-users.ts). Delivery jobs already queued find no row and end without
 * sending.
 *
 * What is kept about a user here is one `recipients` row (email and name as of the
 * registration; a rename in the users module is not copied here, so there is no older
 * copy) and the names in notification texts: both go. The event path goes too: dead
 * letters, and the failed, delayed or waiting jobs about the user of the inbox queue
 * (whole envelopes, a welcome's email and name included) and of the delivery queues (a
 * failed delivery keeps the SMTP server's answer, which often quotes the address). The
 * jobs go through the durable erasure work list: recorded here, removed after the commit,
 * retried by any instance until done.
 *
 * Large erasures run in batches (ErasurePurge): this transaction, which also records the
 * inbox row, writes the tombstone, deletes the address, the preferences and the first
 * HANDLER_BATCH_SIZE notifications; after the commit the rest go batch by batch, each its
 * own short statement, and the retention job's sweep finishes a purge a crash interrupted.
 * One transaction for everything would hold the inbox job, row locks and the vacuum
 * horizon for as long as 100 000 deletes take, and a failure would start it all over.
 */
@Injectable()
export class EraseOnUserDeletedHandler implements InboxEventHandler<UserDeletedV1> {
  readonly eventTypes = [UserEvents.deleted];

  constructor(
    private readonly live: LiveNotifications,
    private readonly purge: ErasurePurge,
    private readonly erasure: ErasureWork,
    @Inject(ROOT_LOGGER) private readonly logger: Logger,
  ) {}

  async handle(event: IntegrationEvent<UserDeletedV1>, manager: EntityManager): Promise<void> {
    const { userId } = event.payload;
    await lockUserForErasure(manager, userId);
    await manager.query('INSERT INTO notifications.erased_users (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING', [userId]);
    const first = await this.purge.deleteBatch(manager, userId, HANDLER_BATCH_SIZE);
    await eraseFromEventPath(manager, {
      schema: notificationsManifest.schema,
      work: this.erasure,
      queues: [inboxQueueName('notifications'), DELIVERY_QUEUE.email, DELIVERY_QUEUE.webhook],
      payloadField: 'userId',
      value: userId,
      exceptEventId: event.id,
    });
    afterCommit(manager, () => {
      this.live.publishErased(userId);
      // A full first batch: more may be left. Each further batch is its own statement.
      if (first >= HANDLER_BATCH_SIZE) {
        this.purge.purgeUser(userId).catch((error: unknown) =>
          this.logger.warn({ err: error }, 'erasure purge interrupted; the retention sweep finishes it'),
        );
      }
    });
  }
}
