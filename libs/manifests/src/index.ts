/**
 * @app/manifests: every domain module's manifest, compiled into every deployable. The
 * relay of a module that runs here routes its events to consumers that may run anywhere
 * else (an extracted service, a service not deployed yet), so each process must know all
 * declarations, not only those of the modules it runs (docs/architecture.md, "Events and
 * routing"). Order is the boot order.
 */
import type { ModuleManifest } from '@app/platform';
import { notificationsManifest } from '@app/notifications/manifest';
import { ordersManifest } from '@app/orders/manifest';
import { usersManifest } from '@app/users/manifest';

export const MODULE_MANIFESTS: readonly ModuleManifest[] = [usersManifest, ordersManifest, notificationsManifest];
