import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { WebhookReceiver } from '../support/notifications';
import { OtlpReceiver, SpanKinds, type ReceivedSpan } from '../support/otlp-receiver';
import { logLines, SplitDeployment } from '../support/split-deployment';
import { eventually, query, uniqueEmail } from '../support/test-env';

/**
 * Tracing across the extracted deployment (README, "Tracing"): the API (users, orders) and
 * apps/notifications-service as real processes exporting to a local OTLP/HTTP receiver.
 * One sign-up is one trace: the API's HTTP server span, its Postgres queries, the relay's
 * publish span, and the consumer span in the other process, linked parent to child.
 */
const EVENT = 'users.user-registered.v1';

/** A client's own trace context, so the test knows the trace id before anything is exported. */
function clientTraceparent(): { traceId: string; spanId: string; header: string } {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return { traceId, spanId, header: `00-${traceId}-${spanId}-01` };
}

async function signUp(deployment: SplitDeployment, traceparent: string, requestId: string): Promise<string> {
  const created = await request(deployment.url)
    .post('/v1/users')
    .set('traceparent', traceparent)
    .set('X-Request-Id', requestId)
    .send({ email: uniqueEmail('trace'), password: 'correct horse battery', name: 'Trace' })
    .expect(201);
  return created.body.id as string;
}

/** The span's ancestors within the trace, nearest first (stops at a parent not exported). */
function ancestors(span: ReceivedSpan, trace: ReceivedSpan[]): ReceivedSpan[] {
  const chain: ReceivedSpan[] = [];
  for (let parent = trace.find((s) => s.spanId === span.parentSpanId); parent; parent = trace.find((s) => s.spanId === parent!.parentSpanId)) {
    chain.push(parent);
  }
  return chain;
}

const isPostgres = (span: ReceivedSpan) => span.attributes['db.system'] === 'postgresql' || span.attributes['db.system.name'] === 'postgresql';

