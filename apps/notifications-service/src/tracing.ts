import { startTracing } from '@app/platform/tracing';

// Imported first by main.ts: instrumentation must patch http, pg and ioredis before they load.
startTracing('notifications-service');
