import { ConfigError, loadConfig } from './app-config';

describe('loadConfig', () => {
  it('applies documented defaults', () => {
    const config = loadConfig({});
    expect(config.env.PORT).toBe(3000);
    expect(config.env.DB_STATEMENT_TIMEOUT_MS).toBe(2000);
    expect([...config.enabledModules]).toEqual(['users', 'orders', 'notifications']);
  });

  it('derives one role, schema and URL per module from the admin URL', () => {
    const config = loadConfig({ DATABASE_URL: 'postgres://admin:secret@db:5432/shop', DB_ROLE_PREFIX: 'shop', DB_ROLE_PASSWORD: 'p@ss word!' });
    expect(config.databases.orders).toMatchObject({ role: 'shop_orders', schema: 'orders', poolMax: 10, statementTimeoutMs: 2000 });
    const url = new URL(config.databases.orders.url);
    expect([url.username, decodeURIComponent(url.password), url.host, url.pathname]).toEqual(['shop_orders', 'p@ss word!', 'db:5432', '/shop']);
  });

  it('takes per-module overrides', () => {
    const config = loadConfig({ NOTIFICATIONS_DATABASE_URL: 'postgres://n:pw@other/notif', USERS_DB_POOL_MAX: '3', USERS_DB_STATEMENT_TIMEOUT_MS: '500' });
    expect(config.databases.notifications.url).toBe('postgres://n:pw@other/notif');
    expect(config.databases.users).toMatchObject({ poolMax: 3, statementTimeoutMs: 500 });
    expect(config.databases.orders.poolMax).toBe(10);
  });

  it.each([
    [{ PORT: '70000' }, 'PORT must be <= 65535 (got "70000")'],
    [{ DB_POOL_MAX: 'many' }, 'DB_POOL_MAX must be integer (got "many")'],
    [{ REDIS_URL: 'http://x' }, 'REDIS_URL must match pattern'],
    [{ ORDERS_DB_CONNECT_TIMEOUT_MS: '5' }, 'ORDERS_DB_CONNECT_TIMEOUT_MS must be >= 100'],
    [{ DB_BOOTSTRAP_ON_START: 'perhaps' }, 'DB_BOOTSTRAP_ON_START must be boolean'],
  ])('rejects %j naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ PORT: '' }).env.PORT).toBe(3000);
  });
});
