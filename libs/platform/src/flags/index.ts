export * from './flag-admin';
export * from './flag-declarations';
export * from './flag-rules';
export * from './flags.service';
export * from './platform-database';
export * from './postgres-flag.provider';
