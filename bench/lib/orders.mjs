// Shared by the order pairs: the `POST /v1/orders` answer check, the comparison of two
// answers (ids and timestamps differ per order) and the state reset between sides.
import { UUID } from '../baselines/common.mjs';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Pending time of an order in the pairs: far beyond any run, so no expiry ever fires during one. */
export const ORDER_PENDING_TTL = '6h';
export const ORDER_PENDING_TTL_MS = 6 * 3600_000;

/** The product placed the order: 201, the caller's id, one line of the product at its price. */
export function isPlacedOrder(response, state) {
  const o = response.json;
  return (
    response.status === 201 &&
    UUID.test(o?.id ?? '') &&
    o.userId === state.customer.id &&
    o.status === 'pending' &&
    o.items?.length === 1 &&
    o.items[0].productId === state.product.id &&
    o.items[0].quantity === 1 &&
    o.items[0].unitPriceCents === state.product.priceCents &&
    o.totalCents === state.product.priceCents &&
    Math.abs(Date.parse(o.expiresAt) - Date.parse(o.createdAt) - ORDER_PENDING_TTL_MS) < 5_000
  );
}

/** The answer with what differs per order (id, timestamps) replaced by its kind. */
function normalized(json) {
  if (!json || typeof json !== 'object') return json;
  const out = { ...json };
  if (UUID.test(out.id ?? '')) out.id = '<uuid>';
  for (const key of ['createdAt', 'updatedAt', 'expiresAt']) if (ISO.test(out[key] ?? '')) out[key] = '<timestamp>';
  return out;
}

/** Same status, same JSON once ids and timestamps are masked (keys, types and every other value). */
export function sameOrderAnswer(answer, reference) {
  return answer.status === reference.status && JSON.stringify(sortKeys(normalized(answer.json))) === JSON.stringify(sortKeys(normalized(reference.json)));
}

function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (!value || typeof value !== 'object') return value;
  return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys(value[k])]));
}

/** Before each side: VACUUM, so every side starts on tables in the same state (one product row takes every stock update: its dead versions would otherwise pile up for whoever runs later). */
export async function vacuumOrderTables(ctx) {
  await ctx.db.query('VACUUM (ANALYZE) orders.products, orders.orders, orders.order_lines, orders.outbox');
}

const INBOX = 'notifications.inbox';

/** Events placed orders still owe: rows in orders.outbox, and jobs waiting or active in the notifications inbox queue. */
export async function messagingBacklog(ctx) {
  const key = (part) => `${ctx.config.benchId}:bull:${INBOX}:${part}`;
  const [outbox, waiting, active] = await Promise.all([
    ctx.db.query('SELECT count(*) AS n FROM orders.outbox').then(({ rows }) => Number(rows[0].n)),
    ctx.redis.llen(key('wait')),
    ctx.redis.llen(key('active')),
  ]);
  return { outbox, inbox: waiting + active };
}

/** A note when the API's relay or the notifications consumer had not caught up with the load when the side ended. */
export async function backlogNote(ctx) {
  const { outbox, inbox } = await messagingBacklog(ctx);
  return outbox || inbox
    ? [`when the load stopped, ${outbox} order events were still in orders.outbox and ${inbox} in the notifications inbox queue (in flight, or a backlog of the in-process relay/consumer)`]
    : [];
}

/**
 * With no API running: drops what a side left undone (outbox rows, the notifications inbox
 * queue's keys), so the next API to start does not spend its side catching up.
 */
export async function purgeOrderMessaging(ctx) {
  await ctx.db.query('DELETE FROM orders.outbox');
  let cursor = '0';
  do {
    const [next, keys] = await ctx.redis.scan(cursor, 'MATCH', `${ctx.config.benchId}:bull:${INBOX}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await ctx.redis.unlink(...keys);
  } while (cursor !== '0');
}
