import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { APP_CONFIG, CircuitOpenError, execute, inConsumerSpan, ROOT_LOGGER, type AppConfig } from '@app/platform';
import type { Job } from 'bull';
import type { DataSource } from 'typeorm';
import type { Logger } from 'pino';
import { toView } from '../application/notifications.service';
import { EmailSender } from '../channels/email.sender';
import { WebhookSender } from '../channels/webhook.sender';
import type { DeliveryChannel, DeliveryStatus, NotificationView } from '../domain/notification';
import { PermanentDeliveryError } from '../domain/notification.errors';
import type { DeliveryJob } from '../notifications.queues';
import { notificationsSettings } from '../notifications.settings';

interface DeliveryRow {
  id: string;
  channel: DeliveryChannel;
  status: DeliveryStatus;
  attempts: number;
  user_id: string;
  notification_id: string;
  kind: string;
  title: string;
  body: string;
  data: Record<string, unknown>;
  read_at: Date | null;
  created_at: Date;
  recipient_email: string | null;
  recipient_name: string | null;
  email_enabled: boolean | null;
  webhook_url: string | null;
  webhook_secret: string | null;
}

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/**
 * One attempt at one delivery (a Bull job on `notifications.email` or `notifications.webhook`).
 * The delivery row is the truth: a job whose delivery is gone (erased), sent or dead ends
 * without sending. A failure is recorded (`failed`, attempts, last error) and rethrown so
 * Bull retries with jittered backoff; the last attempt, or a failure no retry can fix,
 * marks it `dead` and leaves the job in Bull's failed set. An open circuit breaker counts
 * as a failed attempt without any network call. Preferences are read at each attempt: a
 * changed webhook URL (and its new secret) is used from then on; a removed one ends the
 * delivery as `dead`.
 */
@Injectable()
export class DeliveryProcessor {
  constructor(
    @InjectDataSource('notifications') private readonly dataSource: DataSource,
    private readonly email: EmailSender,
    private readonly webhooks: WebhookSender,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(ROOT_LOGGER) private readonly logger: Logger,
  ) {}

  /** In a span that continues the trace of the event that created the delivery (README, "Tracing"). */
  process(job: Job<DeliveryJob>): Promise<void> {
    const attributes = () => ({
      'messaging.system': 'bull',
      'messaging.operation.type': 'process',
      'messaging.destination.name': job.queue.name,
      'messaging.message.id': job.data.deliveryId,
    });
    return inConsumerSpan(`process ${job.queue.name}`, job.data.trace, attributes, () => this.attempt(job));
  }

  private async attempt(job: Job<DeliveryJob>): Promise<void> {
    const delivery = await this.load(job.data.deliveryId);
    if (!delivery || delivery.status === 'sent' || delivery.status === 'dead') return;
    const attempt = delivery.attempts + 1;
    const log = { deliveryId: delivery.id, channel: delivery.channel, notificationId: delivery.notification_id, attempt };
    try {
      if (delivery.channel === 'email') await this.sendEmail(delivery);
      else await this.sendWebhook(delivery, attempt);
    } catch (error) {
      const maxAttempts = notificationsSettings(this.config).NOTIFICATIONS_DELIVERY_MAX_ATTEMPTS;
      const final =
        error instanceof PermanentDeliveryError || attempt >= maxAttempts || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      await this.record(delivery.id, final ? 'dead' : 'failed', describe(error));
      if (final) {
        // Bull must not retry a permanent failure; the job stays in the failed set (dead letters).
        await job.discard();
        this.logger.warn({ ...log, err: error }, 'delivery dead');
      } else {
        this.logger.info({ ...log, err: error, breakerOpen: error instanceof CircuitOpenError }, 'delivery attempt failed; will retry');
      }
      throw error;
    }
    await this.record(delivery.id, 'sent', null);
    this.logger.debug(log, 'delivery sent');
  }

  private async sendEmail(d: DeliveryRow): Promise<void> {
    if (d.email_enabled === false) throw new PermanentDeliveryError('email switched off by the user before delivery');
    if (!d.recipient_email) throw new PermanentDeliveryError('no email address known for the user');
    const text = `${d.body}\n\n--\nYou receive this because email notifications are on in your account preferences.`;
    const html =
      `<!doctype html><html><body><h1 style="font-size:18px">${escapeHtml(d.title)}</h1>` +
      `<p>${escapeHtml(d.body)}</p>` +
      `<p style="color:#777;font-size:12px">You receive this because email notifications are on in your account preferences.</p>` +
      `</body></html>`;
    await this.email.send({
      to: d.recipient_email,
      toName: d.recipient_name ?? '',
      subject: d.title,
      text,
      html,
      deliveryId: d.id,
    });
  }

  private async sendWebhook(d: DeliveryRow, attempt: number): Promise<void> {
    if (!d.webhook_url || !d.webhook_secret) throw new PermanentDeliveryError('webhook removed by the user before delivery');
    const notification: NotificationView = toView({ ...d, id: d.notification_id });
    // The same bytes at every attempt, so receivers can de-duplicate on deliveryId.
    const body = JSON.stringify({ type: 'notification.created', deliveryId: d.id, userId: d.user_id, notification });
    await this.webhooks.send({ url: d.webhook_url, secret: d.webhook_secret, body, deliveryId: d.id, attempt, ownerId: d.user_id });
  }

  private async load(deliveryId: string): Promise<DeliveryRow | undefined> {
    const [row] = await this.dataSource.query<DeliveryRow[]>(
      `SELECT d.id, d.channel, d.status, d.attempts, d.user_id, d.notification_id,
              n.kind, n.title, n.body, n.data, n.read_at, n.created_at,
              r.email AS recipient_email, r.name AS recipient_name,
              p.email_enabled, p.webhook_url, p.webhook_secret
         FROM notifications.deliveries d
         JOIN notifications.notifications n ON n.id = d.notification_id AND n.created_at = d.notification_created_at
         LEFT JOIN notifications.recipients r ON r.user_id = d.user_id
         LEFT JOIN notifications.preferences p ON p.user_id = d.user_id
        WHERE d.id = $1`,
      [deliveryId],
    );
    return row;
  }

  private async record(id: string, status: DeliveryStatus, error: string | null): Promise<void> {
    await execute(
      this.dataSource,
      `UPDATE notifications.deliveries
          SET status = $2, attempts = attempts + 1, last_error = $3, updated_at = now(),
              sent_at = CASE WHEN $2 = 'sent' THEN now() ELSE sent_at END
        WHERE id = $1 AND status IN ('pending', 'failed')`,
      [id, status, error],
    );
  }
}

function describe(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.slice(0, 1000);
}
