import { ConfigError, loadConfig } from '../config/app-config';
import { QueueFactory } from '../messaging/queue.factory';
import { clusterKeySlot, parseClusterNodes } from './redis-connection';

const load = (env: NodeJS.ProcessEnv) => loadConfig(env, []);

describe('Redis Cluster settings', () => {
  it.each(['mm', 'run-1:a.b_c', '{mm}', 'tenant:{acme}:x', '{a}b'])('accepts the key prefix %s', (prefix) => {
    expect(load({ REDIS_KEY_PREFIX: prefix }).env.REDIS_KEY_PREFIX).toBe(prefix);
  });

  it.each(['{}', '{a', 'a}', '{a}{b}', '{a{b}}', 'a b', 'x'.repeat(65)])('refuses the key prefix %p', (prefix) => {
    expect(() => load({ REDIS_KEY_PREFIX: prefix })).toThrow(ConfigError);
  });

  it('takes REDIS_CLUSTER_NODES as host:port pairs and refuses anything else', () => {
    expect(load({ REDIS_CLUSTER_NODES: '10.0.0.1:7000,redis-b:7001' }).env.REDIS_CLUSTER_NODES).toBe('10.0.0.1:7000,redis-b:7001');
    expect(load({}).env.REDIS_CLUSTER_NODES).toBeUndefined();
    for (const bad of ['redis://a:7000', 'a', 'a:7000,', 'a:x']) expect(() => load({ REDIS_CLUSTER_NODES: bad })).toThrow(ConfigError);
    expect(parseClusterNodes('10.0.0.1:7000,redis-b:7001')).toEqual([{ host: '10.0.0.1', port: 7000 }, { host: 'redis-b', port: 7001 }]);
  });

  it('computes the slot Redis Cluster gives a key (CRC16/XMODEM, hash tags)', () => {
    // The reference check value of CRC16/XMODEM ("123456789" → 0x31C3).
    expect(clusterKeySlot('123456789')).toBe(0x31c3);
    expect(clusterKeySlot('{user1000}.following')).toBe(clusterKeySlot('user1000'));
    expect(clusterKeySlot('a{}b')).toBe(clusterKeySlot('a{}b'));
    expect(clusterKeySlot('{mm:bull}:inbox:wait')).toBe(clusterKeySlot('{mm:bull}:inbox:active'));
  });

  it('hash-tags the Bull prefix on a cluster only, so a queue keeps its keys in one slot', () => {
    const prefix = (env: NodeJS.ProcessEnv) => new QueueFactory(load(env)).bullPrefix();
    expect(prefix({ REDIS_KEY_PREFIX: 'mm' })).toBe('mm:bull');
    expect(prefix({ REDIS_KEY_PREFIX: 'mm', REDIS_CLUSTER_NODES: 'a:7000' })).toBe('{mm:bull}');
    // A prefix that carries its own tag keeps it: every key of the app shares that slot.
    expect(prefix({ REDIS_KEY_PREFIX: '{mm}', REDIS_CLUSTER_NODES: 'a:7000' })).toBe('{mm}:bull');
  });
});
