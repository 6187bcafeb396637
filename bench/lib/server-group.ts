/**
 * S server processes of one engine on ONE port through SO_REUSEPORT (the engines' own `reusePort`
 * option); the kernel hashes each new connection to one of the listeners, so S processes share the
 * load and each keeps its own open-file limit (20000 here, ~17k connections with a margin).
 * Used by bench:hold and bench:idle-scale. Every process is pinned with taskset when `cpus` is given,
 * registered with the lab's reaper (src/lab/children.ts: killed on exit, Ctrl-C, SIGTERM), and exits
 * by itself when this process goes away.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { spawnChild, stopChild } from '../../src/lab/children.js';
import { freePort, has, rssBytes } from './util.js';

const CHILD = fileURLToPath(new URL('./serve-child.js', import.meta.url));

/** Connections one server process is given (open-file limit 20000, less the runtime's fds and a margin for the uneven SO_REUSEPORT hash). */
export const CONNS_PER_SERVER = 17_000;

export interface GroupStats {
  current: number;
  peak: number;
  refused: number;
  /** Server processes that answered (a dead one counts 0 connections). */
  alive: number;
}

export interface ServerGroup {
  port: number;
  /** The engine that runs (io_uring falls back to epoll where the kernel refuses it). */
  ran: string;
  pids: number[];
  stats(): Promise<GroupStats>;
  /** RSS summed over the server processes. */
  rssBytes(): number;
  /** A full GC in every server; the JS heap + external bytes still referenced, summed. */
  gc(): Promise<number>;
  stop(): Promise<void>;
}

export interface GroupOptions {
  engine: string;
  app: string;
  processes: number;
  /** taskset CPU list for every server process; null: not pinned. */
  cpus: string | null;
  /** Keep-alive idle timeout (held connections must outlive the whole bench). */
  idleTimeoutMs?: number;
}

interface Member {
  child: ChildProcess;
  dead: boolean;
}

async function startOne(o: GroupOptions, port: number): Promise<{ m: Member; port: number; engine: string }> {
  // --expose-gc: gc() lets a bench read memory with the garbage out (idle-scale); nothing calls it otherwise.
  const argv = ['--expose-gc', CHILD, o.engine, o.app, String(port), String(o.idleTimeoutMs ?? 3_600_000)];
  const [cmd, args] = o.cpus !== null && has('taskset') ? ['taskset', ['-c', o.cpus, process.execPath, ...argv]] : [process.execPath, argv];
  // stdio 'ipc' survives taskset's exec: the channel is an inherited fd named by NODE_CHANNEL_FD.
  const child = spawnChild(cmd, args as string[], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  child.on('error', () => {}); // EPIPE on a send to a server that died: its exit says so
  const m: Member = { child, dead: false };
  child.once('exit', () => (m.dead = true));
  const at = await new Promise<{ port: number; engine: string }>((resolve, reject) => {
    child.once('message', (msg: { type: string; port: number; engine: string }) =>
      msg.type === 'listening' ? resolve(msg) : reject(new Error(`server said ${msg.type} before listening`)),
    );
    child.once('exit', (c, sig) => reject(new Error(`${o.engine} server process exited (${c ?? sig}) before listening on ${port}`)));
  });
  return { m, port: at.port, engine: at.engine };
}

function ask<T>(m: Member, type: string, pick: (msg: Record<string, unknown>) => T): Promise<T | null> {
  if (m.dead || !m.child.connected) return Promise.resolve(null);
  return new Promise((resolve) => {
    const done = (v: T | null): void => {
      clearTimeout(t);
      m.child.off('message', on);
      m.child.off('exit', gone);
      resolve(v);
    };
    const on = (msg: { type: string } & Record<string, unknown>): void => {
      if (msg.type === type) done(pick(msg));
    };
    const gone = (): void => done(null);
    // A loop busy accepting thousands of connections (or collecting a big heap) may answer late, but not 10 s late.
    const t = setTimeout(() => done(null), 10_000);
    m.child.on('message', on);
    m.child.once('exit', gone);
    m.child.send({ type });
  });
}

function askStats(m: Member): Promise<Omit<GroupStats, 'alive'> | null> {
  return ask(m, 'stats', (msg) => ({ current: msg.current as number, peak: msg.peak as number, refused: msg.refused as number }));
}

export async function startServerGroup(o: GroupOptions): Promise<ServerGroup> {
  const port = await freePort();
  const members: Member[] = [];
  const first = await startOne(o, port);
  members.push(first.m);
  // The rest in parallel: they bind the same port, so order does not matter.
  const rest = await Promise.all(Array.from({ length: o.processes - 1 }, () => startOne(o, port)));
  for (const r of rest) members.push(r.m);
  const ran = first.engine;
  if (rest.some((r) => r.engine !== ran)) throw new Error(`server processes disagree on the engine: ${[ran, ...rest.map((r) => r.engine)].join(', ')}`);
  const pids = members.map((m) => m.child.pid!);
  return {
    port,
    ran,
    pids,
    async stats() {
      const xs = await Promise.all(members.map(askStats));
      const ok = xs.filter((x): x is Omit<GroupStats, 'alive'> => x !== null);
      return {
        current: ok.reduce((a, x) => a + x.current, 0),
        peak: ok.reduce((a, x) => a + x.peak, 0),
        refused: ok.reduce((a, x) => a + x.refused, 0),
        alive: ok.length,
      };
    },
    rssBytes: () => pids.reduce((a, p) => a + rssBytes(p), 0),
    async gc() {
      const xs = await Promise.all(members.map((m) => ask(m, 'gc', (msg) => msg.heapBytes as number)));
      return xs.reduce<number>((a, x) => a + (x ?? NaN), 0);
    },
    async stop() {
      // SIGTERM ends a server at once (no handler in serve-child): the kernel closes its sockets.
      await Promise.all(members.map((m) => (m.dead ? undefined : stopChild(m.child, 'SIGTERM', 10_000))));
    },
  };
}
