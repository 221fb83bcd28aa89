import { createHmac, randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { Type, type Static, type TObject, type TSchema } from '@sinclair/typebox';
import Ajv from 'ajv';
import type { ModuleManifest } from '../messaging/module-manifest';
import { generateSigningKey, parsePublicKeys, parseSigningKey, privateKeyPem, TokenKeyError, type VerificationKey } from '../auth/token-keys';

/**
 * A domain module's name, as its manifest declares it. The platform knows no module by
 * name: the list comes from the manifests each application passes in.
 */
export type DomainModuleName = string;

/** `Int(default, min, max)`: an integer variable with its default; also for module schemas. */
export const Int = (def: number, min = 0, max = 2 ** 31 - 1) => Type.Integer({ default: def, minimum: min, maximum: max });

/**
 * Every platform environment variable, with its default. Each module declares its own
 * variables in its manifest (`config`), validated by loadConfig too. This file and the
 * manifests are the only places `process.env` is interpreted; everything else receives a
 * typed AppConfig.
 */
export const EnvSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], {
    default: 'development',
  }),
  PORT: Int(3000, 0, 65535),
  /** /metrics and /docs listen here only (keep it off the public network); 0: any free port. */
  INTERNAL_PORT: Int(9100, 0, 65535),
  /** Longest a client may take to send one whole request (headers and body): slow senders get 408. */
  HTTP_REQUEST_TIMEOUT_MS: Int(30_000, 100, 600_000),
  HOST: Type.String({ default: '0.0.0.0', minLength: 1 }),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), {
    default: 'info',
  }),
  /** Admin connection: used only by the bootstrap step (roles, schemas, migrations). */
  DATABASE_URL: Type.String({ pattern: '^postgres(ql)?://', default: 'postgres://postgres@127.0.0.1:5432/postgres' }),
  /**
   * Module roles are named `<prefix>_<module>`. Unset: derived from DATABASE_URL's database
   * name (`shop_staging` → `shop_staging_users`), so two environments on one server never
   * share roles. Each role's password is its own: `<MODULE>_DATABASE_URL` or
   * `<MODULE>_DB_PASSWORD` (see modulePassword).
   */
  DB_ROLE_PREFIX: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9_]{0,40}$' })),
  DB_POOL_MAX: Int(10, 1, 500),
  DB_CONNECT_TIMEOUT_MS: Int(2000, 100, 60000),
  DB_STATEMENT_TIMEOUT_MS: Int(2000, 100, 600000),
  DB_BOOTSTRAP_ON_START: Type.Boolean({ default: true }),
  /**
   * A module's streaming replica (`<MODULE>_DATABASE_REPLICA_URL`) is bypassed while it lags
   * the primary by more than this: its lag-tolerant reads go to the primary (README,
   * "Running with a read replica").
   */
  DB_REPLICA_MAX_LAG_MS: Int(5000, 100, 3_600_000),
  /** How often each instance measures every replica's lag and reachability. */
  DB_REPLICA_POLL_INTERVAL_MS: Int(1000, 50, 60_000),
  /** statement_timeout of the bootstrap's migration connections; 0: none (a migration may take long). */
  DB_MIGRATION_STATEMENT_TIMEOUT_MS: Int(0, 0, 86_400_000),
  REDIS_URL: Type.String({ pattern: '^rediss?://', default: 'redis://127.0.0.1:6379' }),
  /**
   * Every Redis key (queues, caches) starts with this, so runs and tenants never collide.
   * May hold one `{…}` hash tag (README "Running on a Redis Cluster"): on a cluster every
   * key then lands in that tag's slot; without one, each key is placed by its own name.
   */
  REDIS_KEY_PREFIX: Type.String({ pattern: '^(?=.{1,64}$)[A-Za-z0-9_:.-]*(\\{[A-Za-z0-9_:.-]+\\})?[A-Za-z0-9_:.-]*$', default: 'mm' }),
  /**
   * `host:port,host:port,…` of some nodes of a Redis Cluster (the rest are discovered):
   * set, it replaces REDIS_URL for every connection (docs/architecture.md "Redis keys and slots").
   */
  REDIS_CLUSTER_NODES: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9._-]+:[0-9]{1,5}(,[A-Za-z0-9._-]+:[0-9]{1,5})*$' })),
  /**
   * Replicas that must hold an enqueued job before the relay marks its outbox rows
   * published (Redis WAIT): 1 on a cluster with replicas, so a failover loses no event.
   */
  REDIS_WAIT_REPLICAS: Int(0, 0, 5),
  /** Comma-separated module names; unset: every module whose manifest the app passes. */
  MODULES_ENABLED: Type.Optional(Type.String()),
  OUTBOX_POLL_INTERVAL_MS: Int(1000, 10, 600000),
  OUTBOX_BATCH_SIZE: Int(100, 1, 5000),
  /**
   * How long published outbox rows are kept, so `events:replay` can publish them again:
   * 7d, 36h, 90m. Inbox rows (the deduplication record) must be kept at least as long.
   */
  OUTBOX_RETENTION: Type.String({ pattern: '^[1-9][0-9]*(ms|s|m|h|d)$', default: '7d' }),
  /**
   * How long each module keeps its inbox rows (the record that an event was handled, which
   * makes redelivery and `events:replay` harmless). At least OUTBOX_RETENTION: an event
   * that can still be replayed must still be recognised.
   */
  INBOX_RETENTION: Type.String({ pattern: '^[1-9][0-9]*(ms|s|m|h|d)$', default: '30d' }),
  /**
   * How long dead letters wait for an operator (`npm run cli -- events:dead-letters`)
   * before they are deleted; each deletion is logged with its event types.
   */
  DEAD_LETTER_RETENTION: Type.String({ pattern: '^[1-9][0-9]*(ms|s|m|h|d)$', default: '30d' }),
  /** How often each module deletes what its retention rules say is due (published outbox rows, inbox, dead letters, its own tables). */
  RETENTION_INTERVAL_MS: Int(3_600_000, 100, 7 * 86_400_000),
  INBOX_MAX_ATTEMPTS: Int(8, 1, 100),
  INBOX_BACKOFF_BASE_MS: Int(500, 1, 600000),
  INBOX_CONCURRENCY: Int(8, 1, 256),
  BODY_LIMIT_BYTES: Int(1024 * 1024, 1024, 64 * 1024 * 1024),
  /** Bull Board at /admin/queues (admin access token required; keep it off the public proxy). */
  BULL_BOARD_ENABLED: Type.Boolean({ default: true }),
  /**
   * The public keys every process verifies access tokens with (JWKS JSON, JWK(s) or PEM
   * public keys). Required in production; see authKeys in loadConfig.
   */
  AUTH_PUBLIC_KEYS: Type.Optional(Type.String({ minLength: 1 })),
  JWT_ISSUER: Type.String({ minLength: 1, default: 'mm-api' }),
  JWT_AUDIENCE: Type.String({ minLength: 1, default: 'mm-clients' }),
  ACCESS_TOKEN_TTL_S: Int(900, 30, 86400),
  /**
   * Which peers may name the client's address in X-Forwarded-For (the key of the global
   * rate limit and of the failed-login limit per address): `false` (none: the socket's
   * peer is the client), a hop count (`1`: one proxy such as nginx in front), or a
   * comma-separated list of proxy addresses and CIDRs. See trustProxyOption.
   */
  TRUST_PROXY: Type.String({ default: 'false', minLength: 1 }),
  /** Global limit per client address (or per user when signed in), shared by all instances. */
  RATE_LIMIT_PER_MINUTE: Int(600, 1, 10_000_000),
  /** Upper bound on any Redis call made while serving a request (cache, limits, revocation). */
  REDIS_REQUEST_TIMEOUT_MS: Int(150, 10, 5000),
  /**
   * Open Server-Sent Events streams one user may hold on one instance, and all users
   * together (docs/api.md, "Live stream"). Counted per instance, in memory: a crashed
   * instance's streams die with it and leave no count behind.
   */
  STREAM_MAX_PER_USER: Int(5, 1, 10_000),
  STREAM_MAX_PER_INSTANCE: Int(1000, 1, 1_000_000),
  /**
   * Feature flags' connection (role `<prefix>_platform`, schema `platform`), by the same
   * rules as a module's: the URL names role and password, or FLAGS_DB_PASSWORD with
   * DATABASE_URL's server; outside production a derived development password.
   */
  FLAGS_DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  FLAGS_DB_PASSWORD: Type.Optional(Type.String({ minLength: 8 })),
  /** Each instance re-reads platform.flags this often even without a notification (bounds staleness). */
  FLAGS_REFRESH_INTERVAL_MS: Int(5000, 100, 600000),
  SHUTDOWN_DRAIN_MS: Int(0, 0, 60000),
  SHUTDOWN_TIMEOUT_MS: Int(30000, 1000, 120000),
  /** Load shedding (README, "What is shed first"): 503 + Retry-After under overload instead of queueing. */
  SHED_ENABLED: Type.Boolean({ default: true }),
  /** Mean event-loop delay (sampled every 100 ms) at which normal requests are shed. */
  SHED_MAX_EVENT_LOOP_DELAY_MS: Int(50, 1, 60_000),
  /** V8 heap used at which normal requests are shed; unset: 90 % of the heap limit. */
  SHED_MAX_HEAP_USED_BYTES: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
  /** Admitted, unanswered requests per instance at which normal requests are shed (open event streams excluded). */
  SHED_MAX_IN_FLIGHT: Int(256, 1, 1_000_000),
  /** Fraction of each limit at which sheddable requests (public reads, live streams) are shed. */
  SHED_SHEDDABLE_RATIO: Type.Number({ default: 0.75, exclusiveMinimum: 0, maximum: 1 }),
  /** A shed request gets Retry-After: a random whole number of seconds from 1 to this. */
  SHED_RETRY_AFTER_S: Int(2, 1, 3600),
});
export type Env = Static<typeof EnvSchema>;

