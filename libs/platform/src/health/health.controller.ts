import { Controller, Get, Inject, Res, ServiceUnavailableException } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { ApiExcludeController } from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';
import { Public } from '../auth/auth.decorators';
import { ShedPriority } from '../http/load-shedding';
import {
  HealthCheck,
  HealthCheckService,
  TypeOrmHealthIndicator,
  type HealthIndicatorFunction,
} from '@nestjs/terminus';
import { getDataSourceToken } from '@nestjs/typeorm';
import type { FastifyReply } from 'fastify';
import type Redis from 'ioredis';
import type { DataSource } from 'typeorm';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig } from '../config/app-config';
import { ShutdownState } from '../lifecycle/shutdown.state';
import { REDIS_CLIENT } from '../redis/redis.module';
import { withTimeout } from '../redis/redis-connection';

const CHECK_TIMEOUT_MS = 1500;

@ApiExcludeController()
@Public()
@SkipThrottle()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly typeorm: TypeOrmHealthIndicator,
    private readonly moduleRef: ModuleRef,
    private readonly shutdown: ShutdownState,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
  ) {}

  /** Liveness: the process answers. Never checks dependencies (a restart would not fix them). */
  @Get('live')
  @ShedPriority('critical')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /**
   * Readiness: can this instance serve? Booted, not draining, and every enabled module's
   * own connection (its role) answers. Redis is reported but does not make the instance
   * unready: the API keeps taking writes without it (events wait in the outbox), and
   * since every replica shares one Redis, failing readiness on it would empty the load
   * balancer at once. Redis down answers 200 with `status: "degraded"` and the Redis
   * detail under `error` (and `dependency_up{dependency="redis"} 0` in /metrics).
   * Each check has its own timeout and they run in parallel (~1.5 s at worst).
   */
  @Get('ready')
  @ShedPriority('critical')
  @HealthCheck()
  async ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<unknown> {
    if (this.shutdown.isDraining) {
      void reply.status(503);
      return { status: 'error', error: { shutdown: { status: 'down', message: 'draining' } } };
    }
    const checks: HealthIndicatorFunction[] = [...this.config.enabledModules].map((module) => () => {
      const connection = this.moduleRef.get<DataSource>(getDataSourceToken(module), { strict: false });
      return this.typeorm.pingCheck(`postgres:${module}`, { connection, timeout: CHECK_TIMEOUT_MS });
    });
    const [databases, redis] = await Promise.all([
      this.health.check(checks).then(
        (report) => ({ ok: true as const, report: report as HealthReport }),
        (error: unknown) => ({ ok: false as const, error }),
      ),
      this.redisStatus(),
    ]);
    const redisEntry = { redis };
    if (!databases.ok) {
      // Terminus reports "down" as a 503 exception; answer with its report as the body
      // (what probes and operators read) rather than a generic problem document.
      if (databases.error instanceof ServiceUnavailableException) {
        const report = databases.error.getResponse() as HealthReport;
        void reply.status(503);
        return withRedis(report, redisEntry, redis.status === 'up');
      }
      throw databases.error;
    }
    const report = withRedis(databases.report, redisEntry, redis.status === 'up');
    return redis.status === 'up' ? report : { ...report, status: 'degraded' };
  }

  private async redisStatus(): Promise<{ status: 'up' | 'down'; message?: string }> {
    try {
      await withTimeout(this.redis.ping(), CHECK_TIMEOUT_MS, 'redis ping');
      return { status: 'up' };
    } catch (error) {
      return { status: 'down', message: error instanceof Error ? error.message : 'unreachable' };
    }
  }
}

interface HealthReport {
  status: string;
  info?: Record<string, unknown>;
  error?: Record<string, unknown>;
  details: Record<string, unknown>;
}

/** Adds the Redis entry where Terminus would put it: `info` when up, `error` when down. */
function withRedis(report: HealthReport, redis: Record<string, unknown>, up: boolean): HealthReport {
  return {
    ...report,
    info: up ? { ...report.info, ...redis } : report.info,
    error: up ? report.error : { ...report.error, ...redis },
    details: { ...report.details, ...redis },
  };
}
