import { ArgumentsHost, Catch, HttpException, HttpStatus, Inject, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { isDependencyUnavailable } from '../errors/dependency-unavailable';
import { KindedDomainError, ValidationFailedError, type DomainErrorKind, type FieldError } from '../errors/domain-error';
import { ROOT_LOGGER } from '../logging/logging.module';

/** RFC 9457 body. `code` is our stable machine-readable extension member. */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  code?: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

const STATUS_BY_KIND: Record<DomainErrorKind, number> = {
  validation: 400,
  unauthorized: 401,
  forbidden: 403,
  'not-found': 404,
  conflict: 409,
  unprocessable: 422,
  'too-many-requests': 429,
  'precondition-failed': 412,
  'precondition-required': 428,
};

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  408: 'Request Timeout',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  428: 'Precondition Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** The reason phrase of a status, as problem titles use it. */
export function problemTitle(status: number): string {
  return TITLES[status] ?? 'Error';
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

/** `ORDER.INSUFFICIENT_STOCK` → `/problems/order/insufficient-stock`. */
export function problemTypeFor(code: string): string {
  return '/problems/' + code.toLowerCase().replace(/\./g, '/').replace(/_/g, '-');
}

/** The problem document of a domain error (also used to store idempotent replies). */
export function domainErrorProblem(error: KindedDomainError, instance?: string): ProblemDetails {
  const status = STATUS_BY_KIND[error.kind];
  return {
    // Extension members first: they can never overwrite the standard ones.
    ...(error.details ?? {}),
    type: problemTypeFor(error.code),
    title: TITLES[status] ?? 'Error',
    status,
    detail: error.message,
    instance,
    code: error.code,
    ...(error instanceof ValidationFailedError ? { errors: error.errors } : {}),
  };
}

/** Errors Fastify raises before a handler runs (routing, body parsing, limits), mapped to safe text. */
const FASTIFY_ERRORS: Record<string, { status: number; code: string; detail: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'REQUEST.BODY_TOO_LARGE', detail: 'The request body exceeds the size limit.' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'REQUEST.UNSUPPORTED_MEDIA_TYPE', detail: 'Send the body as application/json.' },
  FST_ERR_CTP_INVALID_TYPE: { status: 415, code: 'REQUEST.UNSUPPORTED_MEDIA_TYPE', detail: 'Send the body as application/json.' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'REQUEST.INVALID_CONTENT_LENGTH', detail: 'The Content-Length header does not match the body.' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'REQUEST.EMPTY_BODY', detail: 'The JSON body is empty.' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'REQUEST.MALFORMED_JSON', detail: 'The body is not valid JSON.' },
  FST_ERR_MAX_PARAM_LENGTH: { status: 414, code: 'REQUEST.URI_TOO_LONG', detail: 'A path segment exceeds the length limit.' },
  FST_ERR_BAD_URL: { status: 400, code: 'REQUEST.BAD_URL', detail: 'The request path is not a valid URL.' },
};

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
}

/**
 * A client error Fastify raised (routing, body parsing), carried past Nest's own mapping
 * (which keeps only the status and Fastify's wording) so the filter sees Fastify's code.
 * Its name is not `FastifyError`, so Nest passes it to the filter unchanged.
 */
