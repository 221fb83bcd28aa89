import { Global, Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import { BullModule } from '@nestjs/bull';
import type { Logger } from 'pino';
import type { AppConfig } from './config/app-config';
import { ConfigModule } from './config/config.module';
import { AuthGuard } from './auth/auth.guard';
import { SessionRevocationStore } from './auth/session-revocation.store';
import { CacheAside } from './cache/cache-aside';
import { ReadReplicas } from './database/read-replica';
import { EventStreams } from './http/event-stream';
import { declaredFlags } from './flags/flag-declarations';
import { FLAG_DECLARATIONS, Flags } from './flags/flags.service';
import { HealthModule } from './health/health.module';
import { MetricsController } from './metrics/metrics.controller';
import { MetricsService } from './metrics/metrics.service';
import { GlobalThrottlerGuard } from './http/global-throttler.guard';
import { RedisThrottlerStorage } from './http/redis-throttler.storage';
import { ProblemDetailsFilter } from './http/problem-details.filter';
import { ShutdownState } from './lifecycle/shutdown.state';
import { LoggingModule } from './logging/logging.module';
import { MessagingRegistry } from './messaging/messaging.registry';
import { QueueFactory } from './messaging/queue.factory';
import { EventRouting, manifestProblems, type ModuleManifest } from './messaging/module-manifest';
import { RedisModule } from './redis/redis.module';
import { RedisPubSub } from './redis/redis-pubsub';
import { CircuitBreakers } from './resilience/circuit-breaker';
import { RetentionStats } from './maintenance/retention';

/** Shared by every module of the application (the platform core is global). */
const CORE_PROVIDERS = [
  QueueFactory,
  MessagingRegistry,
  ShutdownState,
  SessionRevocationStore,
  CacheAside,
  RedisThrottlerStorage,
  RedisPubSub,
  CircuitBreakers,
  RetentionStats,
  EventStreams,
  MetricsService,
  ReadReplicas,
];

@Global()
@Module({
  imports: [RedisModule],
  providers: CORE_PROVIDERS,
  controllers: [MetricsController],
  exports: CORE_PROVIDERS,
})
class PlatformCoreModule {}

/**
 * Cross-cutting infrastructure for an application: validated config, logging, Redis,
 * queues, the messaging backbone, health and the problem+json error filter. Domain
 * modules are imported next to it by the application, never by the platform.
 */
@Module({})
export class PlatformModule {
  /**
   * `manifests`: every domain module's manifest (`@app/manifests`), including those of
   * modules this process does not run: the relays route events to all declared consumers.
   */
  static forRoot(config: AppConfig, logger: Logger, manifests: readonly ModuleManifest[]): DynamicModule {
    for (const problem of manifestProblems(manifests)) logger.error({ problem }, 'module manifests disagree');
    logAuthKeys(config, logger);
    return {
      global: true,
      module: PlatformModule,
      imports: [
        ConfigModule.forRoot(config),
        LoggingModule.forRoot(logger),
        PlatformCoreModule,
        // Module-owned queues registered with @nestjs/bull share the factory's options.
        BullModule.forRootAsync({
          inject: [QueueFactory],
          useFactory: (queues: QueueFactory) => queues.queueOptions(),
        }),
        HealthModule,
        // One global limit per client address, counted in Redis so every instance shares it.
        ThrottlerModule.forRootAsync({
          inject: [RedisThrottlerStorage],
          useFactory: (storage: RedisThrottlerStorage) => ({
            // 'default' keeps the standard header names (Retry-After, X-RateLimit-*).
            throttlers: [{ name: 'default', ttl: 60_000, limit: config.env.RATE_LIMIT_PER_MINUTE }],
            // One counter per client for the whole API (not per route), no hashing per request.
            generateKey: (_context, tracker, name) => `${name}:${tracker}`,
            storage,
          }),
        }),
      ],
      providers: [
        { provide: EventRouting, useValue: new EventRouting(manifests) },
        // Runtime flags declared by the manifests, read through OpenFeature (flags/).
        { provide: FLAG_DECLARATIONS, useValue: declaredFlags(manifests) },
        Flags,
        { provide: APP_FILTER, useClass: ProblemDetailsFilter },
        // Order matters: limit first (cheap, by address), then authenticate.
        { provide: APP_GUARD, useClass: GlobalThrottlerGuard },
        { provide: APP_GUARD, useClass: AuthGuard },
      ],
      exports: [EventRouting, Flags],
    };
  }
}

/** What an operator must know about this process's access-token keys (never the keys). */
function logAuthKeys(config: AppConfig, logger: Logger): void {
  const { generated, ignored, publicKeys } = config.auth;
  if (generated) {
    logger.warn(
      { kid: generated.kid, variable: generated.variable },
      `no ${generated.variable}: signing access tokens with a key generated for this start only (development); tokens end with the process and other processes verify them only if given its public key (GET /.well-known/jwks.json)`,
    );
  }
  for (const variable of ignored) {
    logger.warn({ variable }, `${variable} is set but its module does not run in this process: not loaded; remove it from this process's environment`);
  }
  if (publicKeys.length === 0) logger.warn('no AUTH_PUBLIC_KEYS: every request with a bearer token will be refused');
}
