import { BullModule } from '@nestjs/bull';
import { Module } from '@nestjs/common';
import { moduleDatabaseImports, moduleMessagingProviders } from '@app/platform';
import { CatalogueService } from './application/catalogue.service';
import { DemoCatalogueSeeder } from './application/demo-catalogue';
import { IdempotentOrderPlacement } from './application/idempotent-order-placement';
import { ORDER_EXPIRY_QUEUE } from './orders.queues';
import { OrderExpiryProcessor } from './workers/order-expiry.processor';
import { OrderExpiryScheduler } from './workers/order-expiry.scheduler';
import { OrderExpirySweeper } from './workers/order-expiry.sweeper';
import { OrderLifecycleService } from './application/order-lifecycle.service';
import { PlaceOrderService } from './application/place-order.service';
import { CancelOrdersOnUserDeletedHandler } from './consumers/cancel-orders-on-user-deleted.handler';
import { OrdersController } from './http/orders.controller';
import { ProductsController } from './http/products.controller';
import { ordersDatabase } from './persistence/orders.database';
import { ordersManifest } from './module.manifest';
import { ordersRetentionRules } from './persistence/orders.retention';

@Module({
  imports: [...moduleDatabaseImports(ordersDatabase), BullModule.registerQueue({ name: ORDER_EXPIRY_QUEUE })],
  controllers: [ProductsController, OrdersController],
  providers: [
    CatalogueService,
    DemoCatalogueSeeder,
    PlaceOrderService,
    IdempotentOrderPlacement,
    OrderLifecycleService,
    OrderExpiryScheduler,
    OrderExpiryProcessor,
    OrderExpirySweeper,
    ...moduleMessagingProviders({ manifest: ordersManifest, handlers: [CancelOrdersOnUserDeletedHandler], retention: ordersRetentionRules }),
  ],
  exports: [DemoCatalogueSeeder, OrderExpirySweeper],
})
export class OrdersModule {}
