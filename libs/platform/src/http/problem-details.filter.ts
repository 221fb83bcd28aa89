import { ArgumentsHost, Catch, HttpException, HttpStatus, Inject, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
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
};

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

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

/** Errors Fastify raises before a handler runs (body parsing, limits), mapped to safe text. */
const FASTIFY_ERRORS: Record<string, { status: number; code: string; detail: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'REQUEST.BODY_TOO_LARGE', detail: 'The request body exceeds the size limit.' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'REQUEST.UNSUPPORTED_MEDIA_TYPE', detail: 'Send the body as application/json.' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'REQUEST.INVALID_CONTENT_LENGTH', detail: 'The Content-Length header does not match the body.' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'REQUEST.EMPTY_BODY', detail: 'The JSON body is empty.' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'REQUEST.MALFORMED_JSON', detail: 'The body is not valid JSON.' },
};

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
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
    if (problem.status === 401) void reply.header('www-authenticate', 'Bearer');
    const retryAfter = (exception as { retryAfterSeconds?: unknown }).retryAfterSeconds;
    if (problem.status === 429 && typeof retryAfter === 'number') void reply.header('retry-after', String(retryAfter));
    void reply
      .status(problem.status)
      .header('content-type', 'application/problem+json; charset=utf-8')
      .send(JSON.stringify(problem));
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
    const fastifyError = exception as FastifyLikeError;
    if (typeof fastifyError?.code === 'string' && fastifyError.code.startsWith('FST_')) {
      const known = FASTIFY_ERRORS[fastifyError.code];
      if (known) {
        return { type: problemTypeFor(known.code), title: TITLES[known.status], status: known.status, detail: known.detail, instance, code: known.code };
      }
      const status = fastifyError.statusCode && fastifyError.statusCode < 500 ? fastifyError.statusCode : 500;
      if (status < 500) {
        return { type: 'about:blank', title: TITLES[status] ?? 'Bad Request', status, detail: 'The request could not be processed.', instance };
      }
    }
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
    this.logger.error({ err: exception, requestId: request.id, method: request.method, url: instance }, 'unhandled error while serving a request');
    return {
      type: 'about:blank',
      title: TITLES[HttpStatus.INTERNAL_SERVER_ERROR],
      status: 500,
      detail: 'An unexpected error occurred. Quote the X-Request-Id header when reporting it.',
      instance,
    };
  }
}
