import { createHash } from 'node:crypto';
import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type Redis from 'ioredis';
import type { Logger } from 'pino';
import { DataSource, type DataSourceOptions, type EntityManager } from 'typeorm';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig, DomainModuleName, ModuleDatabaseConfig } from '../config/app-config';
import { ROOT_LOGGER } from '../logging/logging.module';
import { REDIS_CLIENT } from '../redis/redis.module';
import { withTimeout } from '../redis/redis-connection';

/** Where a lag-tolerant read went, and why (the `reason` label of db_lag_tolerant_reads_total). */
export type ReadRoute =
  | { target: 'replica'; reason: 'replica' }
  | { target: 'primary'; reason: 'no_replica' | 'replica_down' | 'replica_lagging' | 'read_your_writes' | 'replica_error' };

/** The injection token of a module's ReplicaReader (its own only: MessagingRegistry checks it at boot). */
export function replicaReaderToken(module: DomainModuleName): string {
  return `ReplicaReader:${module}`;
}

/** `@InjectReplicaReader('<module>')`: the module's own reader for lag-tolerant queries. */
export const InjectReplicaReader = (module: DomainModuleName): ParameterDecorator => Inject(replicaReaderToken(module));

/** An LSN as a byte position (`pg_wal_lsn_diff(lsn, '0/0')`): exact in a double below 8 PiB of WAL. */
const LSN_BYTES = (expression: string) => `pg_wal_lsn_diff(${expression}, '0/0')::text`;

/** Identifies a primary server (never its credentials): LSNs of different servers do not compare. */
function serverKey(url: string): string {
  const { hostname, port, pathname } = new URL(url);
  return createHash('sha256').update(`${hostname}:${port || '5432'}${pathname}`).digest('hex').slice(0, 12);
}

/** Markers kept in this instance's memory at most (the oldest go first; Redis has them too). */
const LOCAL_MARKERS_MAX = 10_000;

/**
 * Read-your-writes across instances (docs/architecture.md, "Read replicas"): after a
 * client's write, the primary's WAL position (pg_current_wal_lsn()) is remembered under
 * the client's key, in this instance's memory and in Redis, for a little longer than a
 * replica may lag before it is bypassed. A lag-tolerant read for that key uses the
 * replica only once the replica has replayed past that position. A marker Redis could not
 * give back counts as "just written": losing markers costs primary reads, never a stale one.
 */
