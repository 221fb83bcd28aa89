import { createHash, generateKeyPairSync } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { generateSigningKey, parseSigningKey, privateKeyPem, publicJwk, publicKeyPem } from '../auth/token-keys';
import type { ModuleManifest } from '../messaging/module-manifest';
import { ConfigError, loadConfig as load, loadConfig as loadWith, moduleConfig, TOKEN_SIGNING_KEY } from './app-config';

// The platform knows no domain module: these stand in for the manifests an app passes.
const manifest = (name: string, config?: ModuleManifest['config']): ModuleManifest =>
  ({ name, schema: name, mayUse: [], queues: [], events: { publishes: [], consumes: [] }, config });
const billing = { ...manifest('billing'), config: Type.Object({ BILLING_RETRY_LIMIT: Type.Integer({ default: 3, minimum: 1 }) }) };
const MANIFESTS = [manifest('catalog'), manifest('shipping'), billing];
const loadConfig = (env: NodeJS.ProcessEnv) => load(env, MANIFESTS);

describe('loadConfig', () => {
  it('applies documented defaults', () => {
    const config = loadConfig({});
    expect(config.env.PORT).toBe(3000);
    expect(config.env.DB_STATEMENT_TIMEOUT_MS).toBe(2000);
    expect([...config.enabledModules]).toEqual(['catalog', 'shipping', 'billing']);
  });

  it('refuses an inbox kept for less time than the outbox (a replayable event must still be recognised)', () => {
    expect(() => loadConfig({ OUTBOX_RETENTION: '7d', INBOX_RETENTION: '6d' })).toThrow(
      'INBOX_RETENTION (6d) must be at least OUTBOX_RETENTION (7d)',
    );
    expect(loadConfig({ OUTBOX_RETENTION: '36h', INBOX_RETENTION: '2d' }).env.INBOX_RETENTION).toBe('2d');
    expect(loadConfig({}).env).toMatchObject({ INBOX_RETENTION: '30d', DEAD_LETTER_RETENTION: '30d', RETENTION_INTERVAL_MS: 3_600_000 });
  });

  it('refuses OUTBOX_RETENTION_INTERVAL_MS, naming RETENTION_INTERVAL_MS (outbox retention runs with the other rules now)', () => {
    expect(() => loadConfig({ OUTBOX_RETENTION_INTERVAL_MS: '600000' })).toThrow(
      /^Invalid configuration: OUTBOX_RETENTION_INTERVAL_MS is no longer supported: .*every RETENTION_INTERVAL_MS.*unset OUTBOX_RETENTION_INTERVAL_MS/,
    );
    // Empty counts as unset, like every other variable.
    expect(loadConfig({ OUTBOX_RETENTION_INTERVAL_MS: '' }).env.RETENTION_INTERVAL_MS).toBe(3_600_000);
  });

  it('derives one role, schema and URL per module from the admin URL, each with its own password', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://admin:secret@db:5432/shop',
      DB_ROLE_PREFIX: 'shop',
      SHIPPING_DB_PASSWORD: 'p@ss word!',
      CATALOG_DB_PASSWORD: 'another-one',
    });
    expect(config.databases.shipping).toMatchObject({ role: 'shop_shipping', schema: 'shipping', poolMax: 10, statementTimeoutMs: 2000 });
    const url = new URL(config.databases.shipping.url);
    expect([url.username, decodeURIComponent(url.password), url.host, url.pathname]).toEqual(['shop_shipping', 'p@ss word!', 'db:5432', '/shop']);
    expect(decodeURIComponent(new URL(config.databases.catalog.url).password)).toBe('another-one');
  });

  it('derives the role prefix from the database name when DB_ROLE_PREFIX is unset', () => {
    expect(loadConfig({ DATABASE_URL: 'postgres://admin@db/Shop-Staging' }).databases.catalog.role).toBe('shop_staging_catalog');
    expect(loadConfig({ DATABASE_URL: 'postgres://admin@db/2024' }).databases.catalog.role).toBe('db_2024_catalog');
  });

  it('outside production, gives each role a different generated password (none written in source)', () => {
    const passwords = (env: NodeJS.ProcessEnv) => Object.values(loadConfig(env).databases).map((db) => new URL(db.url).password);
    const first = passwords({ DATABASE_URL: 'postgres://admin@db/a' });
    expect(new Set(first).size).toBe(3);
    expect(first.every((p) => p.length >= 32)).toBe(true);
    expect(passwords({ DATABASE_URL: 'postgres://admin@db/a' })).toEqual(first); // stable: the bootstrap and the server agree
    expect(passwords({ DATABASE_URL: 'postgres://admin@db/b' })).not.toEqual(expect.arrayContaining([first[0]]));
  });

  it('in production requires each module role\'s own password', () => {
    const production = { NODE_ENV: 'production', AUTH_PUBLIC_KEYS: publicKeyPem(generateSigningKey()), FLAGS_DB_PASSWORD: 'platform-pass', CATALOG_DB_PASSWORD: 'catalog-pass', SHIPPING_DATABASE_URL: 'postgres://s:shipping-pass@db/shop' };
    expect(() => loadConfig(production)).toThrow('BILLING_DATABASE_URL or BILLING_DB_PASSWORD is required in production');
    expect(() => loadConfig({ ...production, BILLING_DATABASE_URL: 'postgres://b@db/shop' })).toThrow('BILLING_DATABASE_URL has no password');
    expect(loadConfig({ ...production, BILLING_DB_PASSWORD: 'billing-pass' }).databases.shipping.role).toBe('s');
  });

  it('in production a serving process needs the passwords of its enabled modules only', () => {
    const serving = { NODE_ENV: 'production', AUTH_PUBLIC_KEYS: publicKeyPem(generateSigningKey()), MODULES_ENABLED: 'catalog', CATALOG_DB_PASSWORD: 'catalog-pass', FLAGS_DB_PASSWORD: 'platform-pass' };
    expect(new URL(loadConfig(serving).databases.shipping.url).password).toBe('');
    // The platform's own role (feature flags) is read by every process: its password is always needed.
    expect(() => loadConfig({ ...serving, FLAGS_DB_PASSWORD: '' })).toThrow('FLAGS_DATABASE_URL or FLAGS_DB_PASSWORD is required in production');
    expect(loadConfig(serving).platformDatabase).toEqual({ role: 'postgres_platform', url: 'postgres://postgres_platform:platform-pass@127.0.0.1:5432/postgres' });
  });

  it('the bootstrap step needs the admin URL and every module password in production, but no serving secret', () => {
    const bootstrap = (env: NodeJS.ProcessEnv) => () => load({ NODE_ENV: 'production', ...env }, MANIFESTS, { purpose: 'bootstrap' });
    const passwords = { CATALOG_DB_PASSWORD: 'catalog-pass', SHIPPING_DB_PASSWORD: 'shipping-pass', BILLING_DB_PASSWORD: 'billing-pass', FLAGS_DB_PASSWORD: 'platform-pass' };
    expect(bootstrap(passwords)).toThrow('DATABASE_URL (the admin connection) is required by the database bootstrap in production');
    expect(bootstrap({ ...passwords, DATABASE_URL: 'postgres://admin:a@db/shop', BILLING_DB_PASSWORD: '' })).toThrow(
      'BILLING_DATABASE_URL or BILLING_DB_PASSWORD is required in production',
    );
    expect(bootstrap({ ...passwords, DATABASE_URL: 'postgres://admin:a@db/shop' })().databases.billing.role).toBe('shop_billing');
  });

  it('takes per-module overrides', () => {
    const config = loadConfig({ BILLING_DATABASE_URL: 'postgres://b:pw@other/billing', CATALOG_DB_POOL_MAX: '3', CATALOG_DB_STATEMENT_TIMEOUT_MS: '500' });
    expect(config.databases.billing.url).toBe('postgres://b:pw@other/billing');
    expect(config.databases.billing.role).toBe('b');
    expect(config.databases.catalog).toMatchObject({ poolMax: 3, statementTimeoutMs: 500 });
    expect(config.databases.shipping.poolMax).toBe(10);
  });

  it('gives every module the global pool and timeouts unless a module overrides them', () => {
    const config = loadConfig({ DB_POOL_MAX: '4', DB_STATEMENT_TIMEOUT_MS: '300', DB_CONNECT_TIMEOUT_MS: '700', SHIPPING_DB_POOL_MAX: '9' });
    expect(config.databases.catalog).toMatchObject({ poolMax: 4, statementTimeoutMs: 300, connectTimeoutMs: 700 });
    expect(config.databases.shipping).toMatchObject({ poolMax: 9, statementTimeoutMs: 300 });
  });

  it.each([
    [{ PORT: '70000' }, 'PORT must be <= 65535 (got "70000")'],
    [{ DB_POOL_MAX: 'many' }, 'DB_POOL_MAX must be integer (got "many")'],
    [{ REDIS_URL: 'http://x' }, 'REDIS_URL must match pattern'],
    [{ SHIPPING_DB_CONNECT_TIMEOUT_MS: '5' }, 'SHIPPING_DB_CONNECT_TIMEOUT_MS must be >= 100'],
    [{ BILLING_RETRY_LIMIT: '0' }, 'BILLING_RETRY_LIMIT must be >= 1 (got "0")'],
    [{ MODULES_ENABLED: 'catalog,payments' }, 'MODULES_ENABLED names unknown module "payments" (known: catalog, shipping, billing)'],
    [{ DB_BOOTSTRAP_ON_START: 'perhaps' }, 'DB_BOOTSTRAP_ON_START must be boolean'],
  ])('rejects %j naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it("gives a module's replica URL the module's role and password; another user is refused", () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://admin:secret@db:5432/shop',
      DB_ROLE_PREFIX: 'shop',
      CATALOG_DB_PASSWORD: 'catalog-own-password',
      CATALOG_DATABASE_REPLICA_URL: 'postgres://replica-1:5433/shop',
      SHIPPING_DATABASE_REPLICA_URL: 'postgres://shop_shipping:replica-pass@replica-1/shop',
    });
    const replica = new URL(config.databases.catalog.replicaUrl!);
    expect([replica.host, replica.username, decodeURIComponent(replica.password), replica.pathname]).toEqual(['replica-1:5433', 'shop_catalog', 'catalog-own-password', '/shop']);
    expect(new URL(config.databases.shipping.replicaUrl!).password).toBe('replica-pass');
    expect(config.databases.billing.replicaUrl).toBeUndefined();
    expect([config.env.DB_REPLICA_MAX_LAG_MS, config.env.DB_REPLICA_POLL_INTERVAL_MS]).toEqual([5000, 1000]);
    expect(() => loadConfig({ DB_ROLE_PREFIX: 'shop', CATALOG_DATABASE_REPLICA_URL: 'postgres://postgres:x@replica-1/shop' })).toThrow(
      /CATALOG_DATABASE_REPLICA_URL must log in as the module's role "shop_catalog"/,
    );
    expect(() => loadConfig({ CATALOG_DATABASE_REPLICA_URL: 'mysql://replica-1/shop' })).toThrow(ConfigError);
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ PORT: '' }).env.PORT).toBe(3000);
  });

  it("validates each module's own variables from its manifest and hands them back typed", () => {
    expect(moduleConfig(loadConfig({}), billing).BILLING_RETRY_LIMIT).toBe(3);
    expect(moduleConfig(loadConfig({ BILLING_RETRY_LIMIT: '7' }), billing).BILLING_RETRY_LIMIT).toBe(7);
  });

  it('refuses a variable declared by two modules, or by a module and the platform', () => {
    const twice = { ...manifest('refunds'), config: Type.Object({ BILLING_RETRY_LIMIT: Type.Integer({ default: 1 }) }) };
    expect(() => load({}, [billing, twice])).toThrow('BILLING_RETRY_LIMIT is declared by both module "billing" and module "refunds"');
    const clash = { ...manifest('web'), config: Type.Object({ PORT: Type.Integer({ default: 1 }) }) };
    expect(() => load({}, [clash])).toThrow('PORT is declared by both the platform and module "web"');
  });
});

