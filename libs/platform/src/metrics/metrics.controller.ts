import { Controller, Get, Res, type OnApplicationBootstrap } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';
import type { FastifyReply } from 'fastify';
import { Public } from '../auth/auth.decorators';
import { ShedPriority } from '../http/load-shedding';
import { MetricsService } from './metrics.service';

/**
 * GET /metrics, Prometheus text. Public like the health probes: expose it on the
 * internal network only (the nginx config and the Kubernetes Service keep it inside).
 */
@ApiExcludeController()
@Public()
@SkipThrottle()
@Controller('metrics')
export class MetricsController implements OnApplicationBootstrap {
  constructor(private readonly metrics: MetricsService) {}

  onApplicationBootstrap(): void {
    this.metrics.watchOwnedQueues();
  }

  @Get()
  @ShedPriority('critical') // the overload must stay observable
  async scrape(@Res() reply: FastifyReply): Promise<void> {
    const body = await this.metrics.scrape();
    await reply.header('content-type', this.metrics.registry.contentType).send(body);
  }
}
