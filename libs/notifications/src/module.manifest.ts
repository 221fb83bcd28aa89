import type { ModuleManifest } from '@app/platform';
import { OrderEvents } from '@app/orders/contracts';
import { UserEvents } from '@app/users/contracts';

/**
 * The notifications module's declarations: read by the event routing of every deployable
 * and by the boundary checks (docs/architecture.md, "Module manifests").
 */
export const notificationsManifest = {
  name: 'notifications',
  schema: 'notifications',
  mayUse: ['users', 'orders'],
  // notifications.queues.ts: delivery channels and the retention job.
  queues: ['notifications.email', 'notifications.webhook', 'notifications.retention'],
  events: {
    publishes: [],
    consumes: [UserEvents.registered, UserEvents.deleted, ...Object.values(OrderEvents)],
  },
} as const satisfies ModuleManifest;
