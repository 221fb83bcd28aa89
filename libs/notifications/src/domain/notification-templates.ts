import type { OrderEventV1, OrderEventType } from '@app/orders/contracts';

export interface NotificationContent {
  kind: string;
  title: string;
  body: string;
  data: Record<string, unknown>;
}

export function welcomeNotification(name: string): NotificationContent {
  return { kind: 'welcome', title: 'Welcome!', body: `Hi ${name}, your account is ready.`, data: {} };
}

// Building an Intl.NumberFormat is costly (≈0.3 ms); one per currency serves every notification.
const formats = new Map<string, Intl.NumberFormat>();

/** `1999, 'EUR'` → `€19.99`; currencies without minor units (JPY) are not divided. */
export function formatMoney(cents: number, currency: string): string {
  try {
    let format = formats.get(currency);
    if (!format) {
      format = new Intl.NumberFormat('en', { style: 'currency', currency });
      formats.set(currency, format);
    }
    const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
    return format.format(cents / 10 ** digits);
  } catch {
    return `${cents} ${currency} (minor units)`;
  }
}

/** The short reference customers see: the first block of the order id. */
export function orderReference(orderId: string): string {
  return `#${orderId.slice(0, 8).toUpperCase()}`;
}

type OrderTemplate = (order: OrderEventV1, ref: string, total: string) => { title: string; body: string };

const ORDER_TEMPLATES: Record<OrderEventType, { kind: string; render: OrderTemplate }> = {
  'orders.order-placed.v1': {
    kind: 'order-placed',
    render: (order, ref, total) => {
      const items = order.lines.reduce((n, line) => n + line.quantity, 0);
      return {
        title: 'Order received',
        body: `We received your order ${ref} (${items} item${items === 1 ? '' : 's'}, ${total}). We will tell you when it is confirmed.`,
      };
    },
  },
  'orders.order-confirmed.v1': {
    kind: 'order-confirmed',
    render: (_, ref, total) => ({ title: 'Order confirmed', body: `Your order ${ref} (${total}) is confirmed and being prepared.` }),
  },
  'orders.order-shipped.v1': {
    kind: 'order-shipped',
    render: (_, ref) => ({ title: 'Order shipped', body: `Your order ${ref} is on its way.` }),
  },
  'orders.order-delivered.v1': {
    kind: 'order-delivered',
    render: (_, ref) => ({ title: 'Order delivered', body: `Your order ${ref} was delivered. Enjoy!` }),
  },
  'orders.order-cancelled.v1': {
    kind: 'order-cancelled',
    render: (order, ref) => ({
      title: 'Order cancelled',
      body:
        order.reason === 'customer'
          ? `You cancelled order ${ref}.`
          : order.reason === 'admin'
            ? `Order ${ref} was cancelled by our team.`
            : `Order ${ref} was cancelled.`,
    }),
  },
  'orders.order-expired.v1': {
    kind: 'order-expired',
    render: (_, ref) => ({ title: 'Order expired', body: `Order ${ref} was not confirmed in time and has expired.` }),
  },
};

export function orderNotification(eventType: OrderEventType, order: OrderEventV1): NotificationContent {
  const template = ORDER_TEMPLATES[eventType];
  const { title, body } = template.render(order, orderReference(order.orderId), formatMoney(order.totalCents, order.currency));
  return {
    kind: template.kind,
    title,
    body,
    data: {
      orderId: order.orderId,
      status: order.status,
      ...(order.previousStatus ? { previousStatus: order.previousStatus } : {}),
      totalCents: order.totalCents,
      currency: order.currency,
      ...(order.reason ? { reason: order.reason } : {}),
    },
  };
}
