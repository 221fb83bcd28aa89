import { randomUUID } from 'node:crypto';
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { INestApplication } from '@nestjs/common';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import { trace } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { trustProxyOption, type AppConfig } from '../config/app-config';
import {
  frameworkErrorProblem,
  FrameworkRequestError,
  internalErrorProblem,
  PROBLEM_CONTENT_TYPE,
  problemTitle,
  problemTypeFor,
  sendProblem,
} from './problem-details.filter';
import { mountBullBoard } from './bull-board';
import { finishOpenApiDocument } from './openapi-document';
import { installLoadShedding, wasShed } from './load-shedding';
import { RequestContextStore } from '../logging/request-context';
import { ReadReplicas } from '../database/read-replica';
import { MetricsService } from '../metrics/metrics.service';
import { isTracingOn } from '../tracing/tracing.setup';

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const FORM = 'application/x-www-form-urlencoded';

/**
 * Nest's Fastify adapter with every answer Fastify gives by itself turned into
 * problem+json: Nest's error handler sees Fastify's own error codes (it would keep only
 * the status and Fastify's wording), and a path that exists under other methods answers
 * 405 with `Allow` instead of Nest's 404.
 */
class ProblemFastifyAdapter extends FastifyAdapter {
  /** Every registered route (pattern → methods), for 405 and its `Allow` header. */
  private readonly routes: { pattern: RegExp; methods: Set<string> }[] = [];

  constructor(options: FastifyServerOptions) {
    super(options);
    this.getInstance().addHook('onRoute', (route) => {
      const methods = new Set((Array.isArray(route.method) ? route.method : [route.method]).map((m) => m.toUpperCase()));
      if (methods.has('GET')) methods.add('HEAD'); // exposeHeadRoutes
      this.routes.push({ pattern: routePattern(route.url ?? route.path), methods });
    });
  }

  /**
   * JSON bodies only: Nest also registers a form (urlencoded) parser, which would let a
   * cross-site form post reach JSON routes without a preflight. (The queue board's login
   * form registers its own parser in its own scope.)
   */
  override registerParserMiddleware(prefix?: string, rawBody?: boolean): void {
    super.registerParserMiddleware(prefix, rawBody);
    const instance = this.getInstance();
    if (instance.hasContentTypeParser(FORM)) instance.removeContentTypeParser(FORM);
  }

  override setErrorHandler(handler: Parameters<FastifyAdapter['setErrorHandler']>[0]) {
    const wrapped = function (this: FastifyInstance, error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
      const status = error?.statusCode;
      const passOn =
        typeof error?.code === 'string' && error.code.startsWith('FST_') && typeof status === 'number' && status >= 400 && status < 500
          ? new FrameworkRequestError(error.code, status, error.message)
          : error;
      return (handler as (this: FastifyInstance, e: unknown, q: FastifyRequest, r: FastifyReply) => unknown).call(this, passOn, request, reply);
    };
    return super.setErrorHandler(wrapped as Parameters<FastifyAdapter['setErrorHandler']>[0]);
  }

  override setNotFoundHandler(handler: Parameters<FastifyAdapter['setNotFoundHandler']>[0]) {
    const allowedMethods = (path: string, method: string): string[] => {
      const allowed = new Set<string>();
      for (const route of this.routes) if (route.pattern.test(path)) for (const m of route.methods) allowed.add(m);
      allowed.delete(method.toUpperCase());
      return [...allowed].sort();
    };
    return super.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) => {
      const path = request.url.split('?')[0];
      const allow = allowedMethods(path, request.method);
      if (allow.length === 0) return (handler as (q: FastifyRequest, r: FastifyReply) => unknown)(request, reply);
      void reply.header('allow', allow.join(', '));
      sendProblem(reply, {
        type: 'about:blank',
        title: problemTitle(405),
        status: 405,
        detail: `${request.method} is not allowed on ${path}; see the Allow header.`,
        instance: path,
      });
      return reply;
    });
  }
}