@Injectable()
export class ReadReplicas implements OnApplicationBootstrap, OnApplicationShutdown {
  readonly readers = new Map<DomainModuleName, ReplicaReader>();
  /** Reads by module, target and reason since start (followed by MetricsService). */
  readonly reads = new Map<string, number>();
  private readonly local = new Map<string, { lsn: number; expiresAt: number }>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(ROOT_LOGGER) private readonly logger: Logger,
  ) {}

  /** True when some module of this process has a replica: only then are writes remembered. */
  get enabled(): boolean {
    return [...this.readers.values()].some((reader) => reader.hasReplica);
  }

  /** How long a write marker lives: past it, a replica still in use has replayed the write. */
  get markerTtlMs(): number {
    return this.config.env.DB_REPLICA_MAX_LAG_MS + 2 * this.config.env.DB_REPLICA_POLL_INTERVAL_MS + 1000;
  }

  register(reader: ReplicaReader): void {
    this.readers.set(reader.module, reader);
  }

  count(module: DomainModuleName, route: ReadRoute): void {
    const key = `${module}|${route.target}|${route.reason}`;
    this.reads.set(key, (this.reads.get(key) ?? 0) + 1);
  }

  /**
   * Remembers that `subject` (a user id) has just written: called after the write has
   * committed (the HTTP layer does it for every state-changing request of a signed-in
   * client). One LSN query per primary server, however many modules share it.
   */
  async recordWrite(subject: string): Promise<void> {
    const byServer = new Map<string, ReplicaReader>();
    for (const reader of this.readers.values()) if (reader.hasReplica && !byServer.has(reader.primaryKey)) byServer.set(reader.primaryKey, reader);
    await Promise.all(
      [...byServer].map(async ([server, reader]) => {
        let lsn: number;
        try {
          lsn = await reader.primaryLsn();
        } catch {
          return; // The primary is unreachable: the write did not happen either.
        }
        const key = this.markerKey(server, subject);
        const ttl = this.markerTtlMs;
        this.remember(key, lsn, ttl);
        try {
          // Keeps the larger position: writes of one client on two instances may finish in any order.
          await withTimeout(
            this.redis.eval(
              `local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
               if tonumber(ARGV[1]) > current then return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
               return redis.call('PEXPIRE', KEYS[1], ARGV[2])`,
              1,
              key,
              String(lsn),
              String(ttl),
            ),
            this.config.env.REDIS_REQUEST_TIMEOUT_MS,
            'read-your-writes marker',
          );
        } catch {
          // Other instances may read this client's write from a replica for up to
          // DB_REPLICA_MAX_LAG_MS; this instance still has the marker.
        }
      }),
    );
  }

  /** The WAL position `subject` last wrote at on `server`; Infinity when it cannot be known. */
  async lastWrite(server: string, subject: string): Promise<number> {
    const key = this.markerKey(server, subject);
    const local = this.local.get(key);
    const localLsn = local && local.expiresAt > Date.now() ? local.lsn : -1;
    try {
      const stored = await withTimeout(this.redis.get(key), this.config.env.REDIS_REQUEST_TIMEOUT_MS, 'read-your-writes marker');
      return Math.max(localLsn, stored === null ? -1 : Number(stored));
    } catch {
      return Number.POSITIVE_INFINITY;
    }
  }

  private markerKey(server: string, subject: string): string {
    return `${this.config.env.REDIS_KEY_PREFIX}:replica-rw:${server}:${subject}`;
  }

  private remember(key: string, lsn: number, ttlMs: number): void {
    const previous = this.local.get(key);
    this.local.delete(key); // re-inserted last: the Map's order is the eviction order
    this.local.set(key, { lsn: Math.max(lsn, previous && previous.expiresAt > Date.now() ? previous.lsn : -1), expiresAt: Date.now() + ttlMs });
    while (this.local.size > LOCAL_MARKERS_MAX) this.local.delete(this.local.keys().next().value!);
  }

  onApplicationBootstrap(): void {
    for (const reader of this.readers.values()) reader.start();
    if (this.enabled) {
      this.logger.info(
        { modules: [...this.readers.values()].filter((r) => r.hasReplica).map((r) => r.module), maxLagMs: this.config.env.DB_REPLICA_MAX_LAG_MS },
        'read replicas configured',
      );
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([...this.readers.values()].map((reader) => reader.stop()));
  }
}

interface PrimarySample {
  at: number;
  lsn: number;
}

/** What the last poll found out about a module's replica. */
export interface ReplicaState {
  usable: boolean;
  /** At least this far behind the primary, in ms; null while unknown (replica unreachable). */
  lagMs: number | null;
  /** WAL position the replica has replayed up to. */
  replayedLsn: number;
}

/**
 * A module's reads that tolerate lag (docs/architecture.md, "Read replicas"). The module
 * says which of its queries may run here; the reader decides, per read, between the
 * module's replica and its primary: the primary when there is no replica, when the last
 * poll found it down or more than DB_REPLICA_MAX_LAG_MS behind, when the reading client
 * wrote something the replica has not replayed yet, and when the read fails on the
 * replica (it runs again on the primary). Never use it inside a transaction: a
 * transaction takes its EntityManager from the primary DataSource.
 */
