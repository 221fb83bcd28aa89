import { Module } from '@nestjs/common';
import { moduleDatabaseImports, moduleMessagingProviders } from '@app/platform';
import { DeliveryDispatcher } from './application/delivery-dispatcher';
import { ErasurePurge } from './application/erasure-purge';
import { LiveNotifications } from './application/live-notifications';
import { NotificationWriter } from './application/notification-writer';
import { NotificationsService } from './application/notifications.service';
import { PreferencesService } from './application/preferences.service';
import { EmailSender } from './channels/email.sender';
import { WebhookSender } from './channels/webhook.sender';
import { DeliveryProcessor } from './workers/delivery.processor';
import { DeliverySwitches } from './workers/delivery-switches';
import { EraseOnUserDeletedHandler } from './consumers/erase-on-user-deleted.handler';
import { NotifyOnOrderEventHandler } from './consumers/notify-on-order-event.handlers';
import { RetentionJob } from './workers/retention.job';
import { PartitionMaintenance } from './workers/partition-maintenance';
import { WelcomeOnUserRegisteredHandler } from './consumers/welcome-on-user-registered.handler';
import { NotificationsController } from './http/notifications.controller';
import { NotificationsWorkers } from './workers/notifications.workers';
import { notificationsDatabase } from './persistence/notifications.database';
import { notificationsManifest } from './module.manifest';

@Module({
  imports: [...moduleDatabaseImports(notificationsDatabase)],
  controllers: [NotificationsController],
  providers: [
    NotificationsService,
    PreferencesService,
    NotificationWriter,
    LiveNotifications,
    DeliveryDispatcher,
    DeliveryProcessor,
    EmailSender,
    WebhookSender,
    RetentionJob,
    PartitionMaintenance,
    ErasurePurge,
    NotificationsWorkers,
    DeliverySwitches,
    ...moduleMessagingProviders({
      manifest: notificationsManifest,
      handlers: [WelcomeOnUserRegisteredHandler, EraseOnUserDeletedHandler, NotifyOnOrderEventHandler],
    }),
  ],
})
export class NotificationsModule {}
