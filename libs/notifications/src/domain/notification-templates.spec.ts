import { OrderEvents, type OrderEventV1 } from '@app/orders/contracts';
import { formatMoney, orderNotification } from './notification-templates';

const order: OrderEventV1 = {
  orderId: '0f8fad5b-d9cb-469f-a165-70867728950e',
  userId: '7c9e6679-7425-40de-944b-e07fc1f90ae7',
  status: 'pending',
  totalCents: 2599,
  currency: 'EUR',
  lines: [{ productId: 'p', sku: 'S', name: 'Socks', quantity: 3, unitPriceCents: 866 }],
  occurredAt: '2024-11-24T10:00:00.000Z',
};

describe('notification templates', () => {
  it('formats money from minor units, also for currencies without them', () => {
    expect(formatMoney(2599, 'EUR')).toBe('€25.99');
    expect(formatMoney(500, 'JPY')).toBe('¥500');
    expect(formatMoney(100, 'NOPE')).toBe('100 NOPE (minor units)');
  });

  it('has a kind and a text for every order event, with the order facts as data', () => {
    for (const type of Object.values(OrderEvents)) {
      const content = orderNotification(type, order);
      expect(content.kind).toBe(type.replace(/^orders\.(.*)\.v1$/, '$1'));
      expect(content.body).toContain('#0F8FAD5B');
      expect(content.data).toMatchObject({ orderId: order.orderId, totalCents: 2599, currency: 'EUR' });
    }
    expect(orderNotification(OrderEvents.placed, order).body).toContain('3 items, €25.99');
    expect(orderNotification(OrderEvents.cancelled, { ...order, status: 'cancelled', reason: 'admin' }).body).toMatch(/by our team/);
  });
});
