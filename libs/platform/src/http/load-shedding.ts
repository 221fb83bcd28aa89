import { performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { RouteConfig, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { Counter, Gauge } from 'prom-client';
import type { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { problemTitle, sendProblem } from './problem-details.filter';

/**
 * Load shedding (README, "What is shed first"): under overload a request is answered
 * 503 problem+json with Retry-After at once, in an onRequest hook (before auth, the rate
 * limit's Redis round trip, body parsing or any handler), instead of waiting in a queue
 * until it times out. Pressure is the highest of three ratios, each signal over its
 * limit: event-loop delay, heap used, and requests in flight on this instance. Classes
 * are shed in stages:
 *  - `sheddable` (public reads, live streams) once pressure reaches SHED_SHEDDABLE_RATIO;
 *  - `normal` (everything not marked) once it reaches 1;
 *  - `critical` (health probes, token refresh, writes to an order already under way)
 *    never: a shed liveness probe restarts a busy pod, a shed refresh signs users out.
 * Only arrivals are shed: an admitted request is never cut off.
 */
export type ShedClass = 'critical' | 'normal' | 'sheddable';

export interface ShedRouteOptions {
  /**
   * A long-lived response (Server-Sent Events): its class is checked when it opens, but
   * it does not count as in flight while open (an idle stream costs no work per second,
   * and counting them would shed ordinary requests because many clients listen).
   */
  stream?: boolean;
}

interface ShedRouteConfig {
  shedClass?: ShedClass;
  shedStream?: boolean;
}

/** Marks a route's shedding class (unmarked routes are `normal`). */
export const ShedPriority = (shedClass: ShedClass, options: ShedRouteOptions = {}) =>
  RouteConfig({ shedClass, shedStream: options.stream === true } satisfies ShedRouteConfig);

export const OVERLOADED_PROBLEM_TYPE = '/problems/overloaded';

/** The limits one instance sheds at (from AppConfig; see shedLimits). */
export interface ShedLimits {
  maxEventLoopDelayMs: number;
  maxHeapUsedBytes: number;
  maxInFlight: number;
  /** Fraction of each limit at which `sheddable` requests start being shed. */
  sheddableRatio: number;
}

export function shedLimits(config: AppConfig): ShedLimits {
  const env = config.env;
  return {
    maxEventLoopDelayMs: env.SHED_MAX_EVENT_LOOP_DELAY_MS,
    // Unset: 90 % of V8's heap limit (--max-old-space-size), past which GC pauses grow.
    maxHeapUsedBytes: env.SHED_MAX_HEAP_USED_BYTES ?? Math.floor(getHeapStatistics().heap_size_limit * 0.9),
    maxInFlight: env.SHED_MAX_IN_FLIGHT,
    sheddableRatio: env.SHED_SHEDDABLE_RATIO,
  };
}

/** How often the event loop is probed: a tick's lateness past this is the loop's delay. */
const TICK_MS = 10;
/** Event-loop delay and heap are reported per window of this length; in-flight is exact at every request. */
export const SAMPLE_INTERVAL_MS = 100;
/** After the app is ready, how long the event-loop delay is not read (PressureMonitor). */
export const STARTUP_GRACE_MS = 2000;

export interface PressureReading {
  eventLoopDelayMs: number;
  heapUsedBytes: number;
  inFlight: number;
  /** Each signal over its limit, and the highest of them (1 = at the limit). */
  ratios: { eventLoopDelay: number; heap: number; inFlight: number };
  pressure: number;
}

/**
 * The three pressure signals of this process. Event-loop delay is the mean lateness of a
 * 10 ms timer over the last window of SAMPLE_INTERVAL_MS (a saturated loop runs long
 * iterations, so every tick is late; a stall is one very late tick). Node's own
 * monitorEventLoopDelay is not used: its reset() forgets an interval that is still
 * running, so a stall that ends just before a sample goes unseen. Heap is read once per
 * window (reading it per request would cost more than shedding saves); in-flight is a
 * plain counter (one thread: increments and decrements cannot interleave).
 */
export class PressureMonitor {
  private timer?: NodeJS.Timeout;
  private lastTickAt = 0;
  private windowStartedAt = 0;
  private windowLatenessMs = 0;
  private windowTicks = 0;
  private delayCountsFrom = 0;
  eventLoopDelayMs = 0;
  heapUsedBytes = 0;
  inFlight = 0;

  /**
   * `startupGraceMs`: for this long after start() the event-loop delay reads 0. The first
   * moments after readiness run the start-up's own synchronous work (relays, consumers and
   * maintenance jobs' first passes, first compiles), which a window reads as a stall: the
   * bench saw the first sheddable request after a start answered 503 at no load. In-flight
   * and heap still count from the first request.
   */
  constructor(
    readonly limits: ShedLimits,
    private readonly startupGraceMs = 0,
  ) {}

  start(): void {
    if (this.timer) return;
    this.lastTickAt = this.windowStartedAt = performance.now();
    this.delayCountsFrom = this.lastTickAt + this.startupGraceMs;
    this.sample();
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    const now = performance.now();
    this.windowLatenessMs += Math.max(0, now - this.lastTickAt - TICK_MS);
    this.windowTicks++;
    this.lastTickAt = now;
    // The window closes in the same callback that measured the last tick, stall included.
    if (now - this.windowStartedAt >= SAMPLE_INTERVAL_MS) this.sample();
  }

  /** Closes the current window: its mean delay and the heap become the readings. */
  sample(): void {
    this.eventLoopDelayMs = this.windowTicks > 0 && performance.now() >= this.delayCountsFrom ? this.windowLatenessMs / this.windowTicks : 0;
    this.windowLatenessMs = 0;
    this.windowTicks = 0;
    this.windowStartedAt = performance.now();
    this.heapUsedBytes = getHeapStatistics().used_heap_size;
  }

  reading(): PressureReading {
    const ratios = {
      eventLoopDelay: this.eventLoopDelayMs / this.limits.maxEventLoopDelayMs,
      heap: this.heapUsedBytes / this.limits.maxHeapUsedBytes,
      inFlight: this.inFlight / this.limits.maxInFlight,
    };
    return {
      eventLoopDelayMs: this.eventLoopDelayMs,
      heapUsedBytes: this.heapUsedBytes,
      inFlight: this.inFlight,
      ratios,
      pressure: Math.max(ratios.eventLoopDelay, ratios.heap, ratios.inFlight),
    };
  }

  /** Whether an arriving request of `shedClass` is shed at the current pressure. */
  shouldShed(shedClass: ShedClass): boolean {
    if (shedClass === 'critical') return false;
    const threshold = shedClass === 'sheddable' ? this.limits.sheddableRatio : 1;
    // In flight: the request itself would be one more, so `maxInFlight` admitted is full.
    const inFlightRatio = (this.inFlight + 1) / this.limits.maxInFlight;
    return (
      this.eventLoopDelayMs / this.limits.maxEventLoopDelayMs >= threshold ||
      this.heapUsedBytes / this.limits.maxHeapUsedBytes >= threshold ||
      inFlightRatio > threshold
    );
  }
}

const SHED_CLASSES: readonly ShedClass[] = ['critical', 'normal', 'sheddable'];

function classOf(request: FastifyRequest): { shedClass: ShedClass; stream: boolean } {
  const config = (request.routeOptions?.config ?? {}) as ShedRouteConfig;
  return { shedClass: config.shedClass ?? 'normal', stream: config.shedStream === true };
}

/**
 * Installs the onRequest hook (after the request-id hook, so a 503 carries X-Request-Id)
 * and the metrics `http_requests_shed_total{class}`, `http_requests_in_flight` and
 * `load_pressure_ratio{signal}`. With SHED_ENABLED=false the signals are still measured
 * and exported (to size the limits from production), but nothing is shed.
 */
export function installLoadShedding(app: NestFastifyApplication, config: AppConfig, logger: Logger): PressureMonitor {
  const fastify = app.getHttpAdapter().getInstance();
  const monitor = new PressureMonitor(shedLimits(config), STARTUP_GRACE_MS);
  const enabled = config.env.SHED_ENABLED;
  const retryAfterMaxS = config.env.SHED_RETRY_AFTER_S;
  const registry = app.get(MetricsService).registry;
  const shedTotal = new Counter({ name: 'http_requests_shed_total', help: 'Requests answered 503 by load shedding, by class', labelNames: ['class'], registers: [registry] });
  for (const shedClass of SHED_CLASSES) shedTotal.inc({ class: shedClass }, 0);
  new Gauge({
    name: 'http_requests_in_flight',
    help: 'Admitted requests this instance has not answered yet (open event streams excluded)',
    registers: [registry],
    collect() {
      this.set(monitor.inFlight);
    },
  });
  new Gauge({
    name: 'load_pressure_ratio',
    help: 'Each load-shedding signal over its limit (1 = at the limit), and overall (the highest); sheddable requests are shed from SHED_SHEDDABLE_RATIO, normal ones from 1',
    labelNames: ['signal'],
    registers: [registry],
    collect() {
      const { ratios, pressure } = monitor.reading();
      this.set({ signal: 'event_loop_delay' }, ratios.eventLoopDelay);
      this.set({ signal: 'heap' }, ratios.heap);
      this.set({ signal: 'in_flight' }, ratios.inFlight);
      this.set({ signal: 'overall' }, pressure);
    },
  });

  // One warning per second while shedding, instead of a log line per shed request.
  let shedSinceReport = 0;
  const report = setInterval(() => {
    if (shedSinceReport === 0) return;
    const { eventLoopDelayMs, heapUsedBytes, inFlight, pressure } = monitor.reading();
    logger.warn({ shed: shedSinceReport, pressure: Math.round(pressure * 100) / 100, eventLoopDelayMs: Math.round(eventLoopDelayMs), heapUsedBytes, inFlight }, 'overloaded: requests shed in the last second');
    shedSinceReport = 0;
  }, 1000);
  report.unref();

  // Measured from when the app is ready: the synchronous work of booting (Nest's init, the
  // OpenAPI document) would otherwise read as a stall and shed the first requests.
  fastify.addHook('onReady', (done) => {
    monitor.start();
    done();
  });
  fastify.addHook('onClose', (_instance, done) => {
    monitor.stop();
    clearInterval(report);
    done();
  });

  fastify.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const { shedClass, stream } = classOf(request);
    if (enabled && monitor.shouldShed(shedClass)) {
      shedTotal.inc({ class: shedClass });
      shedSinceReport++;
      markShed(request);
      // Spread over 1..SHED_RETRY_AFTER_S so shed clients do not all come back in the same second.
      void reply.header('retry-after', String(1 + Math.floor(Math.random() * retryAfterMaxS)));
      sendProblem(reply, {
        type: OVERLOADED_PROBLEM_TYPE,
        title: problemTitle(503),
        status: 503,
        detail: 'The service is overloaded and did not process this request; retry after the number of seconds in Retry-After.',
        instance: request.url.split('?')[0],
        code: 'OVERLOADED',
      });
      return; // the reply is sent: the route never runs
    }
    if (!stream) {
      monitor.inFlight++;
      // 'close' fires once the response is finished or the connection is gone, whichever first.
      reply.raw.once('close', () => monitor.inFlight--);
    }
    done();
  });
  return monitor;
}

const SHED = Symbol('shed');

function markShed(request: FastifyRequest): void {
  (request as FastifyRequest & { [SHED]?: true })[SHED] = true;
}

/** Whether load shedding answered this request (its 503 is logged at debug, not as an error). */
export function wasShed(request: FastifyRequest): boolean {
  return (request as FastifyRequest & { [SHED]?: true })[SHED] === true;
}
