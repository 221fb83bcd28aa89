import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { APP_CONFIG, durationMs, OutboxPublisher, type AppConfig } from '@app/platform';
import type { DataSource, EntityManager } from 'typeorm';
import { OrderEvents } from '../contracts';
import { InsufficientStockError, MixedCurrencyError, ProductNotFoundError } from '../domain/order.errors';
import { insertOrder, toEvent, type OrderView } from '../persistence/order.queries';
import { OrderExpiryScheduler } from '../workers/order-expiry.scheduler';
import { ordersSettings } from '../orders.settings';

export interface OrderLineRequest {
  productId: string;
  quantity: number;
}

interface ProductRow {
  id: string;
  sku: string;
  name: string;
  price_cents: number;
  currency: string;
  stock: number;
}

/**
 * Places an order in one transaction: stock is taken with a conditional update per line
 * (so it can never go below zero, whatever the concurrency), the order and its lines are
 * written, and `orders.order-placed.v1` goes into the outbox. Any failure writes nothing.
 * Prices always come from the catalogue.
 */
@Injectable()
export class PlaceOrderService {
  private readonly pendingTtlMs: number;

  constructor(
    @InjectDataSource('orders') private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly outbox: OutboxPublisher,
    private readonly expiry: OrderExpiryScheduler,
  ) {
    this.pendingTtlMs = durationMs(ordersSettings(config).ORDER_PENDING_TTL);
  }

  async place(userId: string, lines: OrderLineRequest[]): Promise<OrderView> {
    const order = await this.dataSource.transaction((manager) => this.placeIn(manager, userId, lines));
    await this.afterCommit(order);
    return order;
  }

  /** Schedules the expiry saga's delayed job; needs Redis, so only after the commit. */
  async afterCommit(order: OrderView): Promise<void> {
    await this.expiry.schedule(order.id, this.pendingTtlMs);
  }

  /** Runs inside the caller's transaction (the idempotency record commits with it). */
  async placeIn(manager: EntityManager, userId: string, lines: OrderLineRequest[]): Promise<OrderView> {
    const ids = lines.map((l) => l.productId);
    const products = await manager.query<ProductRow[]>('SELECT id, sku, name, price_cents, currency, stock FROM orders.products WHERE id = ANY($1::uuid[])', [ids]);
    const byId = new Map(products.map((p) => [p.id, p]));
    for (const line of lines) if (!byId.has(line.productId)) throw new ProductNotFoundError(line.productId);
    const currencies = new Set(products.map((p) => p.currency));
    if (currencies.size > 1) throw new MixedCurrencyError();
    // Sold out already: answer at once, without queueing for the product's row lock (a
    // flash sale's late buyers would otherwise wait behind every successful one).
    for (const line of lines) {
      const product = byId.get(line.productId)!;
      if (product.stock < line.quantity) throw new InsufficientStockError(product.id, product.sku, line.quantity);
    }

    const order = await insertOrder(manager, {
      id: randomUUID(),
      userId,
      totalCents: lines.reduce((sum, l) => sum + byId.get(l.productId)!.price_cents * l.quantity, 0),
      currency: products[0].currency,
      pendingTtlSeconds: this.pendingTtlMs / 1000,
      lines: lines.map((line) => {
        const p = byId.get(line.productId)!;
        return { productId: p.id, sku: p.sku, name: p.name, quantity: line.quantity, unitPriceCents: p.price_cents };
      }),
    });
    await this.outbox.publish(manager, [{ type: OrderEvents.placed, payload: toEvent(order) }]);

    // Stock last: a product's row lock is held from here to the commit only, so concurrent
    // buyers of one product queue for one statement each, not for the whole use case. The
    // conditional update is what decides; a failure rolls back the order written above.
    // Rows are locked in one global order, Postgres's uuid order (= code-point order of the
    // lower-case text), so multi-line orders cannot deadlock with each other or with stock
    // restores (restoreStock in order.queries.ts locks ORDER BY id too). `version` is the product's ETag.
    const uuidOrder = (a: OrderLineRequest, b: OrderLineRequest) => {
      const [x, y] = [a.productId.toLowerCase(), b.productId.toLowerCase()];
      return x < y ? -1 : x > y ? 1 : 0;
    };
    for (const line of [...lines].sort(uuidOrder)) {
      const taken = await manager.query<unknown[]>(
        'WITH u AS (UPDATE orders.products SET stock = stock - $2, version = version + 1, updated_at = now() WHERE id = $1 AND stock >= $2 RETURNING id) SELECT id FROM u',
        [line.productId, line.quantity],
      );
      if (taken.length === 0) throw new InsufficientStockError(line.productId, byId.get(line.productId)!.sku, line.quantity);
    }
    return order;
  }
}
