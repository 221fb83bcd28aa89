import type { EntityManager } from 'typeorm';
import { execute } from '@app/platform';
import type { OrderEventV1, OrderLineSummaryV1, OrderStatus } from '../contracts';

export interface OrderView {
  id: string;
  userId: string;
  status: OrderStatus;
  items: OrderLineSummaryV1[];
  totalCents: number;
  currency: string;
  createdAt: string;
  updatedAt: string;
  expiresAt: string;
}

interface OrderRow {
  id: string;
  user_id: string;
  status: OrderStatus;
  total_cents: string;
  currency: string;
  created_at: Date;
  updated_at: Date;
  expires_at: Date;
  lines: OrderLineSummaryV1[] | null;
}

// Lines aggregated in the same statement: one round trip per order (or page of orders).
const SELECT_ORDERS = `
  SELECT o.id, o.user_id, o.status, o.total_cents, o.currency, o.created_at, o.updated_at, o.expires_at,
         (SELECT json_agg(json_build_object('productId', l.product_id, 'sku', l.sku, 'name', l.name,
                                            'quantity', l.quantity, 'unitPriceCents', l.unit_price_cents)
                          ORDER BY l.line_no)
            FROM orders.order_lines l WHERE l.order_id = o.id) AS lines
    FROM orders.orders o`;

function toView(row: OrderRow): OrderView {
  return {
    id: row.id,
    userId: row.user_id,
    status: row.status,
    items: row.lines ?? [],
    totalCents: Number(row.total_cents),
    currency: row.currency.trim(),
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
    expiresAt: new Date(row.expires_at).toISOString(),
  };
}

export interface NewOrder {
  id: string;
  userId: string;
  totalCents: number;
  currency: string;
  pendingTtlSeconds: number;
  /** In line order; their prices come from the catalogue. */
  lines: OrderLineSummaryV1[];
}

/**
 * Writes a pending order and its lines and returns its view, built from what the INSERT
 * returns (timestamps, defaults) and the lines the caller already holds: no read-back.
 */
export async function insertOrder(manager: EntityManager, order: NewOrder): Promise<OrderView> {
  const [row] = await manager.query<Omit<OrderRow, 'lines'>[]>(
    `INSERT INTO orders.orders (id, user_id, status, total_cents, currency, expires_at)
     VALUES ($1, $2, 'pending', $3, $4, now() + make_interval(secs => $5))
     RETURNING id, user_id, status, total_cents, currency, created_at, updated_at, expires_at`,
    [order.id, order.userId, order.totalCents, order.currency, order.pendingTtlSeconds],
  );
  const values: unknown[] = [order.id];
  const rows = order.lines.map((line, index) => {
    values.push(index + 1, line.productId, line.sku, line.name, line.quantity, line.unitPriceCents);
    const n = values.length;
    return `($1, $${n - 5}, $${n - 4}, $${n - 3}, $${n - 2}, $${n - 1}, $${n})`;
  });
  await manager.query(
    `INSERT INTO orders.order_lines (order_id, line_no, product_id, sku, name, quantity, unit_price_cents) VALUES ${rows.join(', ')}`,
    values,
  );
  return toView({ ...row, lines: order.lines });
}

/** Moves an order to `status` and returns its view with the new status and update time. */
export async function updateOrderStatus(manager: EntityManager, order: OrderView, status: OrderStatus): Promise<OrderView> {
  const { rows: [row] } = await execute<{ updated_at: Date }>(
    manager,
    'UPDATE orders.orders SET status = $2, updated_at = now() WHERE id = $1 RETURNING updated_at',
    [order.id, status],
  );
  return { ...order, status, updatedAt: new Date(row.updated_at).toISOString() };
}

export async function findOrder(manager: EntityManager, orderId: string, forUpdate = false): Promise<OrderView | null> {
  const rows = await manager.query<OrderRow[]>(`${SELECT_ORDERS} WHERE o.id = $1${forUpdate ? ' FOR UPDATE OF o' : ''}`, [orderId]);
  return rows[0] ? toView(rows[0]) : null;
}

export interface OrderPageQuery {
  userId: string;
  status?: OrderStatus;
  limit: number;
  after?: { createdAt: string; id: string };
}

/** Keyset page, newest first: stable while new orders are inserted. */
export async function listOrders(manager: EntityManager, query: OrderPageQuery): Promise<OrderView[]> {
  const params: unknown[] = [query.userId, query.limit];
  const where = ['o.user_id = $1'];
  if (query.status) {
    params.push(query.status);
    where.push(`o.status = $${params.length}`);
  }
  if (query.after) {
    params.push(query.after.createdAt, query.after.id);
    where.push(`(o.created_at, o.id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
  }
  const rows = await manager.query<OrderRow[]>(`${SELECT_ORDERS} WHERE ${where.join(' AND ')} ORDER BY o.created_at DESC, o.id DESC LIMIT $2`, params);
  return rows.map(toView);
}

export function toEvent(order: OrderView, extra: Partial<OrderEventV1> = {}): OrderEventV1 {
  return {
    orderId: order.id,
    userId: order.userId,
    status: order.status,
    totalCents: order.totalCents,
    currency: order.currency,
    lines: order.items,
    occurredAt: new Date().toISOString(),
    ...extra,
  };
}

/**
 * Gives the stock of these orders' lines back. First one statement locks all their
 * products in id order, as placement does (PlaceOrderService.placeIn), so a restore and a
 * placement (or two restores) touching the same products in opposite line orders queue
 * behind each other instead of deadlocking. FOR NO KEY UPDATE is the lock the UPDATE
 * takes anyway; it does not wait for the KEY SHARE locks that placements' order-line
 * foreign keys hold (in line order) on the same products. The UPDATE is a second
 * statement so that its snapshot already sees the rows as locked: folded into one
 * statement, the UPDATE would work from a snapshot older than its locks and re-lock
 * newer row versions out of id order (observed as 40P01 under concurrent placements).
 */
export async function restoreStock(manager: EntityManager, orderIds: string[]): Promise<void> {
  await manager.query(
    `SELECT id FROM orders.products
      WHERE id IN (SELECT product_id FROM orders.order_lines WHERE order_id = ANY($1::uuid[]))
      ORDER BY id FOR NO KEY UPDATE`,
    [orderIds],
  );
  await manager.query(
    `UPDATE orders.products p SET stock = p.stock + r.quantity, version = p.version + 1, updated_at = now()
       FROM (SELECT product_id, sum(quantity) AS quantity FROM orders.order_lines WHERE order_id = ANY($1::uuid[]) GROUP BY product_id) r
      WHERE p.id = r.product_id`,
    [orderIds],
  );
}
