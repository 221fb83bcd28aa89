import { Inject, Injectable, type BeforeApplicationShutdown } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { TooManyRequestsError } from '../auth/auth.errors';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';

export interface EventStreamOptions {
  /** Interval of the comment lines that keep proxies and clients from timing out. */
  heartbeatMs: number;
  /** Called at each heartbeat; resolving false ends the stream (e.g. the session ended). */
  stillAllowed?: () => Promise<boolean>;
  /** Reconnection delay suggested to EventSource clients. */
  retryMs?: number;
  /** A client that lets this much output pile up unread is disconnected. */
  maxBufferedBytes?: number;
  /**
   * Ends the stream at `at` (epoch ms) after sending `event`, e.g. when the access token
   * that opened it expires: a stream must not outlive the authority it was opened with.
   */
  endAt?: { at: number; event: ServerSentEvent };
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
  private deadline?: NodeJS.Timeout;
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
    const endAt = this.options.endAt;
    if (endAt) {
      // setTimeout fires at once beyond 2^31-1 ms (~24.8 days); no token lives that long here.
      const delay = Math.min(Math.max(0, endAt.at - Date.now()), 2 ** 31 - 1);
      this.deadline = setTimeout(() => {
        this.send(endAt.event);
        this.close();
      }, delay);
      this.deadline.unref();
    }
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
    clearTimeout(this.deadline);
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

/** A place among this instance's streams, taken before a stream opens; `release` is idempotent. */
export interface StreamSlot {
  release(): void;
}

/** 429 for a stream beyond STREAM_MAX_PER_USER or STREAM_MAX_PER_INSTANCE. */
export class StreamLimitError extends TooManyRequestsError {
  constructor(scope: 'user' | 'instance') {
    super(
      // A user's own streams free a place only when one of them closes; another instance may have room now.
      scope === 'user' ? 30 : 5,
      scope === 'user' ? 'STREAM.TOO_MANY_PER_USER' : 'STREAM.INSTANCE_FULL',
      scope === 'user'
        ? 'You have too many live streams open; close one before opening another.'
        : 'This instance serves as many live streams as it may; retry shortly.',
    );
  }
}

/**
 * Opens Server-Sent Events responses and closes every open one before the HTTP server
 * shuts down: a stream is a request that never finishes, so without this `app.close()`
 * would wait for clients to hang up. Streams requested while shutting down are refused
 * with 503 so a client reconnects to another instance.
 *
 * Streams are capped per owner (STREAM_MAX_PER_USER) and per instance
 * (STREAM_MAX_PER_INSTANCE). Both counts live in this process: `reserve` checks and
 * counts in one synchronous step, so simultaneous requests cannot all pass a check made
 * before any of them is counted. The per-user cap is therefore per instance (a user may
 * hold up to that many streams on each instance); a count shared in Redis would outlive a
 * crashed instance's streams (docs/api.md, "Live stream").
 */
@Injectable()
export class EventStreams implements BeforeApplicationShutdown {
  private readonly open_ = new Set<EventStream>();
  private readonly slotsByOwner = new Map<string, number>();
  private slots = 0;
  private shuttingDown = false;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  get openCount(): number {
    return this.open_.size;
  }

  /** Places taken (streams open or about to open), for `owner` or in all. */
  reservedCount(owner?: string): number {
    return owner === undefined ? this.slots : (this.slotsByOwner.get(owner) ?? 0);
  }

  /**
   * Takes a place for one more stream of `owner` (a user id) or throws StreamLimitError
   * (429). Call it before any await that precedes `open`, and release the slot if the
   * stream is not opened after all; `open` releases it when the stream closes.
   */
  reserve(owner: string): StreamSlot {
    if (this.slots >= this.config.env.STREAM_MAX_PER_INSTANCE) throw new StreamLimitError('instance');
    const held = this.slotsByOwner.get(owner) ?? 0;
    if (held >= this.config.env.STREAM_MAX_PER_USER) throw new StreamLimitError('user');
    this.slots++;
    this.slotsByOwner.set(owner, held + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.slots--;
        const left = (this.slotsByOwner.get(owner) ?? 1) - 1;
        // No entry for an owner without streams: the map stays as small as the open streams.
        if (left > 0) this.slotsByOwner.set(owner, left);
        else this.slotsByOwner.delete(owner);
      },
    };
  }

  /** Opens the stream in `slot` (from `reserve`); the slot is released when the stream closes. */
  open(request: FastifyRequest, reply: FastifyReply, options: EventStreamOptions, slot: StreamSlot): EventStream | undefined {
    if (this.shuttingDown) {
      slot.release();
      void reply.status(503).header('retry-after', '1').header('content-type', 'application/problem+json; charset=utf-8').send(
        JSON.stringify({ type: 'about:blank', title: 'Service Unavailable', status: 503, detail: 'This instance is shutting down; reconnect.' }),
      );
      return undefined;
    }
    const stream = new EventStream(request, reply, options);
    this.open_.add(stream);
    stream.onClose(() => {
      this.open_.delete(stream);
      slot.release();
    });
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
