/**
 * Whether an error says a dependency is out of reach or out of capacity for now, rather
 * than that the code is wrong: the request did nothing (or its transaction rolled back)
 * and the same request can succeed later. Such errors become 503 with Retry-After
 * (README, "Design notes", Errors), never a bare 500:
 * - the pool found no free connection within DB_CONNECT_TIMEOUT_MS (pg-pool), or a new
 *   connection did not open in time (pg);
 * - Postgres refused, dropped or could not yet take the connection (network errors,
 *   class 08 connection exceptions, 53300 too many connections, 57P01–57P03 shutting
 *   down or starting up);
 * - the statement was cancelled by statement_timeout (57014) or gave up on a lock
 *   (55P03): under overload both mean "come back later", and the transaction rolled back.
 * TypeORM wraps driver errors (QueryFailedError's `driverError`); both levels are read.
 */
const TRANSIENT_SQLSTATES = new Set(['53300', '57P01', '57P02', '57P03', '57014', '55P03']);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);
const DRIVER_MESSAGES = [
  'timeout exceeded when trying to connect', // pg-pool: no connection free in time
  'Connection terminated due to connection timeout', // pg: connecting took too long
  'Connection terminated unexpectedly', // pg: the server went away mid-query
];

export function isDependencyUnavailable(error: unknown): boolean {
  for (let candidate: unknown = error, depth = 0; candidate && typeof candidate === 'object' && depth < 3; depth++) {
    const { code, message } = candidate as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && (TRANSIENT_SQLSTATES.has(code) || code.startsWith('08') || NETWORK_CODES.has(code))) return true;
    if (typeof message === 'string' && DRIVER_MESSAGES.some((known) => message.startsWith(known))) return true;
    candidate = (candidate as { driverError?: unknown; cause?: unknown }).driverError ?? (candidate as { cause?: unknown }).cause;
  }
  return false;
}
