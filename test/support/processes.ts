import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '../..');

/**
 * A port for a server a test starts in another process (which binds it later). Picked
 * below the kernel's ephemeral range (32768–60999 on Linux): a port the OS hands out for
 * `listen(0)` is also what it gives outgoing connections (to Postgres, to Redis) as their
 * local port, so between this check and the child's bind one of the many connections of
 * the parallel suites could take it (EADDRINUSE). Random within 15000–32767, checked free.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 15_000 + Math.floor(Math.random() * (32_768 - 15_000));
    if (await canListen(port)) return port;
  }
  throw new Error('no free port found below the ephemeral range');
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A redis-server of the test's own, on its own port: the only Redis a test may stop. */
export class ThrowawayRedis {
  private child?: ChildProcess;
  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    await waitForPort(this.port, 5000);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    this.child = undefined;
  }
}

export async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs a built app (`dist/apps/<app>/src/main.js`) as a real process and keeps its output. */
export class AppProcess {
  readonly output: string[] = [];
  private child?: ChildProcess;
  exit?: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(private readonly env: Record<string, string>, private readonly app = 'api') {}

  start(): void {
    this.child = spawn(process.execPath, [path.join(ROOT, 'dist', 'apps', this.app, 'src', 'main.js')], {
      cwd: ROOT,
      // Any free internal port (/metrics, /docs): the default 9100 would clash between processes.
      // As testConfig: a loaded test machine's scheduling delays must not shed requests.
      env: { PATH: process.env.PATH ?? '', INTERNAL_PORT: '0', SHED_MAX_EVENT_LOOP_DELAY_MS: '60000', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (chunk: Buffer) => this.output.push(chunk.toString()));
    this.child.stderr!.on('data', (chunk: Buffer) => this.output.push(chunk.toString()));
    this.exit = new Promise((resolve) => this.child!.once('exit', (code, signal) => resolve({ code, signal })));
  }

  signal(signal: NodeJS.Signals): void {
    this.child?.kill(signal);
  }

  text(): string {
    return this.output.join('');
  }

  async waitForLog(pattern: RegExp, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.text())) {
      if (this.child?.exitCode !== null && this.child?.exitCode !== undefined) {
        throw new Error(`process exited (${this.child.exitCode}) before logging ${pattern}:\n${this.text()}`);
      }
      if (Date.now() > deadline) throw new Error(`no log line matching ${pattern} within ${timeoutMs} ms:\n${this.text()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  kill(): void {
    if (this.child && this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

/**
 * A Postgres cluster of the test's own (initdb + pg_ctl, as the `postgres` OS user when
 * run as root), with password authentication on TCP: the shared server trusts every
 * connection, so only here does a wrong password fail.
 */
export class ThrowawayPostgres {
  private dir?: string;
  readonly adminPassword = `admin-${Math.random().toString(36).slice(2)}`;
  constructor(readonly port: number) {}

  adminUrl(database = 'postgres'): string {
    return `postgres://postgres:${this.adminPassword}@127.0.0.1:${this.port}/${database}`;
  }

  async start(): Promise<void> {
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'mm-pg-'));
    writeFileSync(path.join(this.dir, 'pw'), this.adminPassword);
    if (process.getuid?.() === 0) execFileSync('chown', ['-R', 'postgres', this.dir]);
    this.run('initdb', ['-D', `${this.dir}/data`, '-U', 'postgres', `--pwfile=${this.dir}/pw`, '--auth-local=trust', '--auth-host=scram-sha-256', '--no-sync']);
    this.run('pg_ctl', ['-D', `${this.dir}/data`, '-l', `${this.dir}/log`, '-w', '-o', `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start']);
    await waitForPort(this.port, 10_000);
  }

  async stop(): Promise<void> {
    if (!this.dir) return;
    try {
      this.run('pg_ctl', ['-D', `${this.dir}/data`, '-m', 'immediate', 'stop']);
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
      this.dir = undefined;
    }
  }

  private run(command: string, args: string[]): void {
    runAsPostgres(command, args);
  }
}

/** Runs a Postgres binary, as the `postgres` OS user when run as root (initdb and the server refuse root). */
function runAsPostgres(command: string, args: string[]): void {
  const [file, all] = process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
  execFileSync(file as string, all as string[], { stdio: 'ignore' });
}

/**
 * A streaming replica of a ThrowawayPostgres (`pg_basebackup -R`: a copy of the primary's
 * data directory, roles and pg_hba included, that follows its WAL), on a port of its own.
 * The primary's pg_hba from initdb already admits replication connections on 127.0.0.1.
 */
export class ThrowawayReplica {
  private dir?: string;
  constructor(readonly primary: ThrowawayPostgres, readonly port: number) {}

  adminUrl(database = 'postgres'): string {
    return `postgres://postgres:${this.primary.adminPassword}@127.0.0.1:${this.port}/${database}`;
  }

  async start(): Promise<void> {
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'mm-pg-replica-'));
    if (process.getuid?.() === 0) execFileSync('chown', ['-R', 'postgres', this.dir]);
    // -c fast: no wait for the next scheduled checkpoint; -X stream: the WAL written meanwhile comes along.
    runAsPostgres('pg_basebackup', ['-d', this.primary.adminUrl(), '-D', `${this.dir}/data`, '-R', '-X', 'stream', '-c', 'fast', '--no-sync']);
    runAsPostgres('pg_ctl', ['-D', `${this.dir}/data`, '-l', `${this.dir}/log`, '-w', '-o', `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c hot_standby=on`, 'start']);
    await waitForPort(this.port, 10_000);
  }

  /** Stops the server at once (as a crash would) but keeps its data, so `start()` is not needed again. */
  stop(): void {
    if (!this.dir) return;
    try {
      runAsPostgres('pg_ctl', ['-D', `${this.dir}/data`, '-m', 'immediate', 'stop']);
    } catch {
      // Already stopped.
    }
  }

  async remove(): Promise<void> {
    this.stop();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = undefined;
  }
}