/** Per-module overrides (`<MODULE>_DB_POOL_MAX`, `<MODULE>_DATABASE_URL`, ...). */
// No defaults here: Ajv fills defaults in, and an override that is always present would
// hide the global value (DB_STATEMENT_TIMEOUT_MS=300 used to reach no module at all).
const Bounded = (min: number, max: number) => Type.Optional(Type.Integer({ minimum: min, maximum: max }));
export const ModuleOverrideSchema = Type.Object({
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  /**
   * A streaming replica of the module's primary, for the reads the module marks lag-tolerant.
   * Same role (roles replicate physically): a URL without user or password takes the module's.
   */
  DATABASE_REPLICA_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  /** The module role's own password, when DATABASE_URL (not the module's URL) supplies the server. */
  DB_PASSWORD: Type.Optional(Type.String({ minLength: 8 })),
  DB_POOL_MAX: Bounded(1, 500),
  DB_CONNECT_TIMEOUT_MS: Bounded(100, 60000),
  DB_STATEMENT_TIMEOUT_MS: Bounded(100, 600000),
});

export interface ModuleDatabaseConfig {
  module: DomainModuleName;
  schema: string;
  role: string;
  /** Connection for the module's own role: privileges on its own schema only. */
  url: string;
  /** The variable an operator sets to change `url` (named in start-up errors). */
  urlVariable: string;
  /** `<MODULE>_DATABASE_REPLICA_URL` with the module role's credentials; unset: every read goes to `url`. */
  replicaUrl?: string;
  poolMax: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
}