describe('loadConfig: access-token keys', () => {
  // A module that signs access tokens, as the users manifest declares it.
  const accounts = manifest('accounts', Type.Object({ ACCOUNTS_SIGNING_KEY: Type.Optional(Type.String({ minLength: 1, [TOKEN_SIGNING_KEY]: true })) }));
  const all = [accounts, manifest('mailer')];
  const pair = () => {
    const key = generateSigningKey();
    return { key, privatePem: privateKeyPem(key), publicPem: publicKeyPem(key) };
  };

  it('outside production without a key: a fresh pair per load, trusted by this process only', () => {
    const first = load({}, all);
    const second = load({}, all);
    expect(first.auth.generated).toEqual({ variable: 'ACCOUNTS_SIGNING_KEY', module: 'accounts', kid: expect.any(String) });
    expect(first.auth.generated!.kid).not.toBe(second.auth.generated!.kid);
    expect(first.auth.publicKeys.map((k) => k.kid)).toEqual([first.auth.generated!.kid]);
    // The module gets its private key; the platform's key set holds public halves only.
    expect(parseSigningKey(first.modules.accounts.ACCOUNTS_SIGNING_KEY as string).kid).toBe(first.auth.generated!.kid);
    expect(first.auth.publicKeys.every((k) => !('privateKey' in k) && k.publicKey.type === 'public')).toBe(true);
  });

  it('drops the signing key in a process that does not run its module', () => {
    const { privatePem, publicPem } = pair();
    const config = load({ MODULES_ENABLED: 'mailer', AUTH_PUBLIC_KEYS: publicPem, ACCOUNTS_SIGNING_KEY: privatePem }, all);
    expect(config.modules.accounts).not.toHaveProperty('ACCOUNTS_SIGNING_KEY');
    expect(config.auth.ignored).toEqual(['ACCOUNTS_SIGNING_KEY']);
    expect(config.auth.generated).toBeUndefined();
    expect(load({ MODULES_ENABLED: 'mailer', NODE_ENV: 'production', MAILER_DB_PASSWORD: 'mailer-pass', FLAGS_DB_PASSWORD: 'platform-pass', AUTH_PUBLIC_KEYS: publicPem }, all).auth.publicKeys).toHaveLength(1);
  });

  it('in production requires both, and the signing key published in AUTH_PUBLIC_KEYS', () => {
    const { key, privatePem, publicPem } = pair();
    const next = pair();
    // Every role's database password is there: the token keys are what is checked here.
    const db = { ACCOUNTS_DB_PASSWORD: 'accounts-pass', MAILER_DB_PASSWORD: 'mailer-pass', FLAGS_DB_PASSWORD: 'platform-pass' };
    const load = (env: NodeJS.ProcessEnv, manifests: typeof all) => loadWith({ ...db, ...env }, manifests);
    expect(() => load({ NODE_ENV: 'production', ACCOUNTS_SIGNING_KEY: privatePem }, all)).toThrow('AUTH_PUBLIC_KEYS is required in production');
    expect(() => load({ NODE_ENV: 'production', AUTH_PUBLIC_KEYS: publicPem }, all)).toThrow('ACCOUNTS_SIGNING_KEY is required in production');
    expect(() => load({ NODE_ENV: 'production', AUTH_PUBLIC_KEYS: next.publicPem, ACCOUNTS_SIGNING_KEY: privatePem }, all)).toThrow(
      `the public key of ACCOUNTS_SIGNING_KEY (kid ${key.kid}) is not in AUTH_PUBLIC_KEYS`,
    );
    // A rotation: the current and the next key published, the current one signing.
    const config = load({ NODE_ENV: 'production', AUTH_PUBLIC_KEYS: `${publicPem}\n${next.publicPem}`, ACCOUNTS_SIGNING_KEY: privatePem }, all);
    expect(config.auth.publicKeys.map((k) => k.kid)).toEqual([key.kid, next.key.kid]);
  });

  it('reads the key set as PEMs, a JWKS, a JWK array or one JWK; the kid is the RFC 7638 thumbprint', () => {
    const a = pair();
    const b = pair();
    const jwks = JSON.stringify({ keys: [publicJwk(a.key), publicJwk(b.key)] });
    for (const text of [`${a.publicPem}${b.publicPem}`, jwks, JSON.stringify([publicJwk(a.key), publicJwk(b.key)]), a.publicPem.replace(/\n/g, '\\n')]) {
      const kids = load({ AUTH_PUBLIC_KEYS: text }, [manifest('mailer')]).auth.publicKeys.map((k) => k.kid);
      expect(kids[0]).toBe(a.key.kid);
    }
    expect(load({ AUTH_PUBLIC_KEYS: JSON.stringify(publicJwk(b.key)) }, [manifest('mailer')]).auth.publicKeys[0].kid).toBe(b.key.kid);
    // RFC 7638 (and RFC 8037 §2 for OKP): SHA-256 of the required members, sorted, no spaces.
    const jwk = a.key.publicKey.export({ format: 'jwk' });
    expect(a.key.kid).toBe(createHash('sha256').update(`{"crv":"Ed25519","kty":"OKP","x":"${jwk.x}"}`).digest('base64url'));
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const es = load({ AUTH_PUBLIC_KEYS: p256.publicKey.export({ format: 'pem', type: 'spki' }).toString() }, [manifest('mailer')]).auth.publicKeys[0];
    expect(es.alg).toBe('ES256');
  });

  it.each([
    [{ AUTH_PUBLIC_KEYS: 'hello' }, 'AUTH_PUBLIC_KEYS no PEM block or JSON key found'],
    [{ AUTH_PUBLIC_KEYS: '{"kty":"OKP"}' }, 'AUTH_PUBLIC_KEYS not a JWKS, JWK or PEM public key'],
    [{ ACCOUNTS_SIGNING_KEY: 'secret-text-not-a-key' }, 'ACCOUNTS_SIGNING_KEY not a PEM or JWK private key (value not shown)'],
  ])('refuses %j naming the variable, never the value', (env, message) => {
    expect(() => load(env, all)).toThrow(ConfigError);
    expect(() => load(env, all)).toThrow(message);
    expect(() => load(env, all)).not.toThrow(/secret-text/);
  });

  it('refuses a private key in the public set, and keys of other types', () => {
    const { privatePem } = pair();
    expect(() => load({ AUTH_PUBLIC_KEYS: privatePem }, all)).toThrow('a PEM private key in the public key set');
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    expect(() => load({ AUTH_PUBLIC_KEYS: publicKey.export({ format: 'pem', type: 'spki' }).toString() }, all)).toThrow('unsupported key type rsa');
    expect(() => load({ ACCOUNTS_SIGNING_KEY: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() }, all)).toThrow('unsupported key type rsa');
    expect(() => load({ AUTH_PUBLIC_KEYS: JSON.stringify({ keys: [privateKey.export({ format: 'jwk' })] }) }, all)).toThrow('has a private part');
  });
});