/** `/v1/orders/:id/confirm` → a RegExp for concrete paths (`:param` one segment, `*` the rest). */
function routePattern(url: string): RegExp {
  let source = '';
  for (let i = 0; i < url.length; i++) {
    const c = url[i];
    if (c === ':' && url[i + 1] === ':') {
      source += ':';
      i++;
    } else if (c === ':') {
      // A parameter: its name, then an optional (regex); both match one segment here.
      while (i + 1 < url.length && /[A-Za-z0-9_]/.test(url[i + 1])) i++;
      if (url[i + 1] === '(') {
        let depth = 0;
        do {
          i++;
          if (url[i] === '(') depth++;
          else if (url[i] === ')') depth--;
        } while (i < url.length && depth > 0);
      }
      source += '[^/]+';
    } else if (c === '*') {
      source += '.*';
    } else {
      source += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}$`);
}

/**
 * A request Node's HTTP parser refused (a malformed header or Content-Length, headers too
 * large, a timeout): no Fastify request exists, so the answer is written on the socket,
 * still as problem+json with a (new) request id.
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, detail] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'REQUEST.TIMEOUT', 'The request was not received in time.']
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'REQUEST.HEADERS_TOO_LARGE', 'The request headers exceed the size limit.']
        : error.code === 'HPE_INVALID_CONTENT_LENGTH' || error.code === 'HPE_UNEXPECTED_CONTENT_LENGTH'
          ? [400, 'REQUEST.INVALID_CONTENT_LENGTH', 'The Content-Length header is malformed.']
          : [400, 'REQUEST.MALFORMED', 'The request is not valid HTTP/1.1.'];
  const body = JSON.stringify({ type: problemTypeFor(code), title: problemTitle(status), status, detail, code });
  // A response already under way on this connection cannot be followed by another.
  const current = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && !current?.headersSent) {
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `X-Request-Id: ${randomUUID()}\r\nConnection: close\r\n\r\n${body}`,
    );
  } else {
    socket.destroy();
  }
}

/**
 * Fastify rather than Express: a faster router and JSON path, which the benchmark's
 * "within 0.9x of plain Fastify" goal needs. Request ids: the client's `X-Request-Id`
 * when it is a safe token, a UUID otherwise. `request.ip` honours X-Forwarded-For only as
 * far as TRUST_PROXY says (off by default: otherwise any client picks its own address
 * for the rate limits). Every answer is problem+json with X-Request-Id, also the ones
 * Fastify and Node give before a route runs (router, parser, protocol errors).
 */
export function createHttpAdapter(config: AppConfig): FastifyAdapter {
  const adapter = new ProblemFastifyAdapter({
    bodyLimit: config.env.BODY_LIMIT_BYTES,
    logger: false,
    trustProxy: trustProxyOption(config.env.TRUST_PROXY),
    requestIdHeader: false,
    genReqId: (request: { headers: Record<string, string | string[] | undefined> }) => {
      const header = request.headers['x-request-id'];
      return typeof header === 'string' && SAFE_REQUEST_ID.test(header) ? header : randomUUID();
    },
    // Routing errors (a path segment over maxParamLength, a bad URL) skip every hook.
    frameworkErrors: (error, request, reply) => {
      const instance = request.url?.split('?')[0];
      void reply.header('x-request-id', request.id);
      sendProblem(reply as FastifyReply, frameworkErrorProblem(error, instance) ?? internalErrorProblem(instance));
    },
    clientErrorHandler: answerClientError,
    // Lets SIGTERM finish in-flight requests while idle keep-alive sockets close at once.
    forceCloseConnections: 'idle',
    // Fastify's requestTimeout, and `http` (Node's server options, typed only on fastify()).
    ...(requestTimeoutOptions(config.env.HTTP_REQUEST_TIMEOUT_MS) as Pick<FastifyServerOptions, 'requestTimeout'>),
  });
  // Bodies are JSON (415 otherwise); Fastify's text/plain parser would let a plain string
  // reach validation, and text/plain is what a cross-site form can send without a preflight.
  adapter.getInstance().removeContentTypeParser('text/plain');
  return adapter;
}

/**
 * A client that sends its request slowly (or never finishes its headers or body) holds a
 * socket and memory: Node cuts it after HTTP_REQUEST_TIMEOUT_MS with a 408 problem
 * (answerClientError), other requests unaffected. Node checks on an interval (30 s by
 * default), shortened here so the limit holds to within a quarter of itself.
 */
export function requestTimeoutOptions(timeoutMs: number): { requestTimeout: number; http: ServerOptions } {
  return {
    requestTimeout: timeoutMs,
    http: {
      requestTimeout: timeoutMs,
      headersTimeout: Math.min(60_000, timeoutMs),
      connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(timeoutMs / 4))),
    },
  };
}

/** Arrived through the internal listener (INTERNAL_PORT), not the public one. */
const INTERNAL_REQUEST = Symbol('internal-request');
const INTERNAL_SERVER = Symbol('internal-server');

/** Routes served on INTERNAL_PORT only: Prometheus and the OpenAPI document/UI. */
export function isInternalRoute(routeUrl: string | undefined): boolean {
  return routeUrl !== undefined && (routeUrl === '/metrics' || routeUrl === '/docs' || routeUrl.startsWith('/docs/') || routeUrl.startsWith('/docs-'));
}

/**
 * Starts the internal listener (INTERNAL_PORT on HOST, or `port`/`host` given here, e.g.
 * port 0 in tests) and resolves with its port; it closes with the app. A port in use
 * fails the start, like the public port.
 */
export async function listenInternal(app: NestFastifyApplication, config: AppConfig, port = config.env.INTERNAL_PORT, host = config.env.HOST): Promise<number> {
  const server = (app.getHttpAdapter().getInstance() as unknown as { [INTERNAL_SERVER]?: Server })[INTERNAL_SERVER];
  if (!server) throw new Error('configureHttpApp() has not run on this app');
  if (!server.listening) {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }
  return (server.address() as AddressInfo).port;
}

/**
 * /metrics and /docs on a second listener (INTERNAL_PORT), for Prometheus and operators
 * only; the public port answers 404 for them, as for any unknown route, and the internal
 * one serves nothing else. Both feed the same Fastify router, so the routes, hooks and
 * error handling are the same. listenInternal() starts it; it closes with the app.
 */
function serveOperationalRoutesInternally(app: NestFastifyApplication, config: AppConfig): void {
  const fastify = app.getHttpAdapter().getInstance();
  const internal = createServer(requestTimeoutOptions(config.env.HTTP_REQUEST_TIMEOUT_MS).http, (req: IncomingMessage, res: ServerResponse) => {
    (req as IncomingMessage & { [INTERNAL_REQUEST]?: true })[INTERNAL_REQUEST] = true;
    fastify.routing(req, res);
  });
  internal.requestTimeout = config.env.HTTP_REQUEST_TIMEOUT_MS;
  internal.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => answerClientError(error, socket));
  (fastify as unknown as { [INTERNAL_SERVER]: Server })[INTERNAL_SERVER] = internal;
  fastify.addHook('onRequest', (request, reply, done) => {
    const viaInternal = (request.raw as IncomingMessage & { [INTERNAL_REQUEST]?: true })[INTERNAL_REQUEST] === true;
    if (viaInternal === isInternalRoute(request.routeOptions?.url)) return done();
    const instance = request.url.split('?')[0];
    sendProblem(reply, { type: 'about:blank', title: problemTitle(404), status: 404, detail: `No route for ${request.method} ${instance}.`, instance });
    return reply;
  });
  fastify.addHook('onClose', async () => {
    if (!internal.listening) return;
    internal.closeAllConnections();
    await new Promise<void>((resolve) => internal.close(() => resolve()));
  });
}

/**
 * The HTTP instrumentation sees only the raw request: the route pattern, known to Fastify,
 * names the server span (`POST /v1/users`) and sets `http.route`, never the URL with its ids.
 */
function nameServerSpansByRoute(fastify: FastifyInstance): void {
  fastify.addHook('onRequest', (request, _reply, done) => {
    const route = request.routeOptions?.url;
    const span = trace.getActiveSpan();
    if (route && span) span.updateName(`${request.method} ${route}`).setAttribute('http.route', route);
    done();
  });
}

/** Hooks, docs, the queue board and limits shared by every application that serves HTTP. */
export function configureHttpApp(app: NestFastifyApplication, config: AppConfig, logger: Logger, title: string): void {
  const fastify = app.getHttpAdapter().getInstance();
  serveOperationalRoutesInternally(app, config);
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    RequestContextStore.run({ requestId: request.id }, done);
  });
  if (isTracingOn()) nameServerSpansByRoute(fastify);
  installLoadShedding(app, config, logger); // 503 under overload, before auth and rate limits (load-shedding.ts)
  const metrics = app.get(MetricsService);
  fastify.addHook('onResponse', (request: FastifyRequest, reply, done) => {
    // The route pattern, never the raw URL: ids in paths must not explode label cardinality.
    metrics.recordRequest(request.method, request.routeOptions?.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
    // A shed request is expected under overload: load-shedding.ts logs one summary a second instead.
    const level = wasShed(request) ? 'debug' : reply.statusCode >= 500 ? 'error' : 'info';
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
  rememberClientWrites(app);
  setUpOpenApi(app, title, config);
  if (config.env.BULL_BOARD_ENABLED) mountBullBoard(app, config, title);
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Read-your-writes with read replicas (docs/architecture.md, "Read replicas"): once a
 * signed-in client's state-changing request has been handled (its transaction committed),
 * and before the answer leaves, the primary's WAL position is remembered for that client,
 * so its next lag-tolerant reads wait for a replica that has replayed it. Failed requests
 * count too: some commit before they fail. Nothing happens without a replica.
 */
function rememberClientWrites(app: NestFastifyApplication): void {
  const replicas = app.get(ReadReplicas);
  if (!replicas.enabled) return;
  app.getHttpAdapter().getInstance().addHook('onSend', async (request: FastifyRequest, _reply, payload) => {
    const userId = (request as FastifyRequest & { user?: { userId?: string } }).user?.userId;
    if (userId && !SAFE_METHODS.has(request.method)) await replicas.recordWrite(userId);
    return payload;
  });
}

/**
 * The routes of /docs are registered now; the document itself is built on the first
 * request for it (SwaggerModule takes a factory and keeps its result): scanning every
 * controller is start-up time that only operators reading /docs need (README, "Design
 * notes", "Start-up time").
 */
function setUpOpenApi(app: INestApplication, title: string, config: AppConfig): void {
  SwaggerModule.setup('docs', app, () => buildOpenApiDocument(app, title, config), { jsonDocumentUrl: 'docs-json' });
}

function buildOpenApiDocument(app: INestApplication, title: string, config: AppConfig): OpenAPIObject {
  const generated = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle(title)
      .setDescription('Errors are RFC 9457 application/problem+json. Every response carries X-Request-Id.')
      .setVersion('1')
      .addBearerAuth()
      .build(),
  );
  // Valid OpenAPI 3.1 under Redocly's recommended rules (openapi-document.ts, docs/api.md).
  return finishOpenApiDocument(generated, { port: config.env.PORT });
}
