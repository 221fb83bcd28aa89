import type { Type } from '@nestjs/common';
import type { DomainModuleName, ModuleDatabaseDefinition } from '@app/platform';
import { NotificationsModule, notificationsDatabase } from '@app/notifications';
import { OrdersModule, ordersDatabase } from '@app/orders';
import { UsersModule, usersDatabase } from '@app/users';

/** The composition root's catalogue of domain modules; MODULES_ENABLED picks from it. */
export const DOMAIN_MODULE_CATALOGUE: Record<DomainModuleName, { module: Type; database: ModuleDatabaseDefinition }> = {
  users: { module: UsersModule, database: usersDatabase },
  orders: { module: OrdersModule, database: ordersDatabase },
  notifications: { module: NotificationsModule, database: notificationsDatabase },
};
