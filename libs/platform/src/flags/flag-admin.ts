import { Client } from 'pg';
import type { AppConfig } from '../config/app-config';
import { UsageError } from '../messaging/event-operations';
import type { DeclaredFlag, FlagDeclarations } from './flag-declarations';
import type { FlagRule } from './flag-rules';
import { PLATFORM_SCHEMA, platformDatabase } from './platform-database';

export interface FlagListing extends DeclaredFlag {
  rule?: FlagRule;
}

/**
 * What `npm run cli -- flags:*` does: reads and writes `platform.flags` as the platform
 * role. Every write fires the table's `flags_changed` notification, so running instances
 * apply it within milliseconds (or at their next reload, FLAGS_REFRESH_INTERVAL_MS, if
 * they missed it). Only declared keys are accepted.
 */
export class FlagAdmin {
  private readonly client: Client;
  private connected?: Promise<void>;

  constructor(
    config: AppConfig,
    private readonly declarations: FlagDeclarations,
  ) {
    const db = platformDatabase(config);
    this.client = new Client({ connectionString: db.url, connectionTimeoutMillis: db.connectTimeoutMs, application_name: 'mm:platform:flags-cli' });
  }

  /** The declaration of `key`, or a usage error naming it and listing the declared ones. */
  assertDeclared(key: string | undefined): DeclaredFlag {
    const known = [...this.declarations.keys()].sort();
    if (!key) throw new UsageError(`a flag key is needed (declared flags: ${known.join(', ') || 'none'})`);
    const declared = this.declarations.get(key);
    if (!declared) throw new UsageError(`unknown flag "${key}": no module manifest declares it (declared flags: ${known.join(', ') || 'none'})`);
    return declared;
  }

  async list(): Promise<FlagListing[]> {
    const rules = new Map((await this.rules()).map((r) => [r.key, r]));
    return [...this.declarations.values()].sort((a, b) => a.key.localeCompare(b.key)).map((d) => ({ ...d, rule: rules.get(d.key) }));
  }

  /** Rules in the table whose key no manifest declares any more (left by removed code). */
  async undeclared(): Promise<FlagRule[]> {
    return (await this.rules()).filter((r) => !this.declarations.has(r.key));
  }

  async get(key: string): Promise<FlagRule | undefined> {
    return (await this.rules()).find((r) => r.key === key);
  }

  /** `on` or `off` for everyone; `default` removes the override (the declared default applies). */
  async set(key: string, state: 'on' | 'off' | 'default'): Promise<void> {
    this.assertDeclared(key);
    await this.connect();
    if (state === 'default') {
      await this.client.query(`DELETE FROM ${PLATFORM_SCHEMA}.flags WHERE key = $1`, [key]);
      return;
    }
    await this.client.query(
      `INSERT INTO ${PLATFORM_SCHEMA}.flags (key, state, percentage, user_ids) VALUES ($1, $2, $3, '{}')
       ON CONFLICT (key) DO UPDATE SET state = excluded.state, percentage = excluded.percentage, user_ids = excluded.user_ids, updated_at = now()`,
      [key, state, state === 'on' ? 100 : 0],
    );
  }

  /** On for `percentage` % of users (stable per user id) and for the named users; `userIds` undefined keeps the current list. */
  async rollout(key: string, percentage: number, userIds?: string[]): Promise<void> {
    this.assertDeclared(key);
    if (!Number.isInteger(percentage) || percentage < 0 || percentage > 100) {
      throw new UsageError(`rollout percentage "${percentage}" must be an integer from 0 to 100`);
    }
    await this.connect();
    await this.client.query(
      `INSERT INTO ${PLATFORM_SCHEMA}.flags (key, state, percentage, user_ids) VALUES ($1, 'rollout', $2, coalesce($3::text[], '{}'))
       ON CONFLICT (key) DO UPDATE SET state = 'rollout', percentage = excluded.percentage,
         user_ids = coalesce($3::text[], CASE WHEN flags.state = 'rollout' THEN flags.user_ids ELSE '{}' END), updated_at = now()`,
      [key, percentage, userIds ?? null],
    );
  }

  async close(): Promise<void> {
    if (this.connected) await this.client.end().catch(() => undefined);
  }

  private async rules(): Promise<FlagRule[]> {
    await this.connect();
    const { rows } = await this.client.query<{ key: string; state: FlagRule['state']; percentage: number; user_ids: string[]; updated_at: Date }>(
      `SELECT key, state, percentage, user_ids, updated_at FROM ${PLATFORM_SCHEMA}.flags ORDER BY key`,
    );
    return rows.map((r) => ({ key: r.key, state: r.state, percentage: r.percentage, userIds: r.user_ids, updatedAt: r.updated_at }));
  }

  private async connect(): Promise<void> {
    this.connected ??= this.client.connect().then(() => undefined);
    await this.connected;
  }
}