export class ReplicaReader {
  readonly primaryKey: string;
  private replica?: DataSource;
  private state: ReplicaState = { usable: false, lagMs: null, replayedLsn: -1 };
  private samples: PrimarySample[] = [];
  private timer?: NodeJS.Timeout;
  private polling?: Promise<void>;
  private stopped = false;
  private warned?: string;

  constructor(
    readonly module: DomainModuleName,
    private readonly primary: DataSource,
    private readonly replicaOptions: DataSourceOptions | undefined,
    private readonly replicas: ReadReplicas,
    private readonly config: AppConfig,
    private readonly logger: Logger,
  ) {
    this.primaryKey = serverKey(config.databases[module].url);
    replicas.register(this);
  }

  get hasReplica(): boolean {
    return this.replicaOptions !== undefined;
  }

  /** The last poll's view of the replica (for metrics and tests). */
  get replicaState(): Readonly<ReplicaState> {
    return this.state;
  }

  /**
   * Runs `read` on the replica when allowed, else on the primary. `consistentFor`: the
   * client whose own writes the result must include (the caller's user id; for a public
   * profile, the profile's owner, whose writes decide what may be cached).
   */
  async read<T>(consistentFor: string | undefined, read: (manager: EntityManager) => Promise<T>): Promise<T> {
    const route = await this.route(consistentFor);
    if (route.target === 'primary') {
      this.replicas.count(this.module, route);
      return read(this.primary.manager);
    }
    try {
      const result = await read(this.replica!.manager);
      this.replicas.count(this.module, route);
      return result;
    } catch (error) {
      // A read is safe to repeat: whatever failed on the replica (down, recovery conflict,
      // timeout) is answered by the primary; the next poll decides when to come back.
      if (isConnectionError(error)) this.state = { ...this.state, usable: false };
      this.replicas.count(this.module, { target: 'primary', reason: 'replica_error' });
      return read(this.primary.manager);
    }
  }

  private async route(consistentFor: string | undefined): Promise<ReadRoute> {
    if (!this.replicaOptions) return { target: 'primary', reason: 'no_replica' };
    const { usable, lagMs, replayedLsn } = this.state;
    if (!usable || !this.replica?.isInitialized) return { target: 'primary', reason: 'replica_down' };
    if (lagMs === null || lagMs > this.config.env.DB_REPLICA_MAX_LAG_MS) return { target: 'primary', reason: 'replica_lagging' };
    if (consistentFor !== undefined && (await this.replicas.lastWrite(this.primaryKey, consistentFor)) > replayedLsn) {
      return { target: 'primary', reason: 'read_your_writes' };
    }
    return { target: 'replica', reason: 'replica' };
  }

  /**
   * Remembers, right after a commit, that `subject` wrote: for writes whose subject is not
   * the signed-in caller, or that must be remembered before the request ends (the HTTP
   * layer remembers the caller's writes when it answers).
   */
  recordWrite(subject: string): Promise<void> {
    return this.hasReplica ? this.replicas.recordWrite(subject) : Promise.resolve();
  }

  /** The primary's current WAL position: at or past every commit that has returned. */
  async primaryLsn(): Promise<number> {
    const [row] = await this.primary.query<{ lsn: string }[]>(`SELECT ${LSN_BYTES('pg_current_wal_lsn()')} AS lsn`);
    return Number(row.lsn);
  }

