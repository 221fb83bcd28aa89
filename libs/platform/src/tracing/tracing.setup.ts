import { readTracingConfig, TracingConfigError } from '../config/tracing-config';
import type { TracingSdk } from './tracing-sdk';

/**
 * `@app/platform/tracing`: the first import of every apps/<app>/src/main.ts (through the
 * app's own `tracing.ts`), because instrumentation patches `http`, `pg` and `ioredis` as
 * they are required: anything loaded earlier would stay untraced. Off (the default) it
 * loads no OpenTelemetry SDK module at all; the platform's spans then go to the API's
 * no-op tracer (README, "Tracing").
 */
let sdk: TracingSdk | undefined;

export function startTracing(defaultServiceName: string): void {
  if (sdk) return;
  let config;
  try {
    config = readTracingConfig();
  } catch (error) {
    if (!(error instanceof TracingConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(78); // EX_CONFIG, as an invalid platform variable
  }
  if (config.exporters.length === 0) return;
  // Required only now, so a process with tracing off never loads the SDK.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { startTracingSdk } = require('./tracing-sdk') as typeof import('./tracing-sdk');
  sdk = startTracingSdk(config, defaultServiceName);
}

export function isTracingOn(): boolean {
  return sdk !== undefined;
}

/** Exports the spans still buffered; called on graceful shutdown. Never throws. */
export async function shutdownTracing(): Promise<void> {
  await sdk?.shutdown().catch(() => undefined);
}

/** What the process logs at start: which exporters, or nothing when off. */
export function tracingSummary(): { exporters: string[]; protocol: string } | undefined {
  return sdk?.summary;
}
