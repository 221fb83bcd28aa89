import type { IncomingMessage } from 'node:http';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, ConsoleSpanExporter, NodeTracerProvider, type SpanExporter } from '@opentelemetry/sdk-trace-node';
import type { TracingConfig } from '../config/tracing-config';

export interface TracingSdk {
  summary: { exporters: string[]; protocol: string };
  shutdown(): Promise<void>;
}

/** Probes and scrapes: a trace every few seconds per instance that says nothing. */
const UNTRACED_PATHS = /^\/(health|metrics)(\/|\?|$)/;

/**
 * The SDK, loaded by tracing.setup.ts only when tracing is on. Endpoint, headers, timeout,
 * batching (`OTEL_BSP_*`), sampler (`OTEL_TRACES_SAMPLER`) and resource
 * (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`) come from the standard variables,
 * which the exporters and the provider read themselves.
 */
export function startTracingSdk(config: TracingConfig, defaultServiceName: string): TracingSdk {
  const exporters: SpanExporter[] = config.exporters.map((name) =>
    name === 'console' ? new ConsoleSpanExporter() : config.protocol === 'http/json' ? new OtlpJsonExporter() : new OtlpProtobufExporter(),
  );
  const provider = new NodeTracerProvider({
    // The app's name unless OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES say otherwise.
    resource: resourceFromAttributes({ 'service.name': defaultServiceName }).merge(detectResources({ detectors: [envDetector] })),
    spanProcessors: exporters.map((exporter) => new BatchSpanProcessor(exporter)),
  });
  // W3C trace context and baggage, the AsyncLocalStorage context manager.
  provider.register();
  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (request: IncomingMessage) => UNTRACED_PATHS.test(request.url ?? ''),
        // Outgoing calls (webhooks) only as part of a trace, never as traces of their own.
        requireParentforOutgoingSpans: true,
      }),
      // requireParentSpan: Bull's polling, the relays' claims and the health checks run
      // outside any request or event and would be a trace per query otherwise.
      new PgInstrumentation({ requireParentSpan: true }),
      new IORedisInstrumentation({
        requireParentSpan: true,
        // The command name only: keys and values may hold emails, token ids, payloads.
        dbStatementSerializer: (command) => command,
      }),
    ],
  });
  return {
    summary: { exporters: config.exporters, protocol: config.protocol },
    shutdown: () => provider.shutdown(),
  };
}
