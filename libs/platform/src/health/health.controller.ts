import { Controller, Get, Inject, Res, ServiceUnavailableException } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { ApiExcludeController } from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';
import { Public } from '../auth/auth.decorators';
import {
  HealthCheck,
  HealthCheckService,
  HealthIndicatorService,
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
    private readonly indicators: HealthIndicatorService,
    private readonly moduleRef: ModuleRef,
    private readonly shutdown: ShutdownState,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
  ) {}

  /** Liveness: the process answers. Never checks dependencies (a restart would not fix them). */
  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /**
   * Readiness: every enabled module's own connection (its role) and Redis answer. Each
   * check has its own timeout and they run in parallel, so the answer comes within ~1.5 s
   * even when a dependency hangs. Fails at once while the instance is draining.
   */
  @Get('ready')
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
    checks.push(async () => {
      const check = this.indicators.check('redis');
      try {
        await withTimeout(this.redis.ping(), CHECK_TIMEOUT_MS, 'redis ping');
        return check.up();
      } catch (error) {
        return check.down({ message: error instanceof Error ? error.message : 'unreachable' });
      }
    });
    try {
      return await this.health.check(checks);
    } catch (error) {
      // Terminus reports "down" as a 503 exception; answer with its report as the body
      // (what probes and operators read) rather than a generic problem document.
      if (error instanceof ServiceUnavailableException) {
        void reply.status(503);
        return error.getResponse();
      }
      throw error;
    }
  }
}
