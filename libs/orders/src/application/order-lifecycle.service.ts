import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { InjectReplicaReader, KeysetCursor, OutboxPublisher, type AuthenticatedUser, type ReplicaReader } from '@app/platform';
import type { DataSource, EntityManager } from 'typeorm';
import { OrderEvents, type OrderEventType, type OrderEventV1, type OrderStatus } from '../contracts';
import { nextStatus, restoresStock, type OrderAction } from '../domain/order-status';
import { OrderNotFoundError } from '../domain/order.errors';
import { findOrder, listOrders, restoreStock, toEvent, updateOrderStatus, type OrderView } from '../persistence/order.queries';

const EVENT_OF: Record<OrderAction, OrderEventType> = {
  confirm: OrderEvents.confirmed,
  ship: OrderEvents.shipped,
  deliver: OrderEvents.delivered,
  cancel: OrderEvents.cancelled,
  expire: OrderEvents.expired,
};

/** Reading orders and moving them through the state machine (domain/order-status.ts). */
@Injectable()
export class OrderLifecycleService {
  constructor(
    @InjectDataSource('orders') private readonly dataSource: DataSource,
    private readonly outbox: OutboxPublisher,
    @InjectReplicaReader('orders') private readonly reader: ReplicaReader,
  ) {}

  /** Owner or admin; anyone else learns nothing (404, not 403). */
  async get(orderId: string, caller: AuthenticatedUser): Promise<OrderView> {
    const order = await findOrder(this.dataSource.manager, orderId);
    if (!order || (caller.role !== 'admin' && order.userId !== caller.userId)) throw new OrderNotFoundError();
    return order;
  }

  /** The user's order list may come from the read replica, never behind the user's own writes. */
  async list(userId: string, limit: number, status?: OrderStatus, cursor?: string): Promise<{ items: OrderView[]; nextCursor: string | null }> {
    const after = KeysetCursor.decode(cursor, KeysetCursor.isTimestamp);
    const rows = await this.reader.read(userId, (manager) =>
      listOrders(manager, { userId, status, limit: limit + 1, after: after && { createdAt: after.key, id: after.id } }),
    );
    const items = rows.slice(0, limit);
    const last = rows.length > limit ? items[items.length - 1] : undefined;
    return { items, nextCursor: last ? KeysetCursor.encode({ key: last.createdAt, id: last.id }) : null };
  }

  async transition(orderId: string, action: OrderAction, caller?: AuthenticatedUser, reason?: OrderEventV1['reason']): Promise<OrderView> {
    return this.dataSource.transaction(async (manager) => {
      const order = await findOrder(manager, orderId, true);
      if (!order || (caller && caller.role !== 'admin' && order.userId !== caller.userId)) throw new OrderNotFoundError();
      return this.apply(manager, order, action, reason);
    });
  }

  /**
   * The expiry saga's compensating step. A no-op when the order moved on meanwhile
   * (confirmed, cancelled...), so a late or duplicate expiry job is harmless.
   */
  async expire(orderId: string): Promise<boolean> {
    return this.dataSource.transaction(async (manager) => {
      const order = await findOrder(manager, orderId, true);
      if (!order || order.status !== 'pending' || Date.parse(order.expiresAt) > Date.now()) return false;
      await this.apply(manager, order, 'expire');
      return true;
    });
  }

  /** Inside the caller's transaction, with the order row locked. */
  async apply(manager: EntityManager, order: OrderView, action: OrderAction, reason?: OrderEventV1['reason']): Promise<OrderView> {
    const [updated] = await this.applyAll(manager, [order], action, reason);
    return updated;
  }

  /**
   * One action on several orders, inside the caller's transaction with their rows locked.
   * Their stock comes back together, after one statement has locked all their products in
   * id order, so cancelling many orders at once cannot deadlock with placements either.
   */
  async applyAll(manager: EntityManager, orders: OrderView[], action: OrderAction, reason?: OrderEventV1['reason']): Promise<OrderView[]> {
    const moves = orders.map((order) => ({ order, status: nextStatus(order.status, action) }));
    if (restoresStock(action) && orders.length) await restoreStock(manager, orders.map((o) => o.id));
    const updated: OrderView[] = [];
    for (const { order, status } of moves) {
      const moved = await updateOrderStatus(manager, order, status);
      const payload = toEvent(moved, { previousStatus: order.status, ...(reason ? { reason } : {}) });
      await this.outbox.publish(manager, [{ type: EVENT_OF[action], payload }]);
      updated.push(moved);
    }
    return updated;
  }
}
