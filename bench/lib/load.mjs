// One bounded load run with autocannon's programmatic API against 127.0.0.1. Latency is
// taken from every 2xx response's own timing (sub-millisecond precision), not from
// autocannon's integer-millisecond histogram.
import autocannon from 'autocannon';
import { percentile } from './stats.mjs';

let current = null;
const stoppers = new Set();

/** Stops the run in progress (on SIGINT); its partial result is discarded by the caller. */
export function abortLoad() {
  current?.stop();
  for (const stop of stoppers) stop();
}

/** Other load generators (lib/rate.mjs) register their stop here; returns the unregister function. */
export function onAbortLoad(stop) {
  stoppers.add(stop);
  return () => stoppers.delete(stop);
}

export function assertLoopback(url) {
  const { hostname } = new URL(url);
  if (hostname !== '127.0.0.1') throw new Error(`load goes to 127.0.0.1 only (got ${url})`);
}

/**
 * Runs `durationS` seconds of load with `request` ({ method, path, headers, body, bodies? }).
 * Returns throughput (2xx responses per second), latency percentiles in ms and counts.
 */
export function runLoad({ url, request, durationS, connections, pipelining, record = true }) {
  assertLoopback(url);
  return new Promise((resolve, reject) => {
    let latencies = new Float64Array(1 << 16);
    let count = 0;
    const statuses = {};
    let ok = 0;
    let bytes = 0;
    const startedAt = process.hrtime.bigint();
    const instance = autocannon(
      {
        url: url + request.path,
        method: request.method ?? 'GET',
        // A JSON body needs its content type (fetch-style fixtures add it; autocannon does not).
        headers: request.body === undefined ? (request.headers ?? {}) : { 'content-type': 'application/json', ...(request.headers ?? {}) },
        body: request.body === undefined ? undefined : typeof request.body === 'string' ? request.body : JSON.stringify(request.body),
        // `bodies`: each connection cycles through these bodies in turn (e.g. orders of different products).
        ...(request.bodies ? { requests: request.bodies.map((b) => ({ body: typeof b === 'string' ? b : JSON.stringify(b) })) } : {}),
        duration: durationS,
        connections,
        pipelining,
        timeout: 10,
      },
      (error, result) => {
        current = null;
        if (error) return reject(error);
        const elapsedS = Number(process.hrtime.bigint() - startedAt) / 1e9;
        const sorted = latencies.subarray(0, count).sort();
        let sum = 0;
        for (let i = 0; i < count; i++) sum += sorted[i];
        resolve({
          durationS: result.duration || elapsedS,
          requests: result.requests.total,
          ok,
          reqPerSec: ok / (result.duration || elapsedS),
          latencyMs: {
            mean: count ? sum / count : null,
            p50: percentile(sorted, 50),
            p90: percentile(sorted, 90),
            p99: percentile(sorted, 99),
            max: count ? sorted[count - 1] : null,
          },
          statuses,
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
          bytesPerResponse: ok ? bytes / ok : null,
        });
      },
    );
    current = instance;
    instance.on('response', (_client, statusCode, resBytes, responseTime) => {
      statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
      if (statusCode < 200 || statusCode > 299) return;
      ok++;
      if (!record) return;
      bytes += resBytes;
      if (count === latencies.length) {
        const grown = new Float64Array(latencies.length * 2);
        grown.set(latencies);
        latencies = grown;
      }
      latencies[count++] = responseTime;
    });
  });
}
