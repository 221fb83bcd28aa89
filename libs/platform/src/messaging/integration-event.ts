import type { TraceCarrier } from '../tracing/trace-context';

/**
 * The envelope every integration event travels in, from a producer's outbox through Bull
 * to each subscriber's inbox. `type` is `<module>.<event-name>.v<N>`; the payload is the
 * versioned contract type the producer publishes in its `contracts` entry point.
 */
export interface IntegrationEvent<TPayload = unknown> {
  id: string;
  type: string;
  producer: string;
  occurredAt: string;
  payload: TPayload;
  /** The request that caused it, and its trace context when tracing is on (README, "Tracing"). */
  metadata: EventMetadata;
}

export type EventMetadata = { requestId?: string } & TraceCarrier;

/** What a use case hands to the outbox. */
export interface NewIntegrationEvent<TPayload = unknown> {
  type: string;
  payload: TPayload;
}

/** Queue that receives every event a module subscribes to. Owned by that module. */
export function inboxQueueName(module: string): string {
  return `${module}.inbox`;
}
