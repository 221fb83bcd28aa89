import { readTracingConfig, TracingConfigError } from './tracing-config';

describe('readTracingConfig (the standard OTEL_* variables)', () => {
  it('is off unless OTEL_TRACES_EXPORTER names an exporter: an endpoint alone does not turn it on', () => {
    expect(readTracingConfig({}).exporters).toEqual([]);
    expect(readTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).exporters).toEqual([]);
    expect(readTracingConfig({ OTEL_TRACES_EXPORTER: ' ' }).exporters).toEqual([]);
    expect(readTracingConfig({ OTEL_TRACES_EXPORTER: 'none' }).exporters).toEqual([]);
  });

  it('turns on with otlp (http/protobuf unless told otherwise) or console; OTEL_SDK_DISABLED wins', () => {
    expect(readTracingConfig({ OTEL_TRACES_EXPORTER: 'otlp' })).toEqual({ exporters: ['otlp'], protocol: 'http/protobuf' });
    expect(readTracingConfig({ OTEL_TRACES_EXPORTER: 'OTLP, console', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' })).toEqual({ exporters: ['otlp', 'console'], protocol: 'http/json' });
    expect(readTracingConfig({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' }).protocol).toBe('http/protobuf');
    expect(readTracingConfig({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' }).exporters).toEqual([]);
  });

  it('refuses an unknown exporter and a protocol it does not bundle, naming the variable', () => {
    expect(() => readTracingConfig({ OTEL_TRACES_EXPORTER: 'zipkin' })).toThrow(new TracingConfigError('Invalid configuration: OTEL_TRACES_EXPORTER must be otlp, console or none (comma-separated), not "zipkin"'));
    expect(() => readTracingConfig({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(/OTEL_EXPORTER_OTLP_PROTOCOL must be http\/protobuf or http\/json, not "grpc"/);
    // A protocol only matters to the OTLP exporter.
    expect(readTracingConfig({ OTEL_TRACES_EXPORTER: 'console', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }).exporters).toEqual(['console']);
  });
});
