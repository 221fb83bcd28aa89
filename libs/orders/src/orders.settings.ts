import { moduleConfig, type AppConfig } from '@app/platform';
import { ordersManifest } from './module.manifest';

/** The orders module's own variables, declared and validated with its manifest. */
export const ordersSettings = (config: AppConfig) => moduleConfig(config, ordersManifest);
