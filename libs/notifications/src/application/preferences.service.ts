import { randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { ValidationFailedError } from '@app/platform';
import type { DataSource } from 'typeorm';
import { WebhookSender } from '../channels/webhook.sender';

export interface Preferences {
  email: boolean;
  webhookUrl: string | null;
}

export interface UpdatedPreferences extends Preferences {
  /** Present only in the answer that set a new webhook URL: the one time it is shown. */
  webhookSecret?: string;
}

const DEFAULTS: Preferences = { email: true, webhookUrl: null };

/** `whsec_` + 256 random bits: the key receivers verify X-Signature with. */
function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

@Injectable()
export class PreferencesService {
  constructor(
    @InjectDataSource('notifications') private readonly dataSource: DataSource,
    private readonly webhooks: WebhookSender,
  ) {}

  async get(userId: string): Promise<Preferences> {
    const [row] = await this.dataSource.query<{ email_enabled: boolean; webhook_url: string | null }[]>(
      'SELECT email_enabled, webhook_url FROM notifications.preferences WHERE user_id = $1',
      [userId],
    );
    return row ? { email: row.email_enabled, webhookUrl: row.webhook_url } : { ...DEFAULTS };
  }

  /**
   * Replaces the preferences. A new or changed webhook URL gets a new secret, returned
   * this once; the same URL keeps its secret; no URL, no secret.
   */
  async update(userId: string, wanted: Preferences): Promise<UpdatedPreferences> {
    const webhookUrl = wanted.webhookUrl === null ? null : wanted.webhookUrl.trim();
    if (webhookUrl !== null) this.checkWebhookUrl(webhookUrl);
    return this.dataSource.transaction(async (manager) => {
      await manager.query('INSERT INTO notifications.preferences (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING', [userId]);
      const [current] = await manager.query<{ webhook_url: string | null; webhook_secret: string | null }[]>(
        'SELECT webhook_url, webhook_secret FROM notifications.preferences WHERE user_id = $1 FOR UPDATE',
        [userId],
      );
      const changed = webhookUrl !== null && webhookUrl !== current.webhook_url;
      const secret = webhookUrl === null ? null : changed ? newWebhookSecret() : current.webhook_secret;
      await manager.query(
        `UPDATE notifications.preferences
            SET email_enabled = $2, webhook_url = $3, webhook_secret = $4, updated_at = now()
          WHERE user_id = $1`,
        [userId, wanted.email, webhookUrl, secret],
      );
      return { email: wanted.email, webhookUrl, ...(changed && secret ? { webhookSecret: secret } : {}) };
    });
  }

  /**
   * The URL's form and a literal internal address only: no DNS here. Whether a name
   * resolves, and to what, is checked at every delivery (WebhookAddressPolicy), where the
   * answer for "does not resolve" and "resolves internally" is the same.
   */
  private checkWebhookUrl(raw: string): void {
    const invalid = (message: string) => new ValidationFailedError([{ field: 'webhookUrl', message }]);
    const problem = this.webhooks.policy.checkSyntax(raw);
    if (problem) throw invalid(problem);
    if (this.webhooks.policy.isInternalLiteral(new URL(raw).hostname)) {
      throw invalid('must not point to a loopback, private, link-local or metadata address');
    }
  }
}
