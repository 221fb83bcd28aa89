import { Type, type Static, type TSchema } from '@sinclair/typebox';
import Ajv from 'ajv';

/** The domain modules this deployable knows about; the order is the boot order. */
export const DOMAIN_MODULES = ['users', 'orders', 'notifications'] as const;
export type DomainModuleName = (typeof DOMAIN_MODULES)[number];

const Int = (def: number, min = 0, max = 2 ** 31 - 1) => Type.Integer({ default: def, minimum: min, maximum: max });

/**
 * Every environment variable the service reads, with its default. This is the only
 * place `process.env` is interpreted; everything else receives a typed AppConfig.
 */
export const EnvSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], {
    default: 'development',
  }),
  PORT: Int(3000, 0, 65535),
  HOST: Type.String({ default: '0.0.0.0', minLength: 1 }),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), {
    default: 'info',
  }),
  /** Admin connection: used only by the bootstrap step (roles, schemas, migrations). */
  DATABASE_URL: Type.String({ pattern: '^postgres(ql)?://', default: 'postgres://postgres@127.0.0.1:5432/postgres' }),
  /** Module roles are named `<prefix>_<module>`, e.g. `app_users`. */
  DB_ROLE_PREFIX: Type.String({ pattern: '^[a-z][a-z0-9_]{0,40}$', default: 'app' }),
  DB_ROLE_PASSWORD: Type.String({ minLength: 8, default: 'module-role-password' }),
  DB_POOL_MAX: Int(10, 1, 500),
  DB_CONNECT_TIMEOUT_MS: Int(2000, 100, 60000),
  DB_STATEMENT_TIMEOUT_MS: Int(2000, 100, 600000),
  DB_BOOTSTRAP_ON_START: Type.Boolean({ default: true }),
  REDIS_URL: Type.String({ pattern: '^rediss?://', default: 'redis://127.0.0.1:6379' }),
  /** Every Redis key (queues, caches) starts with this, so runs and tenants never collide. */
  REDIS_KEY_PREFIX: Type.String({ pattern: '^[A-Za-z0-9_:.-]{1,64}$', default: 'mm' }),
  MODULES_ENABLED: Type.String({ default: DOMAIN_MODULES.join(',') }),
  OUTBOX_POLL_INTERVAL_MS: Int(1000, 10, 600000),
  OUTBOX_BATCH_SIZE: Int(100, 1, 5000),
  /**
   * How long published outbox rows are kept, so `events:replay` can publish them again:
   * 7d, 36h, 90m. Inbox rows (the deduplication record) must be kept at least as long.
   */
  OUTBOX_RETENTION: Type.String({ pattern: '^[1-9][0-9]*(ms|s|m|h|d)$', default: '7d' }),
  /** How often each relay deletes published rows past OUTBOX_RETENTION (in batches). */
  OUTBOX_RETENTION_INTERVAL_MS: Int(3_600_000, 100, 7 * 86_400_000),
  INBOX_MAX_ATTEMPTS: Int(8, 1, 100),
  INBOX_BACKOFF_BASE_MS: Int(500, 1, 600000),
  INBOX_CONCURRENCY: Int(8, 1, 256),
  BODY_LIMIT_BYTES: Int(1024 * 1024, 1024, 64 * 1024 * 1024),
  /** Bull Board at /admin/queues (admin access token required; keep it off the public proxy). */
  BULL_BOARD_ENABLED: Type.Boolean({ default: true }),
  /** HS256 signing key for access tokens. Required in production; a dev default elsewhere. */
  JWT_SECRET: Type.Optional(Type.String({ minLength: 32 })),
  JWT_ISSUER: Type.String({ minLength: 1, default: 'mm-api' }),
  JWT_AUDIENCE: Type.String({ minLength: 1, default: 'mm-clients' }),
  ACCESS_TOKEN_TTL_S: Int(900, 30, 86400),
  REFRESH_TOKEN_TTL_S: Int(30 * 86400, 60, 365 * 86400),
  LOGIN_MAX_FAILURES_PER_ACCOUNT: Int(5, 1, 1000),
  LOGIN_MAX_FAILURES_PER_IP: Int(20, 1, 100000),
  LOGIN_FAILURE_WINDOW_S: Int(900, 1, 86400),
  /** Global limit per client address (or per user when signed in), shared by all instances. */
  RATE_LIMIT_PER_MINUTE: Int(600, 1, 10_000_000),
  /** Upper bound on any Redis call made while serving a request (cache, limits, revocation). */
  REDIS_REQUEST_TIMEOUT_MS: Int(150, 10, 5000),
  USERS_PROFILE_CACHE_ENABLED: Type.Boolean({ default: true }),
  USERS_PROFILE_CACHE_TTL_S: Int(300, 1, 86400),
  /** How long an order may stay pending before the expiry saga cancels it: 1500ms, 45s, 30m, 2h. */
  ORDER_PENDING_TTL: Type.String({ pattern: '^[1-9][0-9]*(ms|s|m|h)$', default: '30m' }),
  /** Safety net for expiries whose delayed job was lost (e.g. Redis was down). */
  ORDER_EXPIRY_SWEEP_INTERVAL_MS: Int(60_000, 100, 86_400_000),
  SHUTDOWN_DRAIN_MS: Int(0, 0, 60000),
  SHUTDOWN_TIMEOUT_MS: Int(30000, 1000, 120000),
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
  /** Read notifications older than this are deleted by the retention job. */
  NOTIFICATIONS_RETENTION_DAYS: Int(90, 1, 36500),
  NOTIFICATIONS_RETENTION_INTERVAL_MS: Int(3_600_000, 100, 7 * 86_400_000),
  /** Rows per DELETE statement of the retention job (short transactions, short locks). */
  NOTIFICATIONS_RETENTION_BATCH_SIZE: Int(1000, 1, 100000),
});
export type Env = Static<typeof EnvSchema>;

