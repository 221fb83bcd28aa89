/**
 * Tracing is configured by the standard OpenTelemetry variables (README, "Tracing"), read
 * here before anything else loads, so this file has no imports: the tracing preload must
 * not load the instrumented libraries (pg, ioredis, http) before it patches them.
 */
export type TracesExporter = 'otlp' | 'console';
export type OtlpProtocol = 'http/protobuf' | 'http/json';

export interface TracingConfig {
  /** Empty: tracing is off and no SDK module is loaded. */
  exporters: TracesExporter[];
  protocol: OtlpProtocol;
}

export class TracingConfigError extends Error {
  override name = 'TracingConfigError';
}

const EXPORTERS = new Set(['otlp', 'console', 'none']);
const PROTOCOLS = new Set(['http/protobuf', 'http/json']);

/**
 * Off unless OTEL_TRACES_EXPORTER names an exporter: the SDK's own default (`otlp`) would
 * turn tracing on in every process that merely has the package. OTEL_SDK_DISABLED=true
 * turns it off whatever else is set. gRPC is not bundled (one protocol family is enough).
 */
export function readTracingConfig(env: NodeJS.ProcessEnv = process.env): TracingConfig {
  const value = (name: string) => (env[name]?.trim() ? env[name]!.trim() : undefined);
  const protocol = (value('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? value('OTEL_EXPORTER_OTLP_PROTOCOL') ?? 'http/protobuf') as OtlpProtocol;
  const disabled = value('OTEL_SDK_DISABLED')?.toLowerCase() === 'true';
  const names = (value('OTEL_TRACES_EXPORTER') ?? 'none').split(',').map((name) => name.trim().toLowerCase());
  for (const name of names) {
    if (!EXPORTERS.has(name)) throw new TracingConfigError(`Invalid configuration: OTEL_TRACES_EXPORTER must be otlp, console or none (comma-separated), not "${name}"`);
  }
  const exporters = disabled || names.includes('none') ? [] : [...new Set(names as TracesExporter[])];
  if (exporters.includes('otlp') && !PROTOCOLS.has(protocol)) {
    throw new TracingConfigError(`Invalid configuration: OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf or http/json, not "${protocol}" (grpc is not bundled)`);
  }
  return { exporters, protocol };
}
