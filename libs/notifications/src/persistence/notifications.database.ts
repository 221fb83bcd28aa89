import type { ModuleDatabaseDefinition } from '@app/platform';
import { CreateNotifications1732406600000 } from './migrations/1732406600000-create-notifications';
import { CreateChannelsAndPreferences1732406900000 } from './migrations/1732406900000-create-channels-and-preferences';
import { KeepNotificationsPublishedOutboxEvents1764633600000 } from './migrations/1764633600000-keep-published-outbox-events';
import { NotificationsErasureSupport1764720000000 } from './migrations/1764720000000-erasure-support';
import { PartitionNotificationsByMonth1764806400000 } from './migrations/1764806400000-partition-notifications-by-month';
import { DeliveryTraceContext1764900000000 } from './migrations/1764900000000-delivery-trace-context';
import { NotificationsWakeRelayInProcess1764910000000 } from './migrations/1764910000000-wake-relay-in-process';
import { NotificationEntity } from './notification.entity';

/** The notifications module's tables (schema `notifications`) and its migration history. */
export const notificationsDatabase: ModuleDatabaseDefinition = {
  module: 'notifications',
  entities: [NotificationEntity],
  migrations: [
    CreateNotifications1732406600000,
    CreateChannelsAndPreferences1732406900000,
    KeepNotificationsPublishedOutboxEvents1764633600000,
    NotificationsErasureSupport1764720000000,
    PartitionNotificationsByMonth1764806400000,
    DeliveryTraceContext1764900000000,
    NotificationsWakeRelayInProcess1764910000000,
  ],
  // Every table has user_id (docs/scaling.md, "notifications"); erased_users, recipients and
  // preferences are keyed by it alone, notifications and deliveries by (id, month) + user_id.
  distribution: {},
};
