/**
 * @app/platform: cross-cutting infrastructure only (config, database ownership, queues,
 * outbox/inbox, Redis, health, logging, errors, HTTP plumbing). It depends on no domain
 * module; domain modules and apps depend on it through this entry point only.
 */
export * from './auth/access-token';
export * from './auth/auth.decorators';
export * from './auth/auth.errors';
export * from './auth/auth.guard';
export * from './auth/session-revocation.store';
export * from './auth/token-keys';
export * from './cache/cache-aside';
export * from './bootstrap/http-service';
export * from './config/app-config';
export * from './config/config.module';
export * from './database/module-database';
export * from './database/module-database.module';
export * from './database/outbox-inbox.sql';
export * from './database/after-commit';
export * from './database/sql';
export * from './database/database-bootstrap';
export * from './errors/domain-error';
export * from './flags';
export * from './health/health.module';
export * from './http/event-stream';
export * from './http/http-app';
export * from './http/load-shedding';
export * from './http/keyset-cursor';
export * from './http/problem-details.filter';
export * from './http/client-address';
export * from './http/global-throttler.guard';
export * from './http/redis-throttler.storage';
export * from './http/schema-validation';
export * from './lifecycle/shutdown.state';
export * from './logging/logger';
export * from './logging/logging.module';
export * from './logging/request-context';
export * from './messaging/claim-enqueue-mark';
export * from './messaging/drain-loop';
export * from './messaging/event-operations';
export * from './messaging/event-path-erasure';
export * from './messaging/erasure-work';
export * from './messaging/queued-event-removal';
export * from './messaging/inbox.consumer';
export * from './metrics/metrics.service';
export * from './messaging/integration-event';
export * from './messaging/messaging.registry';
export * from './messaging/module-manifest';
export * from './messaging/module-messaging';
export * from './messaging/outbox.publisher';
export * from './messaging/outbox.relay';
export * from './messaging/processor-ownership';
export * from './messaging/queue.factory';
export * from './platform.module';
export * from './redis/redis-connection';
export * from './redis/redis.module';
export * from './redis/redis-pubsub';
export * from './resilience/circuit-breaker';