describe('tracing on: one trace from the request to the consumer in another process', () => {
  const receiver = new OtlpReceiver();
  const webhooks = new WebhookReceiver();
  let deployment: SplitDeployment;

  beforeAll(async () => {
    const endpoint = await receiver.start();
    await webhooks.start();
    deployment = await SplitDeployment.create('tracing-on', {
      env: {
        OTEL_TRACES_EXPORTER: 'otlp',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
        // Export soon after a span ends, so the test does not wait the default 5 s.
        OTEL_BSP_SCHEDULE_DELAY: '200',
      },
      // The webhook receiver is on 127.0.0.1.
      serviceEnv: { NOTIFICATIONS_ALLOW_PRIVATE_WEBHOOKS: 'true' },
    });
    await deployment.startApi();
    await deployment.startService();
  }, 120_000);

  afterAll(async () => {
    await deployment?.close();
    await receiver.stop();
    await webhooks.stop();
  });

  it('links the HTTP server span, pg, the relay publish and the consumer span of the notifications service', async () => {
    const client = clientTraceparent();
    const userId = await signUp(deployment, client.header, 'trace-on-1');
    await deployment.waitUntilDrained();

    // The outbox row carries the request's trace context (the relay continues from it).
    const [row] = await query<{ metadata: { requestId?: string; traceparent?: string } }>(
      deployment.db,
      `SELECT metadata FROM users.outbox WHERE event_type = $1 AND payload->>'userId' = $2`,
      [EVENT, userId],
    );
    expect(row.metadata.requestId).toBe('trace-on-1');
    expect(row.metadata.traceparent).toMatch(new RegExp(`^00-${client.traceId}-[0-9a-f]{16}-01$`));

    const found = await eventually(async () => {
      const trace = receiver.trace(client.traceId);
      const server = trace.find((s) => s.service === 'api' && s.kind === SpanKinds.SERVER);
      const publish = trace.find((s) => s.service === 'api' && s.kind === SpanKinds.PRODUCER && s.name === `publish ${EVENT}`);
      const consumer = trace.find((s) => s.service === 'notifications-service' && s.kind === SpanKinds.CONSUMER && s.name === `process ${EVENT}`);
      const apiQuery = trace.find((s) => s.service === 'api' && isPostgres(s));
      const consumerQuery = trace.find((s) => s.service === 'notifications-service' && isPostgres(s));
      return server && publish && consumer && apiQuery && consumerQuery ? { trace, server, publish, consumer, apiQuery, consumerQuery } : undefined;
    }, 30_000, 200);
    const { trace, server, publish, consumer, apiQuery, consumerQuery } = found;

    // The API continued the client's trace, and named its span by the route.
    expect(server.parentSpanId).toBe(client.spanId);
    expect(server.name).toBe('POST /v1/users');
    expect(server.attributes['http.route']).toBe('/v1/users');
    // The request's queries (the user's INSERT, the outbox row, the COMMIT) are under it.
    expect(ancestors(apiQuery, trace)).toContain(server);
    // The relay's publish span continues the request's trace, across the commit.
    expect(ancestors(publish, trace)).toContain(server);
    expect(publish.attributes['messaging.destination.name']).toBe('notifications.inbox');
    // The other process's consumer span is the child of the publish span, and its own queries are under it.
    expect(consumer.parentSpanId).toBe(publish.spanId);
    expect(consumer.attributes['messaging.consumer.group.name']).toBe('notifications');
    expect(ancestors(consumerQuery, trace)).toContain(consumer);
    // Redis commands and queries are recorded only inside a trace: nothing without a parent but the request.
    expect(trace.filter((s) => !trace.some((p) => p.spanId === s.parentSpanId))).toEqual([server]);

    // Log lines carry the ids: the consumer's "event handled" line names this trace.
    const handled = logLines(deployment.service!.text(), 'event handled').find((line) => line.requestId === 'trace-on-1');
    expect(handled).toMatchObject({ trace_id: client.traceId, span_id: consumer.spanId });
    expect(logLines(deployment.api!.text(), 'using these servers')[0].tracing).toEqual({ exporters: ['otlp'], protocol: 'http/json' });
  }, 90_000);

  it('continues the trace into the delivery: the order event consumer, the dispatcher, the webhook send and its HTTP call', async () => {
    const admin = await deployment.registerAdmin('trace-admin');
    const product = await deployment.createProduct(admin, `TRACE-${Date.now()}`);
    const customer = await deployment.register('trace-customer');
    await request(deployment.url)
      .put('/v1/notifications/preferences')
      .set('Authorization', `Bearer ${customer.token}`)
      .send({ email: true, webhookUrl: webhooks.url })
      .expect(200);
    const client = clientTraceparent();
    await request(deployment.url)
      .post('/v1/orders')
      .set('Authorization', `Bearer ${customer.token}`)
      .set('traceparent', client.header)
      .send({ items: [{ productId: product.id, quantity: 1 }] })
      .expect(201);

    const found = await eventually(async () => {
      const trace = receiver.trace(client.traceId);
      const consumer = trace.find((s) => s.service === 'notifications-service' && s.kind === SpanKinds.CONSUMER && s.name === 'process orders.order-placed.v1');
      const dispatch = trace.find((s) => s.service === 'notifications-service' && s.kind === SpanKinds.PRODUCER && s.name === 'publish notifications.webhook');
      const send = trace.find((s) => s.service === 'notifications-service' && s.kind === SpanKinds.CONSUMER && s.name === 'process notifications.webhook');
      const call = trace.find((s) => s.service === 'notifications-service' && s.kind === SpanKinds.CLIENT && s.parentSpanId === send?.spanId && s.name === 'POST');
      return consumer && dispatch && send && call ? { consumer, dispatch, send, call } : undefined;
    }, 30_000, 200);
    expect(found.dispatch.parentSpanId).toBe(found.consumer.spanId);
    expect(found.send.parentSpanId).toBe(found.dispatch.spanId);
    // The receiver of the webhook got the trace context too (W3C traceparent of the HTTP call).
    expect(webhooks.received.map((hook) => hook.headers.traceparent)).toContain(`00-${client.traceId}-${found.call.spanId}-01`);
  }, 90_000);

  it('never exports the key or value of a Redis command, nor the parameters of a query', () => {
    const redis = receiver.spans.filter((s) => s.attributes['db.system'] === 'redis' || s.attributes['db.system.name'] === 'redis');
    expect(redis.length).toBeGreaterThan(0);
    for (const span of redis) expect(String(span.attributes['db.statement'] ?? span.attributes['db.query.text'] ?? '')).toMatch(/^[a-z]*$/);
    for (const span of receiver.spans.filter(isPostgres)) expect(span.attributes).not.toHaveProperty('db.postgresql.values');
    expect(JSON.stringify(receiver.spans)).not.toContain('correct horse battery');
  });
});

describe('tracing off (the default): nothing is exported and everything works', () => {
  const receiver = new OtlpReceiver();
  let deployment: SplitDeployment;

  beforeAll(async () => {
    const endpoint = await receiver.start();
    // An endpoint alone does not turn tracing on: OTEL_TRACES_EXPORTER must name an exporter.
    deployment = await SplitDeployment.create('tracing-off', {
      env: { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: '200' },
    });
    await deployment.startApi();
    await deployment.startService();
  }, 120_000);

  afterAll(async () => {
    await deployment?.close();
    await receiver.stop();
  });

  it('handles the sign-up and its event with no trace context stored, logged or exported', async () => {
    const client = clientTraceparent();
    const userId = await signUp(deployment, client.header, 'trace-off-1');
    await deployment.waitUntilDrained();
    const welcome = await query(deployment.db, `SELECT 1 FROM notifications.notifications WHERE user_id = $1 AND kind = 'welcome'`, [userId]);
    expect(welcome).toHaveLength(1);
    const [row] = await query<{ metadata: Record<string, unknown> }>(deployment.db, `SELECT metadata FROM users.outbox WHERE payload->>'userId' = $1`, [userId]);
    expect(row.metadata).toEqual({ requestId: 'trace-off-1' });
    const output = deployment.api!.text() + deployment.service!.text();
    expect(output).not.toContain('trace_id');
    expect(logLines(deployment.api!.text(), 'using these servers')[0].tracing).toBe('off');

    // A graceful stop is when an SDK would flush what it holds: after it, still nothing.
    await deployment.close();
    expect(receiver.requests).toBe(0);
  }, 90_000);
});
