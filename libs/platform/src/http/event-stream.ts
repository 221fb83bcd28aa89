import { Injectable, type BeforeApplicationShutdown } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';

export interface EventStreamOptions {
  /** Interval of the comment lines that keep proxies and clients from timing out. */
  heartbeatMs: number;
  /** Called at each heartbeat; resolving false ends the stream (e.g. the session ended). */
  stillAllowed?: () => Promise<boolean>;
  /** Reconnection delay suggested to EventSource clients. */
  retryMs?: number;
  /** A client that lets this much output pile up unread is disconnected. */
  maxBufferedBytes?: number;
}

export interface ServerSentEvent {
  id?: string;
  event?: string;
  data: unknown;
}

/**
 * One Server-Sent Events response. The Fastify reply is hijacked: Nest and Fastify stop
 * managing it, and this object owns the raw response until either side closes it.
 */
export class EventStream {
  private heartbeat?: NodeJS.Timeout;
  private ended = false;
  private readonly closeListeners: (() => void)[] = [];

  constructor(
    private readonly request: FastifyRequest,
    private readonly reply: FastifyReply,
    private readonly options: EventStreamOptions,
  ) {}

  get isOpen(): boolean {
    return !this.ended;
  }

  /** Sends headers and starts heartbeats; called by EventStreams.open. */
  start(): void {
    this.reply.hijack();
    const raw = this.reply.raw;
    const inherited = this.reply.getHeaders() as Record<string, string | number | string[]>;
    raw.writeHead(200, {
      ...inherited,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // nginx: pass events through as they are written.
      'x-accel-buffering': 'no',
    });
    this.request.raw.socket?.setNoDelay(true);
    raw.write(`retry: ${this.options.retryMs ?? 3000}\n\n`);
    this.request.raw.once('close', () => this.close());
    raw.once('error', () => this.close());
    this.heartbeat = setInterval(() => void this.beat(), this.options.heartbeatMs);
    this.heartbeat.unref();
    // The client may have gone while the caller was still preparing (its 'close' already fired).
    if (this.request.raw.destroyed || raw.destroyed) this.close();
  }

  /** Writes one event; returns false when the stream is closed (or was just closed). */
  send(event: ServerSentEvent): boolean {
    const data = typeof event.data === 'string' ? event.data : JSON.stringify(event.data);
    let frame = '';
    if (event.id) frame += `id: ${event.id.replace(/[\r\n]/g, '')}\n`;
    if (event.event) frame += `event: ${event.event.replace(/[\r\n]/g, '')}\n`;
    for (const line of data.split(/\r\n|\r|\n/)) frame += `data: ${line}\n`;
    return this.write(`${frame}\n`);
  }

  onClose(listener: () => void): void {
    if (this.ended) listener();
    else this.closeListeners.push(listener);
  }

  /**
   * Ends the response (idempotent); the client's EventSource reconnects elsewhere.
   * `last`: a final event telling the client why (e.g. a kill switch), written first.
   */
  close(last?: ServerSentEvent): void {
    if (this.ended) return;
    if (last) this.send(last);
    this.ended = true;
    clearInterval(this.heartbeat);
    const raw = this.reply.raw;
    if (!raw.writableEnded) raw.end();
    for (const listener of this.closeListeners.splice(0)) {
      try {
        listener();
      } catch {
        // Cleanup of one listener must not skip the others.
      }
    }
  }

  private write(chunk: string): boolean {
    if (this.ended) return false;
    const raw = this.reply.raw;
    if (raw.writableEnded || raw.destroyed) {
      this.close();
      return false;
    }
    raw.write(chunk);
    if (raw.writableLength > (this.options.maxBufferedBytes ?? 1024 * 1024)) {
      // A client that does not read must not make us buffer without bound.
      this.close();
      return false;
    }
    return true;
  }

  private async beat(): Promise<void> {
    if (this.ended) return;
    if (this.options.stillAllowed) {
      const allowed = await this.options.stillAllowed().catch(() => true);
      if (!allowed) return this.close();
    }
    this.write(`: heartbeat ${new Date().toISOString()}\n\n`);
  }
}

/**
 * Opens Server-Sent Events responses and closes every open one before the HTTP server
 * shuts down: a stream is a request that never finishes, so without this `app.close()`
 * would wait for clients to hang up. Streams requested while shutting down are refused
 * with 503 so a client reconnects to another instance.
 */
@Injectable()
export class EventStreams implements BeforeApplicationShutdown {
  private readonly open_ = new Set<EventStream>();
  private shuttingDown = false;

  get openCount(): number {
    return this.open_.size;
  }

  open(request: FastifyRequest, reply: FastifyReply, options: EventStreamOptions): EventStream | undefined {
    if (this.shuttingDown) {
      void reply.status(503).header('retry-after', '1').header('content-type', 'application/problem+json; charset=utf-8').send(
        JSON.stringify({ type: 'about:blank', title: 'Service Unavailable', status: 503, detail: 'This instance is shutting down; reconnect.' }),
      );
      return undefined;
    }
    const stream = new EventStream(request, reply, options);
    this.open_.add(stream);
    stream.onClose(() => this.open_.delete(stream));
    stream.start();
    return stream;
  }

  closeAll(): void {
    for (const stream of [...this.open_]) stream.close();
  }

  beforeApplicationShutdown(): void {
    this.shuttingDown = true;
    this.closeAll();
  }
}
