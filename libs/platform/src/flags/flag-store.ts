import { Client, Pool } from 'pg';
import type { Logger } from 'pino';
import type { FlagRule } from './flag-rules';
import { FLAGS_CHANNEL, PLATFORM_SCHEMA, type PlatformDatabase } from './platform-database';

interface FlagRow {
  key: string;
  state: FlagRule['state'];
  percentage: number;
  user_ids: string[];
  updated_at: Date;
}

const LISTEN_RETRY_MS = 1000;

/**
 * This instance's copy of `platform.flags`: the whole table (a few rows) held in memory so
 * that evaluating a flag costs no I/O. It is reloaded
 *
 * - at once when Postgres notifies `flags_changed` (a statement trigger on the table, so a
 *   change by the CLI or by hand reaches every instance within milliseconds), and
 * - every `refreshMs` regardless (FLAGS_REFRESH_INTERVAL_MS), which bounds staleness when
 *   a notification is missed: the listener was reconnecting, or the table was changed
 *   with the trigger disabled.
 *
 * If Postgres is unreachable the last copy stays in use (at boot: none, so every flag has
 * its declared default) and the next reload tries again; flags never block a request.
 * The pattern is the outbox relay's (docs/architecture.md, "Events and routing").
 */
export class FlagStore {
  private rules = new Map<string, FlagRule>();
  private readonly pool: Pool;
  private listener?: Client;
  private timer?: NodeJS.Timeout;
  private reconnectTimer?: NodeJS.Timeout;
  private stopped = false;
  private running?: Promise<void>;
  private again = false;
  private failing = false;
  /** When the last reload succeeded (ms since epoch), 0 before the first. */
  loadedAt = 0;

  constructor(
    private readonly db: PlatformDatabase,
    private readonly refreshMs: number,
    private readonly logger: Logger,
    /** Called after a reload that changed some rules, with their keys. */
    private readonly onChange: (changed: string[]) => void,
  ) {
    this.pool = new Pool({
      connectionString: db.url,
      max: 2,
      connectionTimeoutMillis: db.connectTimeoutMs,
      statement_timeout: db.statementTimeoutMs,
      application_name: 'mm:platform:flags',
      // Idle connections never keep the process alive (see startListening).
      allowExitOnIdle: true,
    });
    // An idle client's error (server restart) must not crash the process; the next query reconnects.
    this.pool.on('error', () => undefined);
  }

  get(key: string): FlagRule | undefined {
    return this.rules.get(key);
  }

  all(): ReadonlyMap<string, FlagRule> {
    return this.rules;
  }

  /** First load (bounded by the connect and statement timeouts), then the periodic reload. */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
  }

  /**
   * LISTEN for changes. Separate from start(): an application whose boot fails after
   * start() is never shut down, and an open listener would keep its process alive.
   */
  startListening(): void {
    void this.listen();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.reconnectTimer);
    await this.running?.catch(() => undefined);
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
    await this.pool.end().catch(() => undefined);
  }

  /** Reloads now, or once more right after the reload in progress (never two at once, never out of order). */
  refresh(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.load();
      } while (this.again && !this.stopped);
    })().finally(() => (this.running = undefined));
    return this.running;
  }

  private async load(): Promise<void> {
    let rows: FlagRow[];
    try {
      rows = (await this.pool.query<FlagRow>(`SELECT key, state, percentage, user_ids, updated_at FROM ${PLATFORM_SCHEMA}.flags`)).rows;
    } catch (error) {
      if (!this.failing) this.logger.warn({ err: error }, 'feature flags could not be read; the last known values stay in use');
      this.failing = true;
      return;
    }
    if (this.failing) this.logger.info('feature flags readable again');
    this.failing = false;
    const next = new Map<string, FlagRule>(
      rows.map((r) => [r.key, { key: r.key, state: r.state, percentage: r.percentage, userIds: r.user_ids, updatedAt: r.updated_at }]),
    );
    const changed = [...new Set([...this.rules.keys(), ...next.keys()])].filter((key) => !sameRule(this.rules.get(key), next.get(key)));
    this.rules = next;
    this.loadedAt = Date.now();
    if (changed.length) {
      this.logger.info({ flags: changed }, 'feature flags changed');
      this.onChange(changed);
    }
  }

  private async listen(): Promise<void> {
    if (this.stopped) return;
    const client = new Client({
      connectionString: this.db.url,
      connectionTimeoutMillis: this.db.connectTimeoutMs,
      application_name: 'mm:platform:flags-listener',
    });
    const retry = () => {
      client.removeAllListeners();
      client.on('error', () => undefined);
      void client.end().catch(() => undefined);
      if (this.listener === client) this.listener = undefined;
      if (!this.stopped) {
        this.reconnectTimer = setTimeout(() => void this.listen(), LISTEN_RETRY_MS);
        this.reconnectTimer.unref();
      }
    };
    client.on('error', retry);
    client.on('notification', () => void this.refresh());
    try {
      await client.connect();
      await client.query(`LISTEN ${FLAGS_CHANNEL}`);
      if (this.stopped) return void (await client.end());
      this.listener = client;
      // Changes made while we were not listening are picked up right away.
      void this.refresh();
    } catch {
      retry();
    }
  }
}

function sameRule(a: FlagRule | undefined, b: FlagRule | undefined): boolean {
  if (!a || !b) return a === b;
  return a.state === b.state && a.percentage === b.percentage && a.userIds.join('\n') === b.userIds.join('\n');
}
