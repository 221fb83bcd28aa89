import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import type { OrderEventType, OrderEventV1 } from '@app/orders/contracts';
import { inboxQueueName, QueueFactory, type IntegrationEvent } from '@app/platform';
import { eventually, query, type RunningApi } from './test-env';

/**
 * Test doubles and drivers for the notifications suites: events written straight into a
 * producer's outbox (what the producing module's use case would commit), a webhook receiver
 * that fails on demand and counts what it got, an SMTP server that parses what arrives, and
 * a Server-Sent Events client.
 */

/** Commits an event into `<producer>.outbox` as the admin; the running relays do the rest. */
export async function publishEvent(db: string, producer: 'users' | 'orders', type: string, payload: unknown): Promise<string> {
  const id = randomUUID();
  await query(db, `INSERT INTO "${producer}".outbox (id, event_type, payload) VALUES ($1, $2, $3)`, [id, type, JSON.stringify(payload)]);
  return id;
}

export function orderEvent(userId: string, overrides: Partial<OrderEventV1> = {}): OrderEventV1 {
  return {
    orderId: randomUUID(),
    userId,
    status: 'pending',
    totalCents: 4200,
    currency: 'EUR',
    lines: [{ productId: randomUUID(), sku: 'SKU-1', name: 'Teapot', quantity: 2, unitPriceCents: 2100 }],
    occurredAt: new Date().toISOString(),
    ...overrides,
  };
}

export async function publishOrderEvent(db: string, type: OrderEventType, payload: OrderEventV1): Promise<string> {
  return publishEvent(db, 'orders', type, payload);
}

/** Delivers an already handled event again under another job id, as after a relay crash. */
export async function redeliver(api: RunningApi, event: Omit<IntegrationEvent, 'metadata' | 'occurredAt'>, jobId = randomUUID()): Promise<void> {
  const queue = api.app.get(QueueFactory).get(inboxQueueName('notifications'));
  const envelope: IntegrationEvent = { ...event, occurredAt: new Date().toISOString(), metadata: {} };
  const job = await queue.add(event.type, envelope, { jobId, attempts: 1, removeOnComplete: false });
  await job.finished();
}

export async function notificationsOf(db: string, userId: string): Promise<{ id: string; kind: string; source_event_id: string }[]> {
  return query(db, 'SELECT id, kind, source_event_id FROM notifications.notifications WHERE user_id = $1 ORDER BY created_at, id', [userId]);
}

export interface DeliveryRow {
  id: string;
  notification_id: string;
  channel: 'email' | 'webhook';
  status: 'pending' | 'sent' | 'failed' | 'dead';
  attempts: number;
  last_error: string | null;
}

export async function deliveriesOf(db: string, userId: string, channel?: 'email' | 'webhook'): Promise<DeliveryRow[]> {
  return query<DeliveryRow>(
    db,
    `SELECT id, notification_id, channel, status, attempts, last_error FROM notifications.deliveries
      WHERE user_id = $1 AND ($2::text IS NULL OR channel = $2) ORDER BY created_at, id`,
    [userId, channel ?? null],
  );
}

export interface ReceivedWebhook {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
}

/**
 * A local webhook endpoint; `status(n, path)` decides the answer to the n-th call (1-based),
 * `path` lets several users' hooks share this one host.
 */
export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  private server?: http.Server;
  status: (call: number, path: string) => number = () => 204;

  get url(): string {
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}/hook`;
  }

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const path = req.url ?? '/';
        this.received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
        res.writeHead(this.status(this.received.length, path)).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve) ?? resolve(undefined));
  }
}

/** A real SMTP server on a local port that keeps every message, parsed. */
export class SmtpSink {
  readonly messages: ParsedMail[] = [];
  private server?: SMTPServer;
  port = 0;

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData: (stream, _session, callback) => {
        simpleParser(stream)
          .then((mail) => {
            this.messages.push(mail);
            callback();
          })
          .catch((error: Error) => callback(error));
      },
    });
    this.server.on('error', () => undefined);
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.server.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
}

/** A minimal EventSource over node:http that records events, comments and the end. */
export class SseClient {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  status?: number;
  headers?: http.IncomingHttpHeaders;
  ended = false;
  /** Everything the response carried, as text (a refusal's problem document included). */
  text = '';
  private request?: http.ClientRequest;
  private buffer = '';

  static async connect(baseUrl: string, token: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const client = new SseClient();
    await client.open(baseUrl, token, headers);
    return client;
  }

  private open(baseUrl: string, token: string, headers: Record<string, string>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.request = http.get(`${baseUrl}/v1/notifications/stream`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', ...headers } }, (response) => {
        this.status = response.statusCode;
        this.headers = response.headers;
        response.setEncoding('utf8');
        let resolved = false;
        response.on('data', (chunk: string) => {
          this.text += chunk;
          this.parse(chunk);
          // The first chunk (`retry:`) comes once the server subscribed: ready for events.
          // A refusal resolves at its end, with the whole problem document in `text`.
          if (!resolved && response.statusCode === 200) {
            resolved = true;
            resolve();
          }
        });
        response.on('end', () => {
          this.ended = true;
          if (!resolved) resolve();
        });
        response.on('error', () => undefined);
      });
      this.request.on('error', (error) => (this.ended ? undefined : reject(error)));
    });
  }

  notifications(): Record<string, unknown>[] {
    return this.events.filter((e) => e.event === 'notification').map((e) => JSON.parse(e.data) as Record<string, unknown>);
  }

  async waitForNotification(predicate: (n: Record<string, unknown>) => boolean, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    return eventually(async () => this.notifications().find(predicate), timeoutMs);
  }

  close(): void {
    this.ended = true;
    this.request?.destroy();
  }

  private parse(chunk: string): void {
    this.buffer += chunk;
    let boundary: number;
    while ((boundary = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, boundary);
      this.buffer = this.buffer.slice(boundary + 2);
      const event: SseEvent = { data: '' };
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) this.comments.push(line.slice(1).trim());
        else if (line.startsWith('data: ')) data.push(line.slice(6));
        else if (line.startsWith('id: ')) event.id = line.slice(4);
        else if (line.startsWith('event: ')) event.event = line.slice(7);
      }
      if (data.length) {
        event.data = data.join('\n');
        this.events.push(event);
      }
    }
  }
}
