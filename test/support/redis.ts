// Real redis-server processes for tests, on free ports: a standalone server that can be killed,
// restarted on the same port and frozen (SIGSTOP), plus a Sentinel and a small Cluster.
// Readiness is always observed (PING / CLUSTER INFO), never assumed after a sleep.
import { type ChildProcess, spawn, execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

export { freePort };

export const REDIS_SERVER = process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server';
const REDIS_CLI = process.env.REDIS_CLI_BIN ?? '/usr/bin/redis-cli';

export interface RedisServer {
  url: string;
  port: number;
  /** SIGKILL, as a crash would; resolves once the process is gone. */
  stop(): Promise<void>;
  /** A fresh, empty server on the same port. */
  restart(): Promise<void>;
  /** SIGSTOP: the port still accepts connections but nothing answers. */
  pause(): void;
  resume(): void;
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * Sends one command over a fresh connection and returns the first reply as text (simple string,
 * error, integer or bulk string). Enough for readiness probes without a client library.
 */
export function redisCommand(port: number, args: string[], timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    let buf = '';
    const finish = (err: Error | null, value?: string) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(value ?? '');
    };
    const timer = setTimeout(() => finish(new Error(`no reply from 127.0.0.1:${port} within ${timeoutMs}ms`)), timeoutMs);
    sock.setEncoding('utf8');
    sock.on('error', (e) => finish(e));
    sock.on('connect', () => {
      sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
    });
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const eol = buf.indexOf('\r\n');
      if (eol < 0) return;
      const head = buf.slice(0, eol);
      if (head[0] === '$') {
        const len = Number(head.slice(1));
        if (len < 0) return finish(null, '');
        const body = Buffer.from(buf.slice(eol + 2), 'utf8');
        if (body.length >= len) finish(null, body.subarray(0, len).toString('utf8'));
      } else if (head[0] === '-') {
        finish(new Error(head.slice(1)));
      } else {
        finish(null, head.slice(1));
      }
    });
  });
}

/** Polls `probe` until it returns true; bounded, with a short pause between attempts. */
export async function until(probe: () => Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    try {
      if (await probe()) return;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

interface Spawned {
  child: ChildProcess;
  output: () => string;
}

/** Starts redis-server with `args` and resolves once it answers PING; rejects if it exits first. */
async function spawnRedis(port: number, args: string[]): Promise<Spawned> {
  const child = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  let exited = false;
  child.once('exit', () => {
    exited = true;
    children.delete(child);
  });
  await until(
    async () => {
      if (exited) throw new Error(`redis-server on port ${port} exited: ${out.trim().slice(-500)}`);
      // With --requirepass the answer is a NOAUTH error, which still proves the server is serving.
      const reply = await redisCommand(port, ['PING']).catch((e: Error) =>
        e.message.startsWith('NOAUTH') ? 'PONG' : Promise.reject(e),
      );
      return reply === 'PONG';
    },
    `redis-server on port ${port}`,
    10_000,
  ).catch((e: unknown) => {
    child.kill('SIGKILL');
    throw e;
  });
  return { child, output: () => out };
}

function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

export interface StartOptions {
  /** Extra redis-server arguments, e.g. ['--requirepass', 'pw']. */
  args?: string[];
}

function serverArgs(port: number, extra: string[]): string[] {
  return ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning', ...extra];
}

/** A standalone redis-server on a free port. */
export async function startRedis(opts: StartOptions = {}): Promise<RedisServer> {
  const extra = opts.args ?? [];
  let port = 0;
  let current: Spawned | undefined;
  for (let attempt = 0; !current; attempt++) {
    port = await freePort();
    try {
      current = await spawnRedis(port, serverArgs(port, extra));
    } catch (e) {
      if (attempt >= 4) throw e; // the port was taken between probe and bind: try another one
    }
  }
  const started = current;
  let proc = started.child;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: () => kill(proc),
    async restart() {
      await kill(proc);
      proc = (await spawnRedis(port, serverArgs(port, extra))).child;
    },
    pause: () => void proc.kill('SIGSTOP'),
    resume: () => void proc.kill('SIGCONT'),
  };
}

export interface RedisSentinel {
  port: number;
  masterName: string;
  stop(): Promise<void>;
}

/** A Sentinel monitoring `masterPort` on 127.0.0.1 (quorum 1) as master group `masterName`. */
export async function startSentinel(masterPort: number, masterName = 'aigatetest'): Promise<RedisSentinel> {
  const dir = mkdtempSync(join(tmpdir(), 'aigate-sentinel-'));
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const conf = join(dir, `sentinel-${port}.conf`);
    // Sentinel rewrites its config file, so it must be a writable file of its own.
    writeFileSync(conf, `port ${port}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor ${masterName} 127.0.0.1 ${masterPort} 1\n`);
    try {
      const s = await spawnRedis(port, [conf, '--sentinel', '--loglevel', 'warning']);
      // The answer is a two-element array (host, port) once the master is known; redisCommand
      // returns an array's length.
      await until(
        async () => (await redisCommand(port, ['SENTINEL', 'get-master-addr-by-name', masterName])) === '2',
        'sentinel to know its master',
      );
      return {
        port,
        masterName,
        async stop() {
          await kill(s.child);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (e) {
      if (attempt >= 4) throw e;
    }
  }
}

export interface RedisClusterNodes {
  nodes: { host: string; port: number }[];
  /** Kills one node (SIGKILL), leaving its slots uncovered. */
  stopNode(index: number): Promise<void>;
  stop(): Promise<void>;
}

/** A three-master Redis Cluster (no replicas) on free ports, all slots assigned and state ok. */
export async function startCluster(size = 3): Promise<RedisClusterNodes> {
  const dir = mkdtempSync(join(tmpdir(), 'aigate-cluster-'));
  const procs: ChildProcess[] = [];
  const ports: number[] = [];
  try {
    while (ports.length < size) {
      const port = 20000 + Math.floor(Math.random() * 30000);
      // The cluster bus listens on port + 10000.
      if (ports.includes(port) || !(await portIsFree(port)) || !(await portIsFree(port + 10000))) continue;
      try {
        const s = await spawnRedis(
          port,
          serverArgs(port, ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir]),
        );
        procs.push(s.child);
        ports.push(port);
      } catch {
        // taken meanwhile: pick another
      }
    }
    await new Promise<void>((resolve, reject) => {
      execFile(
        REDIS_CLI,
        ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'],
        { timeout: 20_000 },
        (err, stdout, stderr) => (err ? reject(new Error(`redis-cli --cluster create failed: ${stderr || stdout}`)) : resolve()),
      );
    });
    for (const p of ports) {
      await until(async () => (await redisCommand(p, ['CLUSTER', 'INFO'])).includes('cluster_state:ok'), `cluster node ${p} ok`, 20_000);
    }
  } catch (e) {
    await Promise.all(procs.map(kill));
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    nodes: ports.map((port) => ({ host: '127.0.0.1', port })),
    stopNode: (index: number) => kill(procs[index]!),
    async stop() {
      await Promise.all(procs.map(kill));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