/** Per-module overrides (`USERS_DB_POOL_MAX`, `NOTIFICATIONS_DATABASE_URL`, ...). */
const ModuleOverrideSchema = Type.Object({
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  DB_POOL_MAX: Type.Optional(Int(10, 1, 500)),
  DB_CONNECT_TIMEOUT_MS: Type.Optional(Int(2000, 100, 60000)),
  DB_STATEMENT_TIMEOUT_MS: Type.Optional(Int(2000, 100, 600000)),
});

export interface ModuleDatabaseConfig {
  module: DomainModuleName;
  schema: string;
  role: string;
  /** Connection for the module's own role: privileges on its own schema only. */
  url: string;
  poolMax: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
}

export interface AppConfig {
  env: Env & { JWT_SECRET: string };
  enabledModules: ReadonlySet<DomainModuleName>;
  databases: Record<DomainModuleName, ModuleDatabaseConfig>;
}

/** `1500ms`, `45s`, `30m`, `2h`, `7d` → milliseconds. */
export function durationMs(value: string): number {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(value);
  if (!match) throw new ConfigError(`Invalid duration "${value}"`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const ajv = new Ajv({ coerceTypes: true, useDefaults: true, allErrors: false, strict: false });

function validate<T extends TSchema>(schema: T, input: Record<string, unknown>, prefix = ''): Static<T> {
  const check = ajv.compile(schema);
  const original = { ...input }; // Ajv coerces in place; report what the operator wrote
  if (!check(input)) {
    const err = check.errors![0];
    const variable =
      err.keyword === 'required'
        ? (err.params as { missingProperty: string }).missingProperty
        : err.instancePath.replace(/^\//, '');
    const got = original[variable];
    throw new ConfigError(
      `Invalid configuration: ${prefix}${variable} ${err.message}` +
        (got === undefined ? '' : ` (got ${JSON.stringify(got)})`),
    );
  }
  return input as Static<T>;
}

function pick(source: NodeJS.ProcessEnv, keys: string[], prefix = ''): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const value = source[prefix + key];
    // An empty variable counts as unset, like most twelve-factor tooling treats it.
    if (value !== undefined && value !== '') out[key] = value;
  }
  return out;
}

/** Replaces the credentials of an admin URL with a module role's own. */
function urlForRole(adminUrl: string, role: string, password: string): string {
  const url = new URL(adminUrl);
  url.username = role;
  url.password = password;
  return url.toString();
}

export function loadConfig(source: NodeJS.ProcessEnv = process.env): AppConfig {
  const parsed = validate(EnvSchema, pick(source, Object.keys(EnvSchema.properties)));
  if (!parsed.JWT_SECRET && parsed.NODE_ENV === 'production') {
    throw new ConfigError('Invalid configuration: JWT_SECRET is required in production (at least 32 characters)');
  }
  // Outside production a fixed development key keeps `npm start` zero-configuration.
  const env = { ...parsed, JWT_SECRET: parsed.JWT_SECRET ?? 'development-only-secret-change-me-0123456789' };
  const requested = env.MODULES_ENABLED.split(',').map((m) => m.trim()).filter(Boolean);
  for (const name of requested) {
    if (!(DOMAIN_MODULES as readonly string[]).includes(name)) {
      throw new ConfigError(
        `Invalid configuration: MODULES_ENABLED names unknown module "${name}" (known: ${DOMAIN_MODULES.join(', ')})`,
      );
    }
  }
  const databases = {} as Record<DomainModuleName, ModuleDatabaseConfig>;
  for (const module of DOMAIN_MODULES) {
    const prefix = `${module.toUpperCase()}_`;
    const o = validate(ModuleOverrideSchema, pick(source, Object.keys(ModuleOverrideSchema.properties), prefix), prefix);
    const role = `${env.DB_ROLE_PREFIX}_${module}`;
    databases[module] = {
      module,
      schema: module,
      role,
      url: o.DATABASE_URL ?? urlForRole(env.DATABASE_URL, role, env.DB_ROLE_PASSWORD),
      poolMax: o.DB_POOL_MAX ?? env.DB_POOL_MAX,
      connectTimeoutMs: o.DB_CONNECT_TIMEOUT_MS ?? env.DB_CONNECT_TIMEOUT_MS,
      statementTimeoutMs: o.DB_STATEMENT_TIMEOUT_MS ?? env.DB_STATEMENT_TIMEOUT_MS,
    };
  }
  return { env, enabledModules: new Set(requested as DomainModuleName[]), databases };
}
