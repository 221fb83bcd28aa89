import { startTracing } from '@app/platform/tracing';

// Imported by main.ts before anything it instruments: it must patch http, pg and ioredis before they load.
startTracing('api');
