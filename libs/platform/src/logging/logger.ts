import type { LoggerService } from '@nestjs/common';
import pino, { type DestinationStream, type Logger } from 'pino';
import { traceLogFields } from '../tracing/trace-context';
import { RequestContextStore } from './request-context';

/**
 * Members of an error object that carry data rather than a description of the fault:
 * TypeORM's `parameters` (the values bound to the failed query: emails, password hashes,
 * webhook secrets), Postgres' `detail` (`Key (email)=(…)`, `Failing row contains (…)`),
 * and the arguments of a failed Redis command (keys and values). They never reach a log
 * line; the SQL text (`query`, placeholders only), the SQLSTATE `code`, the constraint,
 * table and column, the message and the stack stay.
 */
const DATA_MEMBERS = new Set(['parameters', 'params', 'detail', 'args', 'argv', 'body', 'headers', 'config', 'password', 'secret', 'token']);

/** pino's error serializer (message, stack, causes), minus the members that carry data. */
export function serializeError(error: unknown): unknown {
  if (!(error instanceof Error) && (typeof error !== 'object' || error === null)) return error;
  const serialized = error instanceof Error ? pino.stdSerializers.err(error) : { ...(error as Record<string, unknown>) };
  return scrub(serialized, 0);
}

function scrub(value: unknown, depth: number): unknown {
  if (typeof value !== 'object' || value === null || depth > 4) return value;
  if (Array.isArray(value)) return value.map((item) => scrub(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, member] of Object.entries(value)) {
    // Also drops `args` inside ioredis' `command: { name, args }`, keeping the name.
    if (!DATA_MEMBERS.has(key)) out[key] = scrub(member, depth + 1);
  }
  return out;
}

/**
 * Paths censored in every log line: credentials and secrets under their usual names, at
 * the top level and one level down (`req.headers.authorization`, `body.password`, …).
 */
const SECRET_NAMES = [
  'password',
  'newPassword',
  'currentPassword',
  'passwordHash',
  'password_hash',
  'token',
  'accessToken',
  'refreshToken',
  'secret',
  'webhookSecret',
  'webhook_secret',
  'authorization',
  'cookie',
  'privateKey',
];
/**
 * Configuration variables holding key material, whichever module declares them (the
 * platform names none): `*_SIGNING_KEY`, `*_PRIVATE_KEY`. Censored wherever they appear in
 * a logged object, a few levels deep (pino's redact paths need exact names).
 */
const KEY_MATERIAL = /(SIGNING|PRIVATE)_KEY$/;
const KEY_MATERIAL_DEPTH = 4;

/** The object itself when nothing matches; otherwise a copy with the key material censored. */
export function censorKeyMaterial<T>(value: T, depth = 0): T {
  if (depth >= KEY_MATERIAL_DEPTH || value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  let copy: Record<string, unknown> | undefined;
  for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
    const censored = KEY_MATERIAL.test(key) ? '[redacted]' : censorKeyMaterial(inner, depth + 1);
    if (censored !== inner) (copy ??= { ...(value as Record<string, unknown>) })[key] = censored;
  }
  return (copy ?? value) as T;
}

export const REDACTED_PATHS = [
  ...SECRET_NAMES.flatMap((name) => [name, `*.${name}`]),
  'req.headers.authorization',
  'req.headers.cookie',
  'request.headers.authorization',
  'request.headers.cookie',
  'headers["set-cookie"]',
  '*.headers["set-cookie"]',
  '*.headers.authorization',
  '*.headers.cookie',
];

/**
 * One pino root logger per process; JSON lines on stdout (or `destination`). Redaction
 * is on by default: errors lose their data members (serializeError) and credential
 * fields are censored (REDACTED_PATHS), so a failing query or a logged request cannot
 * put passwords, hashes, emails bound to SQL, tokens or secrets in the logs.
 */
export function createRootLogger(level: string, base: Record<string, unknown> = {}, destination?: DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'api', ...base },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }), log: (object) => censorKeyMaterial(object) },
    // Every line written inside a request or a consumed event carries its request id, and
    // with tracing on the active span's trace_id/span_id, to find a trace from a log line.
    mixin: () => {
      const requestId = RequestContextStore.requestId();
      const trace = traceLogFields();
      return requestId ? { requestId, ...trace } : (trace ?? {});
    },
    serializers: { err: serializeError, error: serializeError, reason: serializeError, cause: serializeError },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** Routes Nest's own logging (bootstrap, exceptions) into the same pino stream. */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

  log(message: unknown, context?: string): void {
    this.write('info', message, context);
  }
  error(message: unknown, trace?: string, context?: string): void {
    this.logger.error({ context, trace }, String(message));
  }
  warn(message: unknown, context?: string): void {
    this.write('warn', message, context);
  }
  debug(message: unknown, context?: string): void {
    this.write('debug', message, context);
  }
  verbose(message: unknown, context?: string): void {
    this.write('trace', message, context);
  }
  fatal(message: unknown, context?: string): void {
    this.write('fatal', message, context);
  }

  private write(level: pino.Level, message: unknown, context?: string): void {
    if (typeof message === 'object' && message !== null) this.logger[level]({ context, ...message });
    else this.logger[level]({ context }, String(message));
  }
}
