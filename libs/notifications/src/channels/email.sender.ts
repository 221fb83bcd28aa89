import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { createTransport } from 'nodemailer';
import { APP_CONFIG, CircuitBreakers, type AppConfig, type CallOutcome, type RedisCircuitBreaker } from '@app/platform';
import { PermanentDeliveryError } from '../domain/notification.errors';
import { notificationsSettings } from '../notifications.settings';

export interface EmailMessage {
  to: string;
  toName: string;
  subject: string;
  text: string;
  html: string;
  /** Lets the mail server and the recipient's client thread and de-duplicate. */
  deliveryId: string;
}

type Transport = ReturnType<typeof createTransport>;

/** An SMTP reply with a code: 5xx rejects this message for good, 421 means the server is failing. */
function smtpCode(error: unknown): number | undefined {
  const code = (error as { responseCode?: unknown })?.responseCode;
  return typeof code === 'number' ? code : undefined;
}

function classify(error: unknown): CallOutcome {
  const code = smtpCode(error);
  // No code: connection refused, timeout, TLS failure: the server is the problem.
  if (code === undefined || code === 421) return 'failure';
  return 'neutral';
}

/**
 * Sends email through SMTP_URL with a pooled nodemailer transport, under a circuit breaker
 * for the mail server. Without SMTP_URL the channel is off and no email delivery is made.
 */
@Injectable()
export class EmailSender implements OnApplicationShutdown {
  private transport?: Transport;
  private readonly breaker: RedisCircuitBreaker;
  private readonly circuit: string;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig, breakers: CircuitBreakers) {
    this.breaker = breakers.create('notifications:smtp', {
      failureThreshold: notificationsSettings(config).NOTIFICATIONS_BREAKER_FAILURE_THRESHOLD,
      cooldownMs: notificationsSettings(config).NOTIFICATIONS_BREAKER_COOLDOWN_MS,
      probeTimeoutMs: 60_000,
    });
    const smtpUrl = notificationsSettings(config).SMTP_URL;
    this.circuit = smtpUrl ? new URL(smtpUrl).host : 'none';
  }

  get enabled(): boolean {
    return Boolean(notificationsSettings(this.config).SMTP_URL);
  }

  async send(message: EmailMessage): Promise<void> {
    if (!this.enabled) throw new PermanentDeliveryError('email is not configured (SMTP_URL)');
    try {
      await this.breaker.run(
        this.circuit,
        () =>
          this.connection().sendMail({
            from: notificationsSettings(this.config).NOTIFICATIONS_EMAIL_FROM,
            to: { name: message.toName, address: message.to },
            subject: message.subject,
            text: message.text,
            html: message.html,
            headers: { 'X-Delivery-Id': message.deliveryId },
          }),
        classify,
      );
    } catch (error) {
      const code = smtpCode(error);
      // 5xx: the server refuses this message or recipient; retrying cannot help.
      if (code !== undefined && code >= 500) throw new PermanentDeliveryError(`SMTP ${code}: ${(error as Error).message}`);
      throw error;
    }
  }

  onApplicationShutdown(): void {
    this.transport?.close();
  }

  private connection(): Transport {
    this.transport ??= createTransport({
      url: notificationsSettings(this.config).SMTP_URL,
      pool: true,
      maxConnections: Math.min(notificationsSettings(this.config).NOTIFICATIONS_DELIVERY_CONCURRENCY, 5),
      connectionTimeout: 5_000,
      greetingTimeout: 5_000,
      socketTimeout: 15_000,
    });
    return this.transport;
  }
}
