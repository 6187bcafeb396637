/**
 * Start what the lab measures, one at a time: an iolab engine (`iolab serve` in a child process) or a
 * peer (peers.ts), pinned to the server CPU, on a fresh port. `Running` gives the load generator its
 * URL and the lab the process tree to probe and, for iolab engines, the engine's own counters.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { ENGINE_INFO } from '../engines/index.js';
import type { EngineStats } from '../engines/types.js';
import { spawnChild, stopChild } from './children.js';
import { findBinary, makeTempDir, type PeerSpec } from './peers.js';
import type { Protocol, Target } from './results.js';

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const APP_FOR: Record<Protocol, string> = { http: 'hello', resp: 'kv', echo: 'echo' };
const SCHEME: Record<Protocol, string> = { http: 'http', resp: 'redis', echo: 'tcp' };

export interface Running {
  target: Target;
  protocol: Protocol;
  port: number;
  url: string;
  /** Root of the server's process tree. */
  pid: number;
  child: ChildProcess;
  /** The engine's own counters right now (iolab engines); null for peers. */
  engineStats(): Promise<EngineStats | null>;
  /** Resolves if the server dies on its own (crash, guard). */
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

function pinned(cpu: number | null, cmd: string, args: string[]): [string, string[]] {
  const taskset = cpu === null ? null : findBinary('taskset');
  return taskset ? [taskset, ['-c', String(cpu), cmd, ...args]] : [cmd, args];
}

export interface EngineStart {
  engine: string;
  protocol: Protocol;
  cpu: number | null;
  work?: string;
  /** The app (`static:<dir>` ...); default: the protocol's (hello, kv, echo). */
  app?: string;
  /** More `iolab serve` flags, e.g. ['--edge'] or ['--workers', '2']. */
  extra?: string[];
  /** Extra environment (engine knobs read from env). */
  env?: Record<string, string>;
}

export async function startEngine(o: EngineStart): Promise<Running> {
  const tmp = makeTempDir('serve');
  const statsFile = join(tmp.dir, 'stats.json');
  const args = [CLI, 'serve', '--engine', o.engine, '--app', o.app ?? APP_FOR[o.protocol], '--port', '0', '--json', '--quiet',
    '--stats-file', statsFile, '--drain-ms', '1000', ...(o.work ? ['--work', o.work] : []), ...(o.extra ?? [])];
  const [cmd, argv] = pinned(o.cpu, process.execPath, args);
  const child = spawnChild(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: o.env });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    if (stderr.length < 8192) stderr += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const first = await Promise.race([
    new Promise<{ port: number; engine: string }>((resolve) => createInterface({ input: child.stdout! }).once('line', (l) => resolve(JSON.parse(l)))),
    exited.then((code) => {
      throw new Error(`iolab serve --engine ${o.engine} exited (${code}) before listening: ${stderr.trim().split('\n').pop() ?? ''}`);
    }),
  ]);
  const readStats = (): (EngineStats & { seq: number }) | null => {
    try {
      return JSON.parse(readFileSync(statsFile, 'utf8'));
    } catch {
      return null;
    }
  };
  return {
    target: { kind: 'engine', name: o.engine, ran: first.engine, model: ENGINE_INFO[o.engine]?.model ?? 'unknown' },
    protocol: o.protocol,
    port: first.port,
    url: `${SCHEME[o.protocol]}://127.0.0.1:${first.port}/`,
    pid: child.pid!,
    child,
    exited,
    async engineStats() {
      // SIGUSR2 makes the server rewrite its stats file at once; wait for the new sequence number.
      const before = readStats()?.seq ?? 0;
      if (child.exitCode !== null || child.signalCode !== null) return readStats();
      child.kill('SIGUSR2');
      for (let i = 0; i < 200; i++) {
        const s = readStats();
        if (s && s.seq > before) return s;
        await new Promise((r) => setTimeout(r, 5));
      }
      return readStats();
    },
    async stop() {
      await stopChild(child, 'SIGTERM', 3000);
      tmp.remove();
    },
  };
}

function waitListening(port: number, exited: Promise<number | null>, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  let dead = false;
  void exited.then(() => (dead = true));
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      if (dead) return reject(new Error('exited before listening'));
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > until) reject(new Error(`not listening on ${port} after ${timeoutMs} ms`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

export async function startPeer(spec: PeerSpec, cpu: number | null): Promise<Running> {
  const bin = spec.binary();
  if (!bin) throw new Error(`${spec.name} not installed (apt-get install ${spec.pkg})`);
  const tmp = makeTempDir(spec.name);
  const port = await freePort();
  const c = spec.command(bin, tmp.dir, port);
  const [cmd, argv] = pinned(cpu, c.cmd, c.args);
  // A process group of its own: Apache's prefork MPM signals its whole group (killpg) with SIGTERM when
  // it shuts down, which would otherwise take the lab with it. The lab still stops it by its tree.
  const child = spawnChild(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    if (stderr.length < 8192) stderr += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    await waitListening(port, exited, 10_000);
  } catch (e) {
    await stopChild(child, 'SIGKILL', 100);
    tmp.remove();
    throw new Error(`${spec.name} did not start: ${(e as Error).message} ${stderr.trim().split('\n').slice(-2).join(' ')}`);
  }
  return {
    target: { kind: 'peer', name: spec.name, ran: spec.name, model: spec.model },
    protocol: spec.protocol,
    port,
    url: `${SCHEME[spec.protocol]}://127.0.0.1:${port}${spec.path ?? '/'}`,
    pid: child.pid!,
    child,
    exited,
    engineStats: async () => null,
    async stop() {
      await stopChild(child, 'SIGTERM', 3000);
      tmp.remove();
    },
  };
}
