import { Type } from '@sinclair/typebox';
import type { ModuleManifest } from '@app/platform';
import { OrderEvents } from '@app/orders/contracts';
import { UserEvents } from '@app/users/contracts';
import { NOTIFICATIONS_FLAGS } from './notifications.flags';

/** An integer variable with its default and bounds. */
const Int = (def: number, min: number, max: number) => Type.Integer({ default: def, minimum: min, maximum: max });

/**
 * The notifications module's declarations: read by the event routing of every deployable
 * and by the boundary checks (docs/architecture.md, "Module manifests").
 */
export const notificationsManifest = {
  name: 'notifications',
  schema: 'notifications',
  mayUse: ['users', 'orders'],
  // notifications.queues.ts: delivery channels and the retention job.
  queues: ['notifications.email', 'notifications.webhook', 'notifications.retention'],
  events: {
    publishes: [],
    consumes: [UserEvents.registered, UserEvents.deleted, ...Object.values(OrderEvents)],
  },
  config: Type.Object({
    /** Outgoing mail server (`smtp://user:pass@host:587`, `smtps://...`). Unset: no email channel. */
    SMTP_URL: Type.Optional(Type.String({ pattern: '^smtps?://' })),
    NOTIFICATIONS_EMAIL_FROM: Type.String({ minLength: 3, default: 'Notifications <no-reply@localhost>' }),
    /** Attempts per email/webhook delivery before it is marked `dead`. */
    NOTIFICATIONS_DELIVERY_MAX_ATTEMPTS: Int(8, 1, 50),
    /** Base of the jittered exponential delay between delivery attempts (capped at 5 min). */
    NOTIFICATIONS_DELIVERY_BACKOFF_BASE_MS: Int(5000, 1, 600000),
    /** Delivery jobs per channel queue handled at once per instance. */
    NOTIFICATIONS_DELIVERY_CONCURRENCY: Int(8, 1, 256),
    /** How often pending deliveries without a job are looked for (a commit also wakes the dispatcher). */
    NOTIFICATIONS_DISPATCH_INTERVAL_MS: Int(1000, 10, 600000),
    /** Upper bound on one webhook call: DNS, connect, request and response (below Bull's 30 s job lock). */
    NOTIFICATIONS_WEBHOOK_TIMEOUT_MS: Int(5000, 100, 25000),
    /** Lets webhooks reach loopback, private, link-local and metadata addresses (tests, local dev). */
    NOTIFICATIONS_ALLOW_PRIVATE_WEBHOOKS: Type.Boolean({ default: false }),
    /** Consecutive failures to one destination (host:port) that open its circuit breaker. */
    NOTIFICATIONS_BREAKER_FAILURE_THRESHOLD: Int(5, 1, 1000),
    /** How long an open breaker rejects calls before one half-open probe is let through. */
    NOTIFICATIONS_BREAKER_COOLDOWN_MS: Int(30000, 10, 3_600_000),
    /** Interval of the comment lines that keep idle event streams (SSE) open through proxies. */
    NOTIFICATIONS_SSE_HEARTBEAT_MS: Int(15000, 10, 300000),
    /**
     * Notifications (read or not) older than this go: the retention job drops each month's
     * partition once the whole month is older (docs/architecture.md, "Notification partitions").
     */
    NOTIFICATIONS_RETENTION_DAYS: Int(90, 1, 36500),
    NOTIFICATIONS_RETENTION_INTERVAL_MS: Int(3_600_000, 100, 7 * 86_400_000),
    /** Rows per DELETE statement when the retention job clears expired rows out of the DEFAULT partition. */
    NOTIFICATIONS_RETENTION_BATCH_SIZE: Int(1000, 1, 100000),
    /** Months of partitions kept ready beyond the current one (created at boot and by the retention job). */
    NOTIFICATIONS_PARTITIONS_AHEAD: Int(3, 1, 60),
  }),
  flags: {
    [NOTIFICATIONS_FLAGS.emailDelivery]: { default: true, description: 'email delivery (off: the queue pauses; nothing is lost, it all goes out when back on)' },
    [NOTIFICATIONS_FLAGS.webhookDelivery]: { default: true, description: 'webhook delivery (off: the queue pauses; nothing is lost, it all goes out when back on)' },
    [NOTIFICATIONS_FLAGS.liveStream]: { default: true, description: 'live notification stream (off: new streams 503, open ones are sent `closed` and end)' },
  },
} as const satisfies ModuleManifest;
