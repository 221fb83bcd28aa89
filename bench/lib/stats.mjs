// Percentiles and summaries of latency samples (milliseconds, sub-millisecond precision).

/** Nearest-rank percentile of an ascending array (typed or not); null when empty. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

/** { mean, p50, p90, p99, max } of `values` (any order), the shape of every side's `latencyMs`. */
export function latencySummary(values) {
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    mean: sorted.length ? sum / sorted.length : null,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : null,
  };
}
