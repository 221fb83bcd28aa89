import type { LoggerService } from '@nestjs/common';
import pino, { type Logger } from 'pino';
import { RequestContextStore } from './request-context';

/** One pino root logger per process; JSON lines on stdout. */
export function createRootLogger(level: string, base: Record<string, unknown> = {}): Logger {
  return pino({
    level,
    base: { service: 'api', ...base },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    // Every line written inside a request or a consumed event carries its request id.
    mixin: () => {
      const requestId = RequestContextStore.requestId();
      return requestId ? { requestId } : {};
    },
    redact: { paths: ['password', '*.password', 'req.headers.authorization'], censor: '[redacted]' },
  });
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