/**
 * Marks a module's variable as the private key that signs access tokens (PEM or JWK):
 * `Type.Optional(Type.String({ 'x-access-token-signing-key': true }))` in its manifest.
 * loadConfig loads it only in a process that runs that module, checks that its public
 * key is published in AUTH_PUBLIC_KEYS, and generates one per start outside production.
 */
export const TOKEN_SIGNING_KEY = 'x-access-token-signing-key';

/** The access-token keys of this process (docs/architecture.md, "Authentication"). */
export interface AuthKeysConfig {
  /** What this process verifies with: AUTH_PUBLIC_KEYS, plus a development key it signs with. */
  publicKeys: readonly VerificationKey[];
  /** Set when a running module had no signing key and one was generated for this start. */
  generated?: { variable: string; module: DomainModuleName; kid: string };
  /** Signing-key variables set for modules this process does not run: not loaded. */
  ignored: readonly string[];
}

export interface AppConfig {
  env: Env & { DB_ROLE_PREFIX: string };
  auth: AuthKeysConfig;
  enabledModules: ReadonlySet<DomainModuleName>;
  /** Every module of the manifests (enabled or not): relays and the CLI reach them all. */
  databases: Readonly<Record<DomainModuleName, ModuleDatabaseConfig>>;
  /** Each module's own variables, validated by the `config` schema of its manifest. */
  modules: Readonly<Record<DomainModuleName, Readonly<Record<string, unknown>>>>;
  /** The platform's own role and URL (schema `platform`: feature flags). */
  platformDatabase: { role: string; url: string };
}

