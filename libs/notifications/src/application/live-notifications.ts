import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import {
  APP_CONFIG,
  EventStreams,
  Flags,
  RedisPubSub,
  ROOT_LOGGER,
  SessionRevocationStore,
  type AppConfig,
  type AuthenticatedUser,
  type EventStream,
} from '@app/platform';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { NotificationView } from '../domain/notification';
import { NotificationsService } from './notifications.service';
import { notificationsSettings } from '../notifications.settings';
import { NOTIFICATIONS_FLAGS } from '../notifications.flags';

/** What travels on a user's live channel. */
type LiveMessage = { type: 'notification'; notification: NotificationView } | { type: 'erased' };

/** Last event of a stream ended by the `notifications.live-stream` kill switch. */
const SWITCHED_OFF = { event: 'closed', data: { reason: 'live notifications are switched off' } };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Live notifications across instances: whichever instance's consumer commits a
 * notification publishes it on the user's Redis channel (`<prefix>:notifications:live:<userId>`),
 * and every instance holding a stream for that user subscribes to the channel. A channel
 * per user means an instance hears only about the users it is streaming to.
 *
 * Pub/sub is at most once: a stream that reconnects sends `Last-Event-ID`, and the
 * notifications it missed are replayed from Postgres before live ones.
 */
@Injectable()
export class LiveNotifications implements OnModuleInit, OnModuleDestroy {
  /** Streams this instance serves, so the kill switch can end them. */
  private readonly open_ = new Map<EventStream, string>();
  private unwatch?: () => void;

  constructor(
    private readonly pubsub: RedisPubSub,
    private readonly streams: EventStreams,
    private readonly revocations: SessionRevocationStore,
    private readonly notifications: NotificationsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(ROOT_LOGGER) private readonly logger: Logger,
    private readonly flags: Flags,
  ) {}

  /** Kill switch off (docs/architecture.md, "Feature flags"): open streams get a `closed` event and end. */
  onModuleInit(): void {
    this.unwatch = this.flags.watch(NOTIFICATIONS_FLAGS.liveStream, () => void this.closeSwitchedOff());
  }

  /** Ends each open stream whose user no longer has the flag (all of them when it is off). */
  private async closeSwitchedOff(): Promise<void> {
    let closed = 0;
    for (const [stream, userId] of [...this.open_]) {
      if (await this.flags.isEnabled(NOTIFICATIONS_FLAGS.liveStream, { userId })) continue;
      stream.close(SWITCHED_OFF);
      closed += 1;
    }
    if (closed) this.logger.info({ closed }, 'live notification streams closed: switched off');
  }

  onModuleDestroy(): void {
    this.unwatch?.();
  }

  private channel(userId: string): string {
    return this.pubsub.channel(`notifications:live:${userId}`);
  }

  /** After commit only; best effort (the row is the truth, the stream a courtesy). */
  publishCreated(userId: string, notification: NotificationView): void {
    this.publish(userId, { type: 'notification', notification });
  }

  /** Ends the erased user's open streams on every instance. */
  publishErased(userId: string): void {
    this.publish(userId, { type: 'erased' });
  }

  private publish(userId: string, message: LiveMessage): void {
    void this.pubsub
      .publish(this.channel(userId), JSON.stringify(message))
      .catch((error: unknown) => this.logger.warn({ err: error, userId }, 'live notification not published'));
  }

  /**
   * Serves `GET /v1/notifications/stream` for the caller until either side closes it, the
   * session ends, or the access token expires. Beyond the caller's or this instance's
   * stream cap it throws StreamLimitError (429) before any work.
   */
  async open(caller: AuthenticatedUser, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    // Taken before the first await: parallel opens are counted one by one, none slips past the cap.
    const slot = this.streams.reserve(caller.userId);
    const lastEventId = request.headers['last-event-id'];
    if (!(await this.flags.isEnabled(NOTIFICATIONS_FLAGS.liveStream, { userId: caller.userId }))) {
      void reply.status(503).header('retry-after', '60').header('content-type', 'application/problem+json; charset=utf-8').send(
        JSON.stringify({
          type: '/problems/notifications/live-stream-off',
          title: 'Service Unavailable',
          status: 503,
          detail: 'Live notifications are switched off for now; GET /v1/notifications still lists them.',
          instance: '/v1/notifications/stream',
          code: 'NOTIFICATIONS.LIVE_STREAM_OFF',
        }),
      );
      return;
    }
    const replayAfter = typeof lastEventId === 'string' && UUID.test(lastEventId) ? lastEventId : undefined;
    // Live messages wait in `early` until the replay is written, so the client sees them in order.
    const state: { stream?: EventStream; early?: LiveMessage[] } = { early: [] };
    const seen = new Set<string>();
    const deliver = (message: LiveMessage) => {
      const { stream, early } = state;
      if (early || !stream) return void early?.push(message);
      if (message.type === 'erased') return stream.close();
      if (seen.has(message.notification.id)) return;
      stream.send({ id: message.notification.id, event: 'notification', data: message.notification });
    };

    // Subscribe before anything else, so nothing committed from now on can be missed.
    let unsubscribe: () => void;
    try {
      unsubscribe = await this.pubsub.subscribe(this.channel(caller.userId), (text) => {
        try {
          deliver(JSON.parse(text) as LiveMessage);
        } catch {
          // Not ours to interpret; ignore.
        }
      });
    } catch (error) {
      slot.release();
      this.logger.warn({ err: error, userId: caller.userId }, 'live stream refused: Redis did not confirm the subscription');
      void reply.status(503).header('retry-after', '5').header('content-type', 'application/problem+json; charset=utf-8').send(
        JSON.stringify({ type: 'about:blank', title: 'Service Unavailable', status: 503, detail: 'Live notifications are unavailable; retry shortly.' }),
      );
      return;
    }

    const stream = this.streams.open(request, reply, {
      heartbeatMs: notificationsSettings(this.config).NOTIFICATIONS_SSE_HEARTBEAT_MS,
      // A signed-out (or erased) session loses its stream at the next heartbeat.
      stillAllowed: async () => !(await this.revocations.isRevoked(caller.sessionId)),
      // The token's authority ends at its exp: say why, so the client reconnects with a fresh token.
      endAt:
        caller.expiresAt === undefined
          ? undefined
          : { at: caller.expiresAt, event: { event: 'token-expired', data: { reason: 'token-expired', expiredAt: new Date(caller.expiresAt).toISOString() } } },
    }, slot);
    if (!stream) return unsubscribe();
    state.stream = stream;
    stream.onClose(unsubscribe);
    this.open_.set(stream, caller.userId);
    stream.onClose(() => this.open_.delete(stream));
    // Switched off while this stream was being set up: the watcher did not see it yet.
    if (!(await this.flags.isEnabled(NOTIFICATIONS_FLAGS.liveStream, { userId: caller.userId }))) return stream.close(SWITCHED_OFF);

    if (replayAfter) {
      const missed = await this.notifications.newerThan(caller.userId, replayAfter).catch(() => []);
      for (const notification of missed) {
        seen.add(notification.id);
        stream.send({ id: notification.id, event: 'notification', data: notification });
      }
    }
    const buffered = state.early ?? [];
    state.early = undefined;
    for (const message of buffered) deliver(message);
  }
}
