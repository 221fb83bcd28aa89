import './compile-cache';
import './tracing';
import 'reflect-metadata';
import { startHttpService } from '@app/platform';
import { MODULE_MANIFESTS } from '@app/manifests';
import { NotificationsModule, notificationsDatabase } from '@app/notifications';

/**
 * The notifications module as its own service: its own HTTP port (/v1/notifications/*),
 * its own inbox consumers and its own database role. The module's code is the same one
 * the monolith runs; only the composition differs. Run the API beside it with
 * MODULES_ENABLED=users,orders. See docs/extracting-a-module.md.
 */
startHttpService({
  name: 'notifications-service',
  title: 'Notifications service',
  modules: () => [NotificationsModule],
  databases: () => [notificationsDatabase],
  // Every module's declarations, not only its own: see libs/manifests.
  manifests: MODULE_MANIFESTS,
  envOverrides: { MODULES_ENABLED: 'notifications' },
});