/** A module's own configuration, typed by the schema in its manifest. */
export function moduleConfig<M extends ModuleManifest & { config: TObject }>(config: AppConfig, manifest: M): Static<M['config']> {
  const values = config.modules[manifest.name];
  if (!values) throw new Error(`No configuration for module "${manifest.name}": was its manifest passed to loadConfig?`);
  return values as Static<M['config']>;
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

/** Names proxy-addr (Fastify's trustProxy) understands in a list. */
const NAMED_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * TRUST_PROXY → Fastify's `trustProxy` option. `false`/`0`: X-Forwarded-For is ignored.
 * `N`: the N proxies nearest to the server are trusted, so the client is the N-th entry
 * from the right of X-Forwarded-For (`1` behind one nginx that sets the header). A list
 * (`10.0.0.0/8, 192.168.1.7, fd00::/8`, or `loopback`/`linklocal`/`uniquelocal`): hops
 * from those addresses are skipped, and the first untrusted one is the client. `true`
 * (trust any chain) is refused: it lets every client choose its own address.
 */
export function trustProxyOption(value: string): false | number | string[] {
  const text = value.trim().toLowerCase();
  if (text === 'false' || text === '0') return false;
  if (/^[0-9]+$/.test(text)) {
    const hops = Number(text);
    if (hops > 32) throw new ConfigError('Invalid configuration: TRUST_PROXY must be at most 32 hops');
    return hops;
  }
  const entries = text.split(',').map((entry) => entry.trim()).filter(Boolean);
  const bad = entries.find((entry) => !isProxyAddress(entry));
  if (text === 'true' || entries.length === 0 || bad !== undefined) {
    throw new ConfigError(
      'Invalid configuration: TRUST_PROXY must be false, a hop count or a comma-separated list of proxy addresses/CIDRs' +
        (text === 'true' ? ' (true would let any client choose its own address)' : bad !== undefined ? ` (not an address or CIDR: ${JSON.stringify(bad)})` : ''),
    );
  }
  return entries;
}

function isProxyAddress(entry: string): boolean {
  if (NAMED_RANGES.has(entry)) return true;
  const [address, bits, ...rest] = entry.split('/');
  const version = isIP(address);
  if (version === 0 || rest.length > 0) return false;
  if (bits === undefined) return true;
  return /^[0-9]{1,3}$/.test(bits) && Number(bits) <= (version === 4 ? 32 : 128);
}

/** Variables whose value never appears in an error message. */
const SECRET_VARIABLE = /(SECRET|PASSWORD|PASSPHRASE|TOKEN|PRIVATE_KEY|SIGNING_KEY|API_KEY|CREDENTIALS?)$/;

/**
 * How a rejected value may be quoted in a configuration error: never for a secret-like
 * variable, and URLs (any value with `scheme://`) lose the password part of their
 * credentials (`postgres://admin:***@db/app`). Config errors go to stderr and log
 * collectors, where secrets must not end up.
 */
export function describeRejectedValue(variable: string, value: unknown): string {
  if (SECRET_VARIABLE.test(variable.toUpperCase())) return 'value not shown';
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  return `got ${JSON.stringify(redactUrlCredentials(text))}`;
}

/** `scheme://user:password@host…` → `scheme://user:***@host…`; a bare `scheme://token@` → `***@`. */
export function redactUrlCredentials(text: string): string {
  const start = text.indexOf('//');
  if (start === -1) return text;
  const at = text.lastIndexOf('@');
  if (at <= start) return text;
  const userinfo = text.slice(start + 2, at);
  const colon = userinfo.indexOf(':');
  const redacted = colon === -1 ? '***' : `${userinfo.slice(0, colon)}:***`;
  return `${text.slice(0, start + 2)}${redacted}${text.slice(at)}`;
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
        (got === undefined ? '' : ` (${describeRejectedValue(`${prefix}${variable}`, got)})`),
    );
  }
  return input as Static<T>;
}

/**
 * Variables that did something once and no longer do, with what replaces them. Set, they
 * stop the start-up, naming the replacement: an unknown variable is otherwise ignored, and
 * an operator who tuned one must not believe it still applies. Unsetting it (or renaming
 * it) suits the old code too, so a rolling deploy is not blocked.
 */