  start(): void {
    if (!this.replicaOptions || this.timer || this.stopped) return;
    const tick = () => {
      this.polling = this.poll().finally(() => {
        this.polling = undefined;
        // unref: a poller must not keep a process alive that is otherwise done.
        if (!this.stopped) this.timer = setTimeout(tick, this.config.env.DB_REPLICA_POLL_INTERVAL_MS).unref();
      });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.polling;
    if (this.replica?.isInitialized) await this.replica.destroy().catch(() => undefined);
  }

  /**
   * Samples the primary's WAL position, then asks the replica how far it has replayed. The
   * lag is the age of the oldest sample the replica has not replayed yet: a lower bound,
   * off by at most one poll interval, that stays 0 on an idle primary (unlike
   * `now() - pg_last_xact_replay_timestamp()`, which grows while nothing is written).
   */
  private async poll(): Promise<void> {
    const timeout = this.config.databases[this.module].connectTimeoutMs + this.config.databases[this.module].statementTimeoutMs;
    try {
      const at = Date.now();
      const lsn = await withTimeout(this.primaryLsn(), timeout, 'primary WAL position');
      this.samples.push({ at, lsn });
      const keepSince = at - 2 * (this.config.env.DB_REPLICA_MAX_LAG_MS + this.config.env.DB_REPLICA_POLL_INTERVAL_MS);
      while (this.samples.length > 1 && this.samples[0].at < keepSince) this.samples.shift();
    } catch {
      // Primary unreachable: keep the samples; the replica's position is still worth knowing.
    }
    try {
      if (!this.replica?.isInitialized) {
        this.replica = new DataSource(this.replicaOptions!);
        await withTimeout(this.replica.initialize(), timeout, 'replica connection').catch(async (error) => {
          await this.replica?.destroy().catch(() => undefined);
          throw error;
        });
      }
      const [row] = await withTimeout(
        this.replica.query<{ standby: boolean; replayed: string | null }[]>(
          `SELECT pg_is_in_recovery() AS standby, ${LSN_BYTES('pg_last_wal_replay_lsn()')} AS replayed`,
        ),
        timeout,
        'replica replay position',
      );
      if (!row.standby || row.replayed === null) {
        // Promoted, or not a replica at all: its data may have forked from the primary's.
        this.warnOnce('not-standby', 'the replica URL names a server that is not a streaming standby: reads stay on the primary');
        this.state = { usable: false, lagMs: null, replayedLsn: -1 };
        return;
      }
      const replayedLsn = Number(row.replayed);
      const behind = this.samples.find((sample) => sample.lsn > replayedLsn);
      const lagMs = behind ? Date.now() - behind.at : 0;
      if (this.warned && !this.state.usable) this.logger.info({ module: this.module }, 'read replica reachable again');
      this.warned = undefined;
      this.state = { usable: true, lagMs, replayedLsn };
    } catch (error) {
      this.warnOnce('down', `read replica unreachable: reads stay on the primary (${(error as Error).message.split('\n')[0]})`);
      this.state = { usable: false, lagMs: null, replayedLsn: this.state.replayedLsn };
      if (this.replica?.isInitialized) await this.replica.destroy().catch(() => undefined);
    }
  }

  private warnOnce(kind: string, message: string): void {
    if (this.warned === kind) return;
    this.warned = kind;
    this.logger.warn({ module: this.module }, message);
  }
}

/** The server or the connection is gone (as opposed to a query that failed on a live server). */
function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: string; driverError?: { code?: string } }).driverError?.code ?? (error as { code?: string }).code;
  if (code && /^(57P0[1-3]|08...)$/.test(code)) return true;
  return /ECONNREFUSED|ECONNRESET|Connection terminated|timeout exceeded when trying to connect/i.test(String((error as Error)?.message));
}

/** The replica's connection options: the primary's, on the replica URL, without migrations or subscribers. */
export function replicaDataSourceOptions(primary: DataSourceOptions, db: ModuleDatabaseConfig): DataSourceOptions | undefined {
  if (!db.replicaUrl) return undefined;
  const options = primary as DataSourceOptions & { url?: string; extra?: Record<string, unknown> };
  return {
    ...options,
    name: `${String(options.name)}:replica`,
    url: db.replicaUrl,
    applicationName: `mm:${db.module}:replica`,
    migrations: [],
    subscribers: [],
    // A standby is read-only: TypeORM must not try CREATE EXTENSION there.
    installExtensions: false,
    // Connects lazily in poll(): a replica that is down at start must not hold the boot.
  } as DataSourceOptions;
}
