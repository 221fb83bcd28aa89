import { setTimeout as sleep } from 'node:timers/promises';
import { getHeapStatistics } from 'node:v8';
import { loadConfig } from '../config/app-config';
import { PressureMonitor, shedLimits, type ShedLimits } from './load-shedding';

const limits = (overrides: Partial<ShedLimits> = {}): ShedLimits => ({
  maxEventLoopDelayMs: 60_000,
  maxHeapUsedBytes: Number.MAX_SAFE_INTEGER,
  maxInFlight: 1_000_000,
  sheddableRatio: 0.5,
  ...overrides,
});

/** Keeps the event loop busy: no timer, I/O or promise callback runs meanwhile. */
function blockEventLoop(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy on purpose
  }
}

describe('PressureMonitor', () => {
  it('sheds in stages on in-flight requests: sheddable from the ratio, normal at the limit, critical never', () => {
    const monitor = new PressureMonitor(limits({ maxInFlight: 4, sheddableRatio: 0.5 }));
    const shed = () => ({ critical: monitor.shouldShed('critical'), normal: monitor.shouldShed('normal'), sheddable: monitor.shouldShed('sheddable') });

    monitor.inFlight = 1; // one more sheddable request makes 2 of 4: still at the ratio
    expect(shed()).toEqual({ critical: false, normal: false, sheddable: false });
    monitor.inFlight = 2; // a third would pass half of the limit
    expect(shed()).toEqual({ critical: false, normal: false, sheddable: true });
    monitor.inFlight = 3; // the fourth normal request still fits
    expect(shed()).toEqual({ critical: false, normal: false, sheddable: true });
    monitor.inFlight = 4;
    expect(shed()).toEqual({ critical: false, normal: true, sheddable: true });
    monitor.inFlight = 400; // critical requests are never shed, however full
    expect(shed()).toEqual({ critical: false, normal: true, sheddable: true });
    monitor.inFlight = 0;
    expect(shed()).toEqual({ critical: false, normal: false, sheddable: false });
  });

  it('sheds on heap used over its limit, sampled from the process', () => {
    const monitor = new PressureMonitor(limits({ maxHeapUsedBytes: 1024 }));
    monitor.sample(); // any Node heap is far above 1 KiB
    expect(monitor.heapUsedBytes).toBeGreaterThan(1024);
    expect(monitor.reading().ratios.heap).toBeGreaterThan(1);
    expect(monitor.shouldShed('sheddable')).toBe(true);
    expect(monitor.shouldShed('normal')).toBe(true);
    expect(monitor.shouldShed('critical')).toBe(false);
  });

  it('sees a blocked event loop and stops shedding once the loop runs freely again', async () => {
    // Limits far above what a loaded test machine's scheduling alone causes.
    const monitor = new PressureMonitor(limits({ maxEventLoopDelayMs: 300, sheddableRatio: 0.5 }));
    monitor.start();
    try {
      await sleep(50);
      blockEventLoop(5000);
      // The overdue probe tick runs before this 1 ms timer, and closes its window on the stall.
      await sleep(1);
      // One ~5 s late tick among at most ten on-time ones (a window closes after 100 ms): mean > 450 ms.
      expect(monitor.eventLoopDelayMs).toBeGreaterThan(300);
      expect(monitor.shouldShed('normal')).toBe(true);
      expect(monitor.shouldShed('sheddable')).toBe(true);
      expect(monitor.shouldShed('critical')).toBe(false);

      await sleep(300); // a free-running loop: the windows since are on time
      expect(monitor.eventLoopDelayMs).toBeLessThan(150);
      expect(monitor.shouldShed('normal')).toBe(false);
      expect(monitor.shouldShed('sheddable')).toBe(false);
    } finally {
      monitor.stop();
    }
  });
});

describe('PressureMonitor start-up grace', () => {
  it('does not read a stall in the grace period after start as pressure, and reads the next one', async () => {
    const monitor = new PressureMonitor(limits({ maxEventLoopDelayMs: 300, sheddableRatio: 0.5 }), 1000);
    monitor.start();
    try {
      await sleep(50);
      blockEventLoop(600); // start-up work right after readiness
      await sleep(1);
      expect(monitor.eventLoopDelayMs).toBe(0);
      expect(monitor.shouldShed('sheddable')).toBe(false);
      monitor.inFlight = 1_000_000; // in-flight counts from the first request
      expect(monitor.shouldShed('normal')).toBe(true);
      monitor.inFlight = 0;

      await sleep(1000); // past the grace period
      blockEventLoop(2000);
      await sleep(1);
      expect(monitor.eventLoopDelayMs).toBeGreaterThan(150);
      expect(monitor.shouldShed('sheddable')).toBe(true);
    } finally {
      monitor.stop();
    }
  });
});

describe('SHED_* configuration', () => {
  it('defaults: on, 50 ms event-loop delay, 256 in flight, sheddable from 0.75, heap at 90 % of the V8 limit', () => {
    const config = loadConfig({}, []);
    expect(config.env.SHED_ENABLED).toBe(true);
    expect(config.env.SHED_RETRY_AFTER_S).toBe(2);
    expect(shedLimits(config)).toEqual({
      maxEventLoopDelayMs: 50,
      maxInFlight: 256,
      sheddableRatio: 0.75,
      maxHeapUsedBytes: Math.floor(getHeapStatistics().heap_size_limit * 0.9),
    });
  });

  it('takes the operator\'s values', () => {
    const config = loadConfig({ SHED_ENABLED: 'false', SHED_MAX_EVENT_LOOP_DELAY_MS: '20', SHED_MAX_HEAP_USED_BYTES: '536870912', SHED_MAX_IN_FLIGHT: '64', SHED_SHEDDABLE_RATIO: '0.5' }, []);
    expect(config.env.SHED_ENABLED).toBe(false);
    expect(shedLimits(config)).toEqual({ maxEventLoopDelayMs: 20, maxHeapUsedBytes: 536870912, maxInFlight: 64, sheddableRatio: 0.5 });
  });

  it.each([
    ['SHED_SHEDDABLE_RATIO', '0'],
    ['SHED_SHEDDABLE_RATIO', '1.5'],
    ['SHED_MAX_IN_FLIGHT', '0'],
    ['SHED_MAX_EVENT_LOOP_DELAY_MS', 'soon'],
    ['SHED_MAX_HEAP_USED_BYTES', '-1'],
    ['SHED_ENABLED', 'maybe'],
  ])('refuses %s=%s at boot, naming it', (variable, value) => {
    expect(() => loadConfig({ [variable]: value }, [])).toThrow(new RegExp(`Invalid configuration: ${variable} `));
  });
});