export class FrameworkRequestError extends Error {
  override name = 'FrameworkRequestError';
  constructor(
    readonly code: string,
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The problem document of an error Fastify raised, or undefined when it is not a client
 * error (a 5xx stays an unexpected error: logged, answered with a bare 500).
 */
export function frameworkErrorProblem(error: unknown, instance?: string): ProblemDetails | undefined {
  const { code, statusCode } = (error ?? {}) as FastifyLikeError;
  if (typeof code !== 'string' || !code.startsWith('FST_')) return undefined;
  const known = FASTIFY_ERRORS[code];
  if (known) {
    return { type: problemTypeFor(known.code), title: problemTitle(known.status), status: known.status, detail: known.detail, instance, code: known.code };
  }
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    return { type: 'about:blank', title: TITLES[statusCode] ?? 'Bad Request', status: statusCode, detail: 'The request could not be processed.', instance };
  }
  return undefined;
}

/** The generic 500: details stay in the log, under the request id the client can quote. */
export function internalErrorProblem(instance?: string): ProblemDetails {
  return {
    type: 'about:blank',
    title: TITLES[HttpStatus.INTERNAL_SERVER_ERROR],
    status: 500,
    detail: 'An unexpected error occurred. Quote the X-Request-Id header when reporting it.',
    instance,
  };
}

/** Postgres out of reach or out of capacity for now (errors/dependency-unavailable.ts): retry later. */
export function dependencyUnavailableProblem(instance?: string): ProblemDetails {
  return {
    type: problemTypeFor('SERVICE.UNAVAILABLE'),
    title: TITLES[503],
    status: 503,
    detail: 'The service could not reach its database in time and did not complete this request; retry after the number of seconds in Retry-After.',
    instance,
    code: 'SERVICE.UNAVAILABLE',
  };
}

/** Seconds a 503 asks the client to wait: 1–3, random so retries spread. */
const UNAVAILABLE_RETRY_AFTER_MAX_S = 3;

/** Writes a problem document (and the headers its status calls for) on a Fastify reply. */
export function sendProblem(reply: FastifyReply, problem: ProblemDetails, retryAfterSeconds?: number): void {
  if (problem.status === 401) void reply.header('www-authenticate', 'Bearer');
  if ((problem.status === 429 || problem.status === 503) && typeof retryAfterSeconds === 'number') void reply.header('retry-after', String(retryAfterSeconds));
  void reply.status(problem.status).header('content-type', PROBLEM_CONTENT_TYPE).send(JSON.stringify(problem));
}

/**
 * The one place where errors become HTTP responses. Domain errors map by kind, Nest's
 * HttpExceptions keep their status, Fastify's parser errors get safe wording, and
 * anything else is a 500 whose details stay in the log (with the request id), never
 * in the response.
 */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  constructor(@Inject(ROOT_LOGGER) private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw exception;
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const problem = this.toProblem(exception, request);
    if (reply.sent) return;
    const retryAfter =
      problem.status === 503 ? 1 + Math.floor(Math.random() * UNAVAILABLE_RETRY_AFTER_MAX_S) : (exception as { retryAfterSeconds?: unknown } | null)?.retryAfterSeconds;
    sendProblem(reply, problem, typeof retryAfter === 'number' ? retryAfter : undefined);
  }

  private toProblem(exception: unknown, request: FastifyRequest): ProblemDetails {
    const instance = request.url?.split('?')[0];
    if (exception instanceof ValidationFailedError) {
      return {
        type: problemTypeFor(exception.code),
        title: TITLES[400],
        status: 400,
        detail: exception.message,
        instance,
        code: exception.code,
        errors: exception.errors,
      };
    }
    if (exception instanceof KindedDomainError) return domainErrorProblem(exception, instance);
    const framework = frameworkErrorProblem(exception, instance);
    if (framework) return framework;
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      // Nest re-wraps some Fastify parser errors as HttpExceptions; keep their safe codes.
      const wrapped = Object.values(FASTIFY_ERRORS).find((e) => e.status === status && status !== 400);
      if (wrapped) {
        return { type: problemTypeFor(wrapped.code), title: TITLES[status], status, detail: wrapped.detail, instance, code: wrapped.code };
      }
      if (status < 500) {
        // Nest's own 4xx (unknown route, malformed JSON via Nest's parser mapping).
        const isJsonSyntax = status === 400 && /JSON/i.test(exception.message);
        return {
          type: isJsonSyntax ? problemTypeFor('REQUEST.MALFORMED_JSON') : 'about:blank',
          title: TITLES[status] ?? 'Error',
          status,
          detail: isJsonSyntax ? 'The body is not valid JSON.' : status === 404 ? `No route for ${request.method} ${instance}.` : exception.message,
          instance,
          ...(isJsonSyntax ? { code: 'REQUEST.MALFORMED_JSON' } : {}),
        };
      }
    }
    if (isDependencyUnavailable(exception)) {
      // An operational condition (pool exhausted, Postgres restarting), not a bug: 503, and
      // a warning whose error says which (the 503 rate is on the request metrics).
      this.logger.warn({ err: exception, requestId: request.id, method: request.method, url: instance }, 'database unavailable while serving a request; answered 503');
      return dependencyUnavailableProblem(instance);
    }
    this.logger.error({ err: exception, requestId: request.id, method: request.method, url: instance }, 'unhandled error while serving a request');
    return internalErrorProblem(instance);
  }
}