const REMOVED_VARIABLES: Record<string, string> = {
  OUTBOX_RETENTION_INTERVAL_MS:
    'published outbox rows are now deleted by each module\'s retention sweeper with its other rules, every RETENTION_INTERVAL_MS (docs/architecture.md "Retention"); unset OUTBOX_RETENTION_INTERVAL_MS, and set RETENTION_INTERVAL_MS if the default (1 h) does not suit',
};

function refuseRemovedVariables(source: NodeJS.ProcessEnv): void {
  for (const [variable, instead] of Object.entries(REMOVED_VARIABLES)) {
    const value = source[variable];
    if (value !== undefined && value !== '') throw new ConfigError(`Invalid configuration: ${variable} is no longer supported: ${instead}`);
  }
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

/** `postgres://…/Shop-Staging` → `shop_staging`: the default DB_ROLE_PREFIX. */
export function defaultRolePrefix(databaseUrl: string): string {
  const database = decodeURIComponent(new URL(databaseUrl).pathname.replace(/^\//, '')) || 'postgres';
  const prefix = database.toLowerCase().replace(/[^a-z0-9_]+/g, '_').slice(0, 40);
  return /^[a-z]/.test(prefix) ? prefix : `db_${prefix}`.slice(0, 40);
}

/** Where development role passwords come from (`.data/` is git-ignored). */
export const DEV_DB_SECRET_FILE = path.join('.data', 'dev-db-secret');

/**
 * Outside production, a module role without a password variable gets one derived from a
 * random secret of this checkout (created on first use, mode 0600) and the server and
 * role: different for every role, server and database prefix, never a value written in
 * source, and the same for the bootstrap and every process started from the checkout.
 */
function developmentPassword(adminUrl: string, role: string): string {
  const file = path.resolve(DEV_DB_SECRET_FILE);
  let secret: string;
  try {
    secret = readFileSync(file, 'utf8').trim();
  } catch {
    mkdirSync(path.dirname(file), { recursive: true });
    const draft = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    writeFileSync(draft, randomBytes(32).toString('hex'), { mode: 0o600 });
    // link() fails if another process created the file first: everyone ends with one secret.
    try {
      linkSync(draft, file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    } finally {
      unlinkSync(draft);
    }
    secret = readFileSync(file, 'utf8').trim();
  }
  const { host } = new URL(adminUrl);
  return createHmac('sha256', secret).update(`${host}/${role}`).digest('base64url');
}

export interface LoadConfigOptions {
  /**
   * `bootstrap`: the one-shot database step (db-bootstrap.ts). It needs the admin URL and
   * every module's password, but none of the serving secrets (token keys).
   */
  purpose?: 'serve' | 'bootstrap';
}

/**
 * Validates the platform's variables and every module's own (from the `config` schema of
 * its manifest; a variable declared twice is an error), then derives one database role,
 * schema and URL per module. `manifests`: every module the application knows about.
 */
export function loadConfig(source: NodeJS.ProcessEnv, manifests: readonly ModuleManifest[], options: LoadConfigOptions = {}): AppConfig {
  refuseRemovedVariables(source);
  const parsed = validate(EnvSchema, pick(source, Object.keys(EnvSchema.properties)));
  trustProxyOption(parsed.TRUST_PROXY); // refuses a malformed list at boot, naming the variable
  if (durationMs(parsed.INBOX_RETENTION) < durationMs(parsed.OUTBOX_RETENTION)) {
    // A replayed event whose inbox row is gone would be handled a second time.
    throw new ConfigError(
      `Invalid configuration: INBOX_RETENTION (${parsed.INBOX_RETENTION}) must be at least OUTBOX_RETENTION (${parsed.OUTBOX_RETENTION}): events that can be replayed must still be in the inbox`,
    );
  }
  const bootstrap = options.purpose === 'bootstrap';
  if (bootstrap && parsed.NODE_ENV === 'production' && !source.DATABASE_URL) {
    throw new ConfigError('Invalid configuration: DATABASE_URL (the admin connection) is required by the database bootstrap in production');
  }
  const env = {
    ...parsed,
    DB_ROLE_PREFIX: parsed.DB_ROLE_PREFIX ?? defaultRolePrefix(parsed.DATABASE_URL),
  };
  const known = manifests.map((m) => m.name);
  const requested = (env.MODULES_ENABLED ?? known.join(',')).split(',').map((m) => m.trim()).filter(Boolean);
  for (const name of requested) {
    if (!known.includes(name)) {
      throw new ConfigError(`Invalid configuration: MODULES_ENABLED names unknown module "${name}" (known: ${known.join(', ')})`);
    }
  }
  const declaredBy = new Map(Object.keys(EnvSchema.properties).map((key) => [key, 'the platform']));
  const modules: Record<string, Record<string, unknown>> = {};
  const signingKeys: { module: string; variable: string }[] = [];
  const databases: Record<string, ModuleDatabaseConfig> = {};
  for (const manifest of manifests) {
    const module = manifest.name;
    const schema = manifest.config ?? Type.Object({});
    for (const key of Object.keys(schema.properties)) {
      const other = declaredBy.get(key);
      if (other) throw new ConfigError(`Invalid configuration schema: ${key} is declared by both ${other} and module "${module}"`);
      declaredBy.set(key, `module "${module}"`);
    }
    modules[module] = validate(schema, pick(source, Object.keys(schema.properties)));
    const properties = schema.properties as Record<string, Record<string, unknown>>;
    for (const variable of Object.keys(properties)) if (properties[variable][TOKEN_SIGNING_KEY] === true) signingKeys.push({ module, variable });
    const prefix = `${module.toUpperCase()}_`;
    const o = validate(ModuleOverrideSchema, pick(source, Object.keys(ModuleOverrideSchema.properties), prefix), prefix);
    // In production a process needs the passwords of the modules it runs (or bootstraps) only.
    const needsPassword = env.NODE_ENV === 'production' && requested.includes(module);
    const { role, url } = moduleConnection(env, module, o, prefix, needsPassword);
    databases[module] = {
      module,
      schema: manifest.schema,
      role,
      url,
      urlVariable: o.DATABASE_URL ? `${prefix}DATABASE_URL` : `DATABASE_URL and ${prefix}DB_PASSWORD`,
      replicaUrl: o.DATABASE_REPLICA_URL ? replicaConnection(o.DATABASE_REPLICA_URL, role, url, prefix) : undefined,
      poolMax: o.DB_POOL_MAX ?? env.DB_POOL_MAX,
      connectTimeoutMs: o.DB_CONNECT_TIMEOUT_MS ?? env.DB_CONNECT_TIMEOUT_MS,
      statementTimeoutMs: o.DB_STATEMENT_TIMEOUT_MS ?? env.DB_STATEMENT_TIMEOUT_MS,
    };
  }
  // The platform's own role (feature flags): every serving process and the bootstrap use it.
  const platformDatabase = moduleConnection(
    env,
    'platform',
    { DATABASE_URL: env.FLAGS_DATABASE_URL, DB_PASSWORD: env.FLAGS_DB_PASSWORD },
    'FLAGS_',
    env.NODE_ENV === 'production',
  );
  const enabledModules = new Set(requested);
  // The bootstrap step signs and verifies nothing: it needs no token keys (docs/architecture.md, "Database roles").
  const auth = bootstrap ? { publicKeys: [], generated: undefined, ignored: [] } : authKeys(env, enabledModules, modules, signingKeys);
  return { env, auth, enabledModules, databases, modules, platformDatabase };
}

/**
 * A module's role and URL. `<MODULE>_DATABASE_URL` names both (its user is the role, its
 * password the role's own); otherwise the role is `<DB_ROLE_PREFIX>_<module>` on
 * DATABASE_URL's server with `<MODULE>_DB_PASSWORD`. In production every module must
 * name its own password: one password for all roles would let any module log in as
 * another (docs/architecture.md, "Database roles").
 */
function moduleConnection(
  env: Env & { DB_ROLE_PREFIX: string },
  module: string,
  o: Static<typeof ModuleOverrideSchema>,
  prefix: string,
  needsPassword: boolean,
): { role: string; url: string } {
  if (o.DATABASE_URL) {
    const url = new URL(o.DATABASE_URL);
    const role = decodeURIComponent(url.username);
    if (!role) throw new ConfigError(`Invalid configuration: ${prefix}DATABASE_URL must name the module's role (postgres://<role>:<password>@host/db)`);
    if (!url.password && !o.DB_PASSWORD && needsPassword) {
      throw new ConfigError(`Invalid configuration: ${prefix}DATABASE_URL has no password (or set ${prefix}DB_PASSWORD): each module role has its own in production`);
    }
    if (o.DB_PASSWORD && !url.password) url.password = o.DB_PASSWORD;
    return { role, url: url.toString() };
  }
  const role = `${env.DB_ROLE_PREFIX}_${module}`;
  if (!o.DB_PASSWORD && needsPassword) {
    throw new ConfigError(
      `Invalid configuration: ${prefix}DATABASE_URL or ${prefix}DB_PASSWORD is required in production (each module role has its own password)`,
    );
  }
  const password = o.DB_PASSWORD ?? (env.NODE_ENV === 'production' ? '' : developmentPassword(env.DATABASE_URL, role));
  return { role, url: urlForRole(env.DATABASE_URL, role, password) };
}

/**
 * The replica URL as the module's role: a physical replica has the primary's roles and
 * passwords, so user and password default to the module's own; another user is refused
 * (it would read with privileges the module's role does not have, or none).
 */
function replicaConnection(replicaUrl: string, role: string, primaryUrl: string, prefix: string): string {
  const url = new URL(replicaUrl);
  const user = decodeURIComponent(url.username);
  if (user && user !== role) {
    throw new ConfigError(`Invalid configuration: ${prefix}DATABASE_REPLICA_URL must log in as the module's role "${role}" (roles replicate with the primary), not "${user}"`);
  }
  const primary = new URL(primaryUrl);
  url.username = primary.username;
  if (!url.password) url.password = primary.password;
  return url.toString();
}

/**
 * The access-token keys (docs/architecture.md, "Authentication"). Every process verifies
 * with AUTH_PUBLIC_KEYS. The signing key (a module variable marked TokenSigningKeySetting)
 * is loaded only where its module runs; elsewhere it is dropped from the config, so an
 * extracted service cannot mint tokens even if it was handed the key. In production both
 * are required and the signing key's public half must be published in AUTH_PUBLIC_KEYS
 * (else the other processes would refuse its tokens). Outside production a missing
 * signing key is generated for this start only (never a key written in the source), and
 * the process trusts its own public key.
 */
function authKeys(
  env: Env,
  enabled: ReadonlySet<string>,
  modules: Record<string, Record<string, unknown>>,
  signingKeys: readonly { module: string; variable: string }[],
): AuthKeysConfig {
  const production = env.NODE_ENV === 'production';
  let publicKeys: VerificationKey[] = [];
  if (env.AUTH_PUBLIC_KEYS !== undefined) {
    try {
      publicKeys = parsePublicKeys(env.AUTH_PUBLIC_KEYS);
    } catch (error) {
      if (!(error instanceof TokenKeyError)) throw error;
      throw new ConfigError(`Invalid configuration: AUTH_PUBLIC_KEYS ${error.message} (value not shown)`);
    }
  } else if (production) {
    throw new ConfigError('Invalid configuration: AUTH_PUBLIC_KEYS is required in production (the public key(s) access tokens are verified with)');
  }
  const ignored: string[] = [];
  let generated: AuthKeysConfig['generated'];
  for (const { module, variable } of signingKeys) {
    const values = modules[module];
    const text = values[variable] as string | undefined;
    if (!enabled.has(module)) {
      if (text !== undefined) ignored.push(variable);
      delete values[variable];
      continue;
    }
    if (text === undefined) {
      if (production) {
        throw new ConfigError(`Invalid configuration: ${variable} is required in production (the private key module "${module}" signs access tokens with)`);
      }
      const key = generateSigningKey();
      values[variable] = privateKeyPem(key);
      generated = { variable, module, kid: key.kid };
      publicKeys = [...publicKeys, key];
      continue;
    }
    let key;
    try {
      key = parseSigningKey(text);
    } catch (error) {
      if (!(error instanceof TokenKeyError)) throw error;
      throw new ConfigError(`Invalid configuration: ${variable} ${error.message} (value not shown)`);
    }
    if (!publicKeys.some((known) => known.kid === key.kid)) {
      if (production) {
        throw new ConfigError(`Invalid configuration: the public key of ${variable} (kid ${key.kid}) is not in AUTH_PUBLIC_KEYS: other processes would refuse its tokens`);
      }
      publicKeys = [...publicKeys, key];
    }
  }
  // Only public halves leave this function: a SigningKey is also a VerificationKey.
  return { publicKeys: publicKeys.map(({ kid, alg, publicKey }) => ({ kid, alg, publicKey })), generated, ignored };
}
