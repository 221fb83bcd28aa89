import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, CircuitBreakers, type AppConfig, type RedisCircuitBreaker } from '@app/platform';
import { DestinationRefusedError } from '../domain/notification.errors';
import { WebhookAddressPolicy, type ResolvedDestination } from './webhook-address.policy';
import { notificationsSettings } from '../notifications.settings';

export interface WebhookRequest {
  url: string;
  secret: string;
  /** The exact bytes that are signed and sent. */
  body: string;
  deliveryId: string;
  attempt: number;
  /** The user whose webhook this is: half of the circuit breaker's key. */
  ownerId: string;
}

/** A non-2xx answer; the status is kept for the delivery's last_error. */
export class WebhookHttpError extends Error {
  override name = 'WebhookHttpError';
  constructor(readonly status: number) {
    super(`webhook answered HTTP ${status}`);
  }
}

/** `sha256=<hex HMAC-SHA256 of the body>`: what receivers recompute with their secret. */
export function webhookSignature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

const MAX_RESPONSE_BYTES = 64 * 1024;

/**
 * POSTs signed JSON to a user's webhook. Each call: checks the destination (SSRF policy)
 * and pins the connection to the checked address, runs under the circuit breaker of its
 * destination and owner (`host:port/userId`, shared by every instance through Redis), and is bounded by
 * NOTIFICATIONS_WEBHOOK_TIMEOUT_MS from DNS to the last byte. Redirects are not followed:
 * a 3xx could point anywhere, the policy included.
 */
@Injectable()
export class WebhookSender {
  readonly policy: WebhookAddressPolicy;
  private readonly breaker: RedisCircuitBreaker;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig, breakers: CircuitBreakers) {
    this.policy = new WebhookAddressPolicy(notificationsSettings(config).NOTIFICATIONS_ALLOW_PRIVATE_WEBHOOKS);
    this.breaker = breakers.create('notifications:webhook', {
      failureThreshold: notificationsSettings(config).NOTIFICATIONS_BREAKER_FAILURE_THRESHOLD,
      cooldownMs: notificationsSettings(config).NOTIFICATIONS_BREAKER_COOLDOWN_MS,
      probeTimeoutMs: notificationsSettings(config).NOTIFICATIONS_WEBHOOK_TIMEOUT_MS * 2,
    });
  }

  /**
   * The breaker is keyed by destination and owner: one user's broken endpoint on a shared
   * host (a hooks SaaS, a chat service) must not stop other users' deliveries there. Its
   * Redis state expires (RedisCircuitBreaker's STATE_TTL_MS after the last failure, deleted
   * on success), so the keys cannot pile up however many users and hosts come and go.
   */
  static circuitOf(url: URL, ownerId: string): string {
    return `${url.host}/${ownerId}`;
  }

  async send(request: WebhookRequest): Promise<void> {
    const url = new URL(request.url);
    // A refused address is our decision, not the host failing: it does not count for the breaker.
    await this.breaker.run(WebhookSender.circuitOf(url, request.ownerId), () => this.post(url, request), (error) =>
      error instanceof DestinationRefusedError ? 'neutral' : 'failure',
    );
  }

  private async post(url: URL, request: WebhookRequest): Promise<void> {
    const timeoutMs = notificationsSettings(this.config).NOTIFICATIONS_WEBHOOK_TIMEOUT_MS;
    const signal = AbortSignal.timeout(timeoutMs);
    const destination = await Promise.race([
      this.policy.destination(url.hostname),
      // A name that takes too long to resolve is refused like one that does not resolve.
      new Promise<never>((_, reject) =>
        signal.addEventListener('abort', () => reject(new DestinationRefusedError(url.hostname, 'resolution timed out')), { once: true }),
      ),
    ]);
    const body = Buffer.from(request.body);
    await new Promise<void>((resolve, reject) => {
      const client = url.protocol === 'https:' ? https : http;
      const req = client.request(
        url,
        {
          method: 'POST',
          signal,
          agent: false,
          lookup: pinnedLookup(destination),
          headers: {
            'content-type': 'application/json',
            'content-length': body.length,
            'user-agent': 'mm-notifications/1',
            'x-signature': webhookSignature(request.secret, request.body),
            'x-delivery-id': request.deliveryId,
            'x-delivery-attempt': request.attempt,
          },
        },
        (response) => {
          let received = 0;
          response.on('data', (chunk: Buffer) => {
            received += chunk.length;
            if (received > MAX_RESPONSE_BYTES) response.destroy();
          });
          response.on('error', () => undefined);
          response.on('close', () => {
            const status = response.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve();
            else reject(new WebhookHttpError(status));
          });
        },
      );
      req.on('error', (error: Error) => reject(error.name === 'AbortError' ? new Error(`webhook timed out after ${timeoutMs} ms`) : error));
      req.end(body);
    });
  }
}

/** Connects to the address the policy approved, whatever DNS says by then. */
function pinnedLookup(destination: ResolvedDestination): LookupFunction {
  return (_hostname, options, callback) => {
    if ((options as { all?: boolean }).all) {
      (callback as unknown as (err: null, addresses: { address: string; family: number }[]) => void)(null, [destination]);
    } else {
      callback(null, destination.address, destination.family);
    }
  };
}
