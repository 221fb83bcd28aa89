import { context, propagation, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span } from '@opentelemetry/api';
import { isTracingOn } from './tracing.setup';

/**
 * W3C trace context as it travels in an event envelope's metadata (outbox row → Bull job):
 * how a trace crosses the relay and the process boundary to the consumer.
 */
export interface TraceCarrier {
  traceparent?: string;
  tracestate?: string;
}

const tracer = trace.getTracer('mm-platform');

/** The active span's context, to store with an event; empty when tracing is off or no span is active. */
export function currentTraceCarrier(): TraceCarrier {
  if (!isTracingOn()) return {};
  const carrier: TraceCarrier = {};
  propagation.inject(context.active(), carrier);
  return carrier;
}

/** `trace_id` / `span_id` of the active span for log lines; nothing when tracing is off. */
export function traceLogFields(): { trace_id: string; span_id: string } | undefined {
  if (!isTracingOn()) return undefined;
  const span = trace.getActiveSpan()?.spanContext();
  return span && trace.isSpanContextValid(span) ? { trace_id: span.traceId, span_id: span.spanId } : undefined;
}

function parentContext(carrier: TraceCarrier | undefined): Context {
  return carrier?.traceparent ? propagation.extract(context.active(), carrier) : context.active();
}

function endWith(span: Span, error?: unknown): void {
  if (error !== undefined) {
    span.recordException(error instanceof Error ? error : String(error));
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  }
  span.end();
}

/**
 * Runs `work` in a CONSUMER span whose parent is the trace context the message carried
 * (so the consumer's queries and calls join the producer's trace). Off: just `work()`.
 * `attributes` is called only when tracing is on: consumers run it per message.
 */
export async function inConsumerSpan<T>(name: string, carrier: TraceCarrier | undefined, attributes: () => Attributes, work: () => Promise<T>): Promise<T> {
  if (!isTracingOn()) return work();
  const parent = parentContext(carrier);
  const span = tracer.startSpan(name, { kind: SpanKind.CONSUMER, attributes: attributes() }, parent);
  try {
    const result = await context.with(trace.setSpan(parent, span), work);
    endWith(span);
    return result;
  } catch (error) {
    endWith(span, error);
    throw error;
  }
}

/**
 * PRODUCER spans of one batch hand-over (a relay claiming rows of many traces at once):
 * one span per message, a child of the context stored with it, ended together when the
 * batch commits or fails. `start` returns the carrier the message goes on with.
 */
export class ProducerSpans {
  private readonly spans: Span[] = [];

  /** `attributes` is called only when tracing is on: relays run this per message. */
  start(name: string, parent: TraceCarrier | undefined, attributes: () => Attributes): TraceCarrier {
    // Off here: the stored context travels on unchanged, so a consumer with tracing on still joins the request's trace.
    if (!isTracingOn()) return {};
    const ctx = parentContext(parent);
    const span = tracer.startSpan(name, { kind: SpanKind.PRODUCER, attributes: attributes() }, ctx);
    this.spans.push(span);
    const carrier: TraceCarrier = {};
    propagation.inject(trace.setSpan(ctx, span), carrier);
    return carrier;
  }

  end(error?: unknown): void {
    for (const span of this.spans.splice(0)) endWith(span, error);
  }
}
