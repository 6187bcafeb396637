/**
 * The Engine interface every I/O model implements. Engines differ only in how they wait for and
 * move bytes; the app and protocol are the same Service for all of them.
 */
import type { ServiceOptions } from '../apps/service.js';

export interface EngineOptions {
  /** App spec: `hello`, `echo`, `kv`, or a module path (loaded in every thread/process that serves). */
  app: string;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Event loops (or processes) sharing the port through SO_REUSEPORT. */
  workers: number;
  backlog: number;
  /** epoll only: edge-triggered (EPOLLET) instead of level-triggered. */
  edge: boolean;
  /** busypoll only: between empty passes `none` (spin), `yield` (sched_yield) or `sleep:<us>` (nanosleep). */
  backoff?: string;
  /** threads only: bound the pool at this many connection threads (the excess waits in the backlog). */
  maxThreads?: number;
  /** threads only: connection threads started up front and kept idle (Apache's StartServers/MinSpareThreads). */
  spareThreads?: number;
  /** prefork only: child processes (each serves one connection at a time). */
  procs?: number;
  service: ServiceOptions;
  /** Grace period for draining on stop() before connections are force-closed. */
  drainMs: number;
  /** Warn on stderr (rate-limited) about loop stalls. */
  quiet: boolean;
  limits: ConnectionLimits;
}

/** Per-connection limits every engine enforces (RELIABILITY.md: faults and hostile clients). */
export interface ConnectionLimits {
  /** Connections beyond this are answered with the protocol's refusal and closed (0: no cap but fds). */
  maxConnections: number;
  /**
   * With --workers N the loops share one count here (SharedArrayBuffer, Atomics), so the cap is the
   * server's, not each loop's: SO_REUSEPORT hashes connections over loops unevenly. Absent: one loop.
   */
  shared?: Int32Array;
  /** A request still incomplete this long after its first byte: HTTP 408 and close (slowloris). */
  headerTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long. */
  idleTimeoutMs: number;
  /** Output backlogged with no write progress this long: the peer is not reading; close. */
  sendTimeoutMs: number;
  /** After the last response of a closing connection: shut the write side and drain reads this long, so the response is not lost to an RST. */
  lingerMs: number;
}

export const DEFAULT_LIMITS: ConnectionLimits = {
  maxConnections: 0,
  headerTimeoutMs: 20_000,
  idleTimeoutMs: 60_000,
  sendTimeoutMs: 30_000,
  lingerMs: 2_000,
};

export const DEFAULT_ENGINE_OPTIONS: Omit<EngineOptions, 'app'> = {
  host: '127.0.0.1',
  port: 0,
  workers: 1,
  backlog: 4096,
  edge: false,
  service: { stallMs: 5 },
  drainMs: 5000,
  quiet: false,
  limits: DEFAULT_LIMITS,
};

/** Stats in one shape from every engine. Counters are totals since start. */
export interface EngineStats {
  /** The engine that actually runs (after any fallback), e.g. `epoll` or `epoll (edge)`. */
  engine: string;
  app: string;
  protocol: string;
  pid: number;
  workers: number;
  /**
   * `queued` (threads only): of `current`, the connections accepted but not served yet, waiting for a
   * connection thread to start. A reader that wants the connections the server is really holding (the
   * lab's idle cost per connection) subtracts it: see servedConnections().
   */
  connections: { current: number; peak: number; total: number; refused: number; queued?: number };
  requests: number;
  bytesIn: number;
  bytesOut: number;
  /** Calls through iolab's sys layer, by syscall name. */
  syscalls: Record<string, number>;
  /** Calls that returned EAGAIN. */
  eagain: number;
  /** Returns from the readiness/completion wait (epoll_wait, poll, select, io_uring_enter ...). */
  wakeups: number;
  loopStalls: { count: number; maxMs: number; byRoute: Record<string, number> };
  threads: number;
  processes: number;
  /** io_uring only: SQEs submitted, CQEs reaped, buffer-ring and overflow counters. */
  uring?: Record<string, number | boolean | string>;
}

export interface Listening {
  host: string;
  port: number;
  engine: string;
}

export interface Engine {
  /** The engine asked for. `stats().engine` names the one actually running. */
  readonly name: string;
  start(): Promise<Listening>;
  /** Stop accepting, drain in-flight requests up to the grace period, close everything. */
  stop(): Promise<void>;
  stats(): Promise<EngineStats>;
  /** Resolves when the engine has stopped (after stop(), or on a fatal error, which it rejects with). */
  readonly done: Promise<void>;
}

/** Connections the engine is serving now: accepted ones still waiting for a thread do not count. */
export function servedConnections(s: EngineStats): number {
  return s.connections.current - (s.connections.queued ?? 0);
}

export function emptyStats(engine: string, app: string, protocol: string): EngineStats {
  return {
    engine,
    app,
    protocol,
    pid: process.pid,
    workers: 1,
    connections: { current: 0, peak: 0, total: 0, refused: 0 },
    requests: 0,
    bytesIn: 0,
    bytesOut: 0,
    syscalls: {},
    eagain: 0,
    wakeups: 0,
    loopStalls: { count: 0, maxMs: 0, byRoute: {} },
    threads: 1,
    processes: 1,
  };
}

/** Sum stats from several loops (workers) into one. */
export function mergeStats(parts: EngineStats[]): EngineStats {
  const first = parts[0]!;
  const out = emptyStats(first.engine, first.app, first.protocol);
  out.workers = parts.length;
  out.threads = 0;
  for (const s of parts) {
    out.connections.current += s.connections.current;
    out.connections.peak += s.connections.peak;
    out.connections.total += s.connections.total;
    out.connections.refused += s.connections.refused;
    if (s.connections.queued !== undefined) out.connections.queued = (out.connections.queued ?? 0) + s.connections.queued;
    out.requests += s.requests;
    out.bytesIn += s.bytesIn;
    out.bytesOut += s.bytesOut;
    for (const [k, v] of Object.entries(s.syscalls)) out.syscalls[k] = (out.syscalls[k] ?? 0) + v;
    out.eagain += s.eagain;
    out.threads += s.threads;
    out.processes = Math.max(out.processes, s.processes);
    out.wakeups += s.wakeups;
    out.loopStalls.count += s.loopStalls.count;
    out.loopStalls.maxMs = Math.max(out.loopStalls.maxMs, s.loopStalls.maxMs);
    for (const [k, v] of Object.entries(s.loopStalls.byRoute)) out.loopStalls.byRoute[k] = (out.loopStalls.byRoute[k] ?? 0) + v;
    if (s.uring) {
      out.uring ??= {};
      for (const [k, v] of Object.entries(s.uring)) {
        const prev = out.uring[k];
        out.uring[k] = typeof v === 'number' ? ((typeof prev === 'number' ? prev : 0) + v) : v;
      }
    }
  }
  return out;
}
