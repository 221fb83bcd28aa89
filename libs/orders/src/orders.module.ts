import { Module } from '@nestjs/common';
import { moduleDatabaseImports, moduleMessagingProviders } from '@app/platform';
import { ordersDatabase } from './persistence/orders.database';

/** Catalogue, stock and orders. The schema, role and messaging exist; the API comes next. */
@Module({
  imports: [...moduleDatabaseImports(ordersDatabase)],
  providers: [...moduleMessagingProviders({ module: 'orders' })],
})
export class OrdersModule {}
