import type { ModuleDatabaseDefinition } from '@app/platform';
import { CreateOrdersMessaging1732406500000 } from './migrations/1732406500000-create-orders-messaging';

/** The orders module's tables (schema `orders`) and its migration history. */
export const ordersDatabase: ModuleDatabaseDefinition = {
  module: 'orders',
  entities: [],
  migrations: [CreateOrdersMessaging1732406500000],
};
