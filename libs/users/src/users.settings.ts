import { moduleConfig, type AppConfig } from '@app/platform';
import { usersManifest } from './module.manifest';

/** The users module's own variables, declared and validated with its manifest. */
export const usersSettings = (config: AppConfig) => moduleConfig(config, usersManifest);
