import { randomUUID } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { AppConfig } from '../config/app-config';
import { mountBullBoard } from './bull-board';
import { RequestContextStore } from '../logging/request-context';
import { MetricsService } from '../metrics/metrics.service';

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Fastify rather than Express: a faster router and JSON path, which the benchmark's
 * "within 0.9x of plain Fastify" goal needs. Request ids: the client's `X-Request-Id`
 * when it is a safe token, a UUID otherwise.
 */
export function createHttpAdapter(config: AppConfig): FastifyAdapter {
  return new FastifyAdapter({
    bodyLimit: config.env.BODY_LIMIT_BYTES,
    logger: false,
    trustProxy: true,
    requestIdHeader: false,
    genReqId: (request: { headers: Record<string, string | string[] | undefined> }) => {
      const header = request.headers['x-request-id'];
      return typeof header === 'string' && SAFE_REQUEST_ID.test(header) ? header : randomUUID();
    },
    // Lets SIGTERM finish in-flight requests while idle keep-alive sockets close at once.
    forceCloseConnections: 'idle',
  });
}

/** Hooks, docs, the queue board and limits shared by every application that serves HTTP. */
export function configureHttpApp(app: NestFastifyApplication, config: AppConfig, logger: Logger, title: string): void {
  const fastify = app.getHttpAdapter().getInstance();
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    RequestContextStore.run({ requestId: request.id }, done);
  });
  const metrics = app.get(MetricsService);
  fastify.addHook('onResponse', (request: FastifyRequest, reply, done) => {
    // The route pattern, never the raw URL: ids in paths must not explode label cardinality.
    metrics.recordRequest(request.method, request.routeOptions?.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
    const level = reply.statusCode >= 500 ? 'error' : 'info';
    if (logger.isLevelEnabled(level)) {
      logger[level](
        {
          requestId: request.id,
          method: request.method,
          route: request.routeOptions?.url ?? 'unmatched',
          status: reply.statusCode,
          durationMs: Math.round(reply.elapsedTime * 10) / 10,
        },
        'request completed',
      );
    }
    done();
  });
  setUpOpenApi(app, title);
  if (config.env.BULL_BOARD_ENABLED) mountBullBoard(app, config, title);
}

function setUpOpenApi(app: INestApplication, title: string): void {
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle(title)
      .setDescription('Errors are RFC 9457 application/problem+json. Every response carries X-Request-Id.')
      .setVersion('1')
      .addBearerAuth()
      .build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
}
