import { moduleConfig, type AppConfig } from '@app/platform';
import { notificationsManifest } from './module.manifest';

/** The notifications module's own variables, declared and validated with its manifest. */
export const notificationsSettings = (config: AppConfig) => moduleConfig(config, notificationsManifest);
