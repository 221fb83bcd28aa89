import { setTimeout as sleep } from 'node:timers/promises';
import { PressureMonitor, type ShedLimits } from './load-shedding';

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
    const monitor = new PressureMonitor(limits({ maxEventLoopDelayMs: 100, sheddableRatio: 0.5 }));
    monitor.start();
    try {
      await sleep(50);
      blockEventLoop(1500);
      // The overdue probe tick runs before this 1 ms timer, and closes its window on the stall.
      await sleep(1);
      // One ~1.5 s late tick among at most ten on-time ones (a window closes after 100 ms): mean > 130 ms.
      expect(monitor.eventLoopDelayMs).toBeGreaterThan(100);
      expect(monitor.shouldShed('normal')).toBe(true);
      expect(monitor.shouldShed('sheddable')).toBe(true);
      expect(monitor.shouldShed('critical')).toBe(false);

      await sleep(300); // a free-running loop: the windows since are on time
      expect(monitor.eventLoopDelayMs).toBeLessThan(50);
      expect(monitor.shouldShed('normal')).toBe(false);
      expect(monitor.shouldShed('sheddable')).toBe(false);
    } finally {
      monitor.stop();
    }
  });
});
