import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { waitForPort } from './processes';

const run = promisify(execFile);

/** A port that is free, and whose cluster bus port (+10000) is free too; never 6379. */
async function freeClusterPort(taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    if (taken.has(port) || taken.has(port + 10_000)) continue;
    if ((await canListen(port)) && (await canListen(port + 10_000))) return port;
  }
  throw new Error('no free port pair for a Redis Cluster node');
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export interface ClusterNodeInfo {
  id: string;
  port: number;
  role: 'master' | 'slave';
  masterId?: string;
  failed: boolean;
}

/**
 * A Redis Cluster of the test's own: `masters` redis-server processes with one replica
 * each, on free ports in a temporary directory, joined by `redis-cli --cluster create`.
 * `stop()` kills every process it started (call it from afterAll; a process exit does it
 * too). Low node timeout, so a killed master's replica takes over within seconds.
 */
export class ThrowawayRedisCluster {
  readonly ports: number[] = [];
  private readonly children = new Map<number, ChildProcess>();
  private readonly dir = mkdtempSync(path.join(os.tmpdir(), 'redis-cluster-'));
  private readonly killOnExit = () => this.killAll();

  constructor(private readonly masters = 3, readonly nodeTimeoutMs = 2000) {}

  /** The REDIS_CLUSTER_NODES value: every node, as host:port. */
  get nodes(): string {
    return this.ports.map((port) => `127.0.0.1:${port}`).join(',');
  }

  async start(): Promise<void> {
    process.once('exit', this.killOnExit);
    const taken = new Set<number>();
    for (let i = 0; i < this.masters * 2; i++) {
      const port = await freeClusterPort(taken);
      taken.add(port).add(port + 10_000);
      this.ports.push(port);
      this.spawnNode(port);
    }
    await Promise.all(this.ports.map((port) => waitForPort(port, 5000)));
    await run('redis-cli', ['--cluster', 'create', ...this.ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes'], { timeout: 20_000 });
    await this.waitUntil(async () => {
      for (const port of this.ports) {
        if (!(await this.command(port, 'cluster', 'info')).includes('cluster_state:ok')) return false;
      }
      const nodes = await this.topology();
      return nodes.filter((n) => n.role === 'master').length === this.masters && nodes.filter((n) => n.role === 'slave').length === this.masters;
    }, 20_000, 'cluster_state:ok with every replica attached');
  }

  /** The port of the master serving `slot`, as a live node sees it. */
  async masterOfSlot(slot: number): Promise<number> {
    const slots = (await this.command(this.livePorts()[0], 'cluster', 'slots')) as unknown as [number, number, [string, number, string]][];
    const range = slots.find(([from, to]) => slot >= from && slot <= to);
    if (!range) throw new Error(`no node serves slot ${slot}`);
    return range[2][1];
  }

  async keySlot(key: string): Promise<number> {
    return Number(await this.command(this.livePorts()[0], 'cluster', 'keyslot', key));
  }

  /** Every node as a live node sees it (`cluster nodes`). */
  async topology(from = this.livePorts()[0]): Promise<ClusterNodeInfo[]> {
    const text = await this.command(from, 'cluster', 'nodes');
    return text
      .trim()
      .split('\n')
      .map((line) => {
        const [id, address, flags, master] = line.split(' ');
        return {
          id,
          port: Number(address.split('@')[0].split(':').pop()),
          role: flags.includes('master') ? 'master' : 'slave',
          masterId: master === '-' ? undefined : master,
          failed: flags.includes('fail'),
        } as ClusterNodeInfo;
      });
  }

  /** SIGKILL: no shutdown, no last writes; as a crashed machine. */
  async kill(port: number): Promise<void> {
    const child = this.children.get(port);
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    this.children.delete(port);
  }

  /** SIGSTOP / SIGCONT: a node that holds its connections but answers nothing (a stall). */
  pause(port: number): void {
    this.children.get(port)?.kill('SIGSTOP');
  }

  resume(port: number): void {
    this.children.get(port)?.kill('SIGCONT');
  }

  /** Starts a killed node again on its own nodes.conf: it rejoins, as a replica if it was failed over. */
  async restart(port: number): Promise<void> {
    if (this.children.has(port)) throw new Error(`node ${port} still runs`);
    this.spawnNode(port);
    await waitForPort(port, 5000);
  }

  /** Resolves once the master on `port` has `count` replicas online. */
  async awaitReplicas(port: number, count: number, timeoutMs = 20_000): Promise<void> {
    await this.waitUntil(async () => {
      const role = (await this.command(port, 'role')) as unknown as [string, number, [string, string, string][]];
      return role[0] === 'master' && role[2].length >= count && (await this.command(port, 'info', 'replication')).split('\n').filter((l) => /^slave\d+:.*state=online/.test(l)).length >= count;
    }, timeoutMs, `${count} replica(s) online for ${port}`);
  }

  /**
   * Waits for the replica of the killed master `port` to be promoted; if the cluster has
   * not done it within `automaticMs`, forces it (`CLUSTER FAILOVER TAKEOVER` on the
   * replica). Resolves with the new master's port.
   */
  async awaitFailover(port: number, automaticMs = 8000, totalMs = 20_000): Promise<number> {
    const before = await this.topology(this.livePorts()[0]);
    const deadId = before.find((n) => n.port === port)!.id;
    const replica = before.find((n) => n.masterId === deadId);
    if (!replica) throw new Error(`master on ${port} had no replica`);
    const started = Date.now();
    let forced = false;
    await this.waitUntil(async () => {
      const info = await this.command(replica.port, 'role');
      if ((info as unknown as string[])[0] === 'master' && (await this.command(replica.port, 'cluster', 'info')).includes('cluster_state:ok')) return true;
      if (!forced && Date.now() - started > automaticMs) {
        forced = true;
        await this.command(replica.port, 'cluster', 'failover', 'takeover');
      }
      return false;
    }, totalMs, `failover of ${port} to ${replica.port}`);
    return replica.port;
  }

  /** Ports whose processes still run. */
  livePorts(): number[] {
    return this.ports.filter((port) => this.children.has(port));
  }

  async stop(): Promise<void> {
    this.killAll();
    process.off('exit', this.killOnExit);
    await Promise.all([...this.children.values()].map((child) => (child.exitCode === null ? new Promise((r) => child.once('exit', r)) : undefined)));
    this.children.clear();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private killAll(): void {
    for (const child of this.children.values()) if (child.exitCode === null) child.kill('SIGKILL');
  }

  private spawnNode(port: number): void {
    const child = spawn(
      'redis-server',
      [
        '--port', String(port),
        '--bind', '127.0.0.1',
        '--cluster-enabled', 'yes',
        '--cluster-config-file', path.join(this.dir, `nodes-${port}.conf`),
        '--cluster-node-timeout', String(this.nodeTimeoutMs),
        '--dir', this.dir,
        '--save', '',
        '--appendonly', 'no',
        '--daemonize', 'no',
      ],
      { stdio: 'ignore' },
    );
    this.children.set(port, child);
  }

  /** One command on one node, over a short-lived plain connection. */
  private async command(port: number, ...args: string[]): Promise<string> {
    const redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
    try {
      await redis.connect();
      return (await redis.call(args[0], ...args.slice(1))) as string;
    } finally {
      redis.disconnect();
    }
  }

  private async waitUntil(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      try {
        if (await probe()) return;
      } catch (error) {
        last = error;
      }
      if (Date.now() > deadline) throw new Error(`Redis Cluster: no ${what} within ${timeoutMs} ms${last ? ` (${String(last)})` : ''}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
