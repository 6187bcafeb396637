/**
 * `prefork`: blocking I/O, one process per connection at a time (Apache's prefork MPM). The parent
 * opens the listening socket and starts N children that share it (the fd goes to each child through
 * spawn's stdio array and lands at fd 3). Each child parks in accept(), serves that one connection
 * with blocking read()/write() through its own Service, then accepts again (child.ts). The kernel
 * wakes one parked accept() per connection (exclusive wait), so there is no thundering herd.
 *
 * With N children at most N connections are served at once; the others wait in the listen backlog
 * until a child is free. A child that dies is replaced (unless stopping); on stop the parent shuts the
 * listening socket down (parked accepts return EINVAL), sends SIGTERM (children finish the request in
 * flight: HTTP answers carry Connection: close) and SIGKILLs whatever is left at the drain deadline.
 * No child outlives the parent: each arms PR_SET_PDEATHSIG(SIGKILL), and exits on IPC EOF.
 *
 * Each child is a whole Node process: ~52 MB RSS here, ~12.5 MB PSS (the node binary's pages are
 * shared), and ~100 ms of CPU to start. N is capped so children stay under half of MemTotal at the
 * RSS estimate, and under a hard cap. Measured here (server on one CPU, wrk -t1, HTTP hello): 8
 * children serving 8 connections ~71k req/s at ~14 us CPU/request; 100 serving 100 ~10k req/s at
 * ~100 us/request (each request wakes another process, cache-cold; see threads/engine.ts).
 * Children report their counters over IPC when asked; stats() aggregates them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadApp } from '../../apps/index.js';
import { KV_SHM_ENV } from '../../apps/kv-shm.js';
import {
  IPPROTO_TCP, SHUT_RD, SO_RCVTIMEO, SO_SNDTIMEO, TCP_NODELAY, counts, eagain, ffi, listenTcp, localAddress, setIntOpt,
} from '../../sys/index.js';
import type { Engine, EngineOptions, EngineStats, Listening } from '../types.js';
import { compileFlags, tieringFlags } from '../tiering.js';
import {
  ROW_BYTES_IN, ROW_BYTES_OUT, ROW_CONNS, ROW_EAGAIN, ROW_REQUESTS, ROW_SYSCALLS, ROW_WAKEUPS, ROW_WIDTH, addRow, envInt,
  meminfo, rowSyscalls, rssOf, setTimeoutOpt,
} from '../threads/blocking.js';
import type { ChildConfig, FromChild, ToChild } from './messages.js';
import { performance } from 'node:perf_hooks'; // the global is a lazy accessor: a getter call per use

const DEFAULT_PROCS = 4;
const HARD_CAP = 1000;
const MEM_SHARE = 0.5;
/** Measured here: a child with the hello app loaded, ~52 MB RSS. Refined from the first child. */
const DEFAULT_CHILD_RSS = 52 * 1024 * 1024;
/**
 * How often a parked child wakes (SO_RCVTIMEO/SO_SNDTIMEO) to hear IPC and signals: the latency of
 * stats and stop, at the price of 10 wakeups a second per idle child.
 */
const TICK_MS = 100;
/** How long stats() waits for children's answers before using their last ones. */
const STATS_WAIT_MS = 300;
/** Replacing children that die at once (a broken app) must not become a fork loop. */
const RESPAWN_BURST = 10;

interface Child {
  proc: ChildProcess;
  ready: boolean;
  /** Last counters the child reported (or its final ones). */
  row: number[] | null;
  current: number;
  startedAt: number;
}

export class PreforkEngine implements Engine {
  readonly name = 'prefork';
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private rejectDone!: (e: unknown) => void;

  private listenFd = -1;
  private protocol = 'unknown';
  private appName = '';
  private procs = DEFAULT_PROCS;
  /** The V8 tier-up flags each child applies once it has started (tiering.ts); checked here, at start. */
  private tiering: string[] = [];
  private rssPerChild = DEFAULT_CHILD_RSS;
  private readonly children = new Set<Child>();
  private readonly retired = new Float64Array(ROW_WIDTH);
  private peak = 0;
  private seq = 0;
  private readonly waiting = new Map<number, { left: Set<Child>; resolve: () => void }>();
  private respawns: number[] = [];
  private respawnTimer: NodeJS.Timeout | null = null;
  /** Children in a row that died before serving: past RESPAWN_BURST the engine gives up. */
  private failedStarts = 0;
  private fatal: Error | null = null;

  private started = false;
  private stopping = false;
  private finished = false;
  private forceTimer: NodeJS.Timeout | null = null;
  private readonly warned = new Set<string>();
  private readonly killAll = (): void => {
    for (const c of this.children) c.proc.kill('SIGKILL');
  };

  constructor(private readonly opts: EngineOptions) {
    this.done = new Promise((res, rej) => {
      this.resolveDone = res;
      this.rejectDone = rej;
    });
  }

  async start(): Promise<Listening> {
    const o = this.opts;
    const app = await loadApp(o.app); // fail here, once, rather than in every child
    this.tiering = tieringFlags();
    this.protocol = app.protocol;
    this.appName = app.name;
    const asked = o.procs ?? envInt('IOLAB_PROCS') ?? (o.workers > 1 ? o.workers : DEFAULT_PROCS);
    this.procs = Math.min(asked, this.cap());
    if (this.procs < asked) this.warnOnce('cap', `${asked} processes lowered to ${this.procs} (${this.capReason()})`);
    // Each child serves one connection at a time and the excess waits in the listen backlog, so the
    // process count is the connection cap (Apache prefork's MaxRequestWorkers). A --max-connections
    // under it lowers it: children share no memory in which to count connections across processes.
    const maxConn = o.limits.maxConnections;
    if (maxConn > 0 && maxConn < this.procs) {
      this.warnOnce('maxconn', `--max-connections ${maxConn}: ${this.procs} processes lowered to ${maxConn} (one connection per process; the excess waits in the backlog)`);
      this.procs = maxConn;
    }

    this.listenFd = listenTcp({ host: o.host, port: o.port, backlog: o.backlog, nonBlocking: false });
    try {
      // Accepted sockets inherit these from the listener (sk_clone_lock() -> sock_copy()).
      setIntOpt(this.listenFd, IPPROTO_TCP, TCP_NODELAY, 1);
      setTimeoutOpt(this.listenFd, SO_RCVTIMEO, TICK_MS);
      setTimeoutOpt(this.listenFd, SO_SNDTIMEO, TICK_MS);
    } catch (e) {
      ffi.close(this.listenFd);
      throw e;
    }
    const addr = localAddress(this.listenFd);
    this.started = true;
    process.on('exit', this.killAll); // the last resort if this process exits without stop()
    try {
      await Promise.all(Array.from({ length: this.procs }, () => this.spawnChild()));
    } catch (e) {
      this.stopping = true;
      this.killAll();
      throw e;
    }
    const first = this.children.values().next().value;
    const rss = first ? rssOf(first.proc.pid!) : 0;
    if (rss > 8 * 1024 * 1024) this.rssPerChild = rss;
    return { host: addr.host, port: addr.port, engine: this.name };
  }

  private cap(): number {
    const mem = meminfo();
    const memCap = mem ? Math.max(1, Math.floor((mem.total * MEM_SHARE) / this.rssPerChild)) : HARD_CAP;
    return Math.min(HARD_CAP, memCap);
  }

  private capReason(): string {
    const mem = meminfo();
    const memCap = mem ? Math.floor((mem.total * MEM_SHARE) / this.rssPerChild) : HARD_CAP;
    return memCap < HARD_CAP
      ? `${Math.round(MEM_SHARE * 100)}% of MemTotal at ${(this.rssPerChild / 1048576).toFixed(0)} MB per process`
      : `hard cap ${HARD_CAP}`;
  }

  /** Start one child; resolves when it is parked in accept(), rejects if it dies before that. */
  private spawnChild(): Promise<void> {
    const cfg: ChildConfig = {
      app: this.opts.app,
      // Blocking engines do not time app calls: a slow handler holds only its own process.
      service: { ...this.opts.service, stallMs: null, onStall: undefined },
      tickMs: TICK_MS,
      limits: this.opts.limits,
      ppid: process.pid,
      quiet: this.opts.quiet,
    };
    const script = fileURLToPath(new URL('./child.js', import.meta.url));
    // stdio: no stdin; the child's stdout goes to our stderr (our stdout may carry --json events);
    // stderr shared; fd 3 the listening socket (an integer shares that fd); fd 4 the IPC channel.
    // Children run with the server's node/V8 flags (e.g. --interrupt-budget, --cpu-prof), as worker
    // threads share them; an inspector port could only be bound once, so that one stays with the parent.
    // compileFlags(): TurboFan on the child's own thread (tiering.ts), which must be set at its start.
    const execArgv = process.execArgv.filter((a) => !/^--inspect/.test(a));
    // kv's shared keyspace (apps/kv-shm.ts), when there is one: its memfd at the child's fd 5.
    const shm = process.env[KV_SHM_ENV];
    const proc = spawn(process.execPath, [...compileFlags(), ...execArgv, script], {
      stdio: ['ignore', 2, 'inherit', this.listenFd, 'ipc', ...(shm ? [Number(shm)] : [])],
      env: { ...process.env, IOLAB_PREFORK_CHILD: JSON.stringify(cfg), ...(shm ? { [KV_SHM_ENV]: '5' } : {}) },
    });
    const c: Child = { proc, ready: false, row: null, current: 0, startedAt: performance.now() };
    this.children.add(c);
    return new Promise((resolve, reject) => {
      proc.on('message', (m: FromChild) => {
        if (m.type === 'ready') {
          c.ready = true;
          this.failedStarts = 0;
          resolve();
        } else if (m.type === 'stats') {
          c.row = m.row;
          c.current = m.current;
          this.answered(m.id, c);
        } else if (m.type === 'final') {
          c.row = m.row;
          c.current = 0;
        }
      });
      proc.on('error', (e) => {
        // spawn() itself failed (EAGAIN, ENOMEM): 'close' follows.
        this.warnOnce(`spawn:${e.message}`, `cannot start a child process: ${e.message}`);
      });
      // 'close' comes after 'exit' and after the IPC channel has delivered everything (the final counters).
      proc.once('close', (code, signal) => {
        if (!c.ready) reject(new Error(`prefork child exited before serving (${signal ?? `code ${code}`})`));
        this.onChildExit(c, code, signal);
      });
    });
  }

  private onChildExit(c: Child, code: number | null, signal: NodeJS.Signals | null): void {
    this.children.delete(c);
    if (c.row) addRow(this.retired, c.row);
    for (const [id, w] of this.waiting) if (w.left.delete(c) && w.left.size === 0) this.finishWait(id);
    if (!c.ready && ++this.failedStarts >= RESPAWN_BURST && !this.stopping) {
      // Children cannot even start (the app fails to load, the host refuses processes): give up.
      this.fatal = new Error(`prefork: ${RESPAWN_BURST} children in a row exited before serving (last: ${signal ?? `code ${code}`})`);
      void this.stop();
      return;
    }
    if (!this.stopping && this.started) {
      this.warnOnce(`exit:${signal ?? code}`, `a child exited (${signal ?? `code ${code}`}); it is replaced`);
      this.replace();
    }
    this.maybeFinish();
  }

  /** Keep N children: replace the dead, but at most RESPAWN_BURST a second. */
  private replace(): void {
    const t = performance.now();
    this.respawns = this.respawns.filter((x) => t - x < 1000);
    if (this.respawns.length >= RESPAWN_BURST) {
      this.warnOnce('respawn', `children keep dying (${RESPAWN_BURST} in a second): replacing them more slowly`);
      this.respawnTimer ??= setTimeout(() => {
        this.respawnTimer = null;
        if (!this.stopping) for (let i = this.children.size; i < this.procs; i++) this.replace();
      }, 1000);
      return;
    }
    this.respawns.push(t);
    this.spawnChild().catch(() => {}); // its own 'close' replaces it again (rate-limited) if it dies
  }

  async stop(): Promise<void> {
    if (!this.started) {
      this.finished = true;
      this.resolveDone();
    }
    if (this.finished || this.stopping) return this.done;
    this.stopping = true;
    if (this.respawnTimer) clearTimeout(this.respawnTimer);
    // Parked accept()s in every child return EINVAL, and the port stops taking connections now.
    ffi.shutdown(this.listenFd, SHUT_RD);
    ffi.close(this.listenFd);
    this.listenFd = -1;
    for (const c of this.children) c.proc.kill('SIGTERM');
    this.forceTimer = setTimeout(this.killAll, this.opts.drainMs);
    this.maybeFinish();
    return this.done;
  }

  private maybeFinish(): void {
    if (!this.stopping || this.finished || this.children.size > 0) return;
    this.finished = true;
    if (this.forceTimer) clearTimeout(this.forceTimer);
    process.off('exit', this.killAll);
    if (this.fatal !== null) this.rejectDone(this.fatal);
    else this.resolveDone();
  }

  private answered(id: number, c: Child): void {
    const w = this.waiting.get(id);
    if (w && w.left.delete(c) && w.left.size === 0) this.finishWait(id);
  }

  private finishWait(id: number): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    w.resolve();
  }

  async stats(): Promise<EngineStats> {
    if (!this.started) throw new Error('engine not started');
    const asked = [...this.children].filter((c) => c.ready && c.proc.connected);
    if (asked.length > 0) {
      const id = ++this.seq;
      await new Promise<void>((resolve) => {
        this.waiting.set(id, { left: new Set(asked), resolve });
        for (const c of asked) c.proc.send({ type: 'stats', id } satisfies ToChild, (e) => e && this.answered(id, c));
        // A child busy in a long handler answers late: use what it said last time.
        setTimeout(() => this.finishWait(id), STATS_WAIT_MS).unref();
      });
    }
    const sum = new Float64Array(ROW_WIDTH);
    sum.set(this.retired);
    let current = 0;
    let live = 0;
    for (const c of this.children) {
      live++;
      if (c.row) addRow(sum, c.row);
      current += c.current;
    }
    if (current > this.peak) this.peak = current;
    const own = new Float64Array(ROW_WIDTH);
    own.set(counts, ROW_SYSCALLS);
    own[ROW_EAGAIN] = eagain[0]!;
    addRow(sum, own);
    return {
      engine: this.name,
      app: this.appName,
      protocol: this.protocol,
      pid: process.pid,
      workers: this.procs,
      connections: { current, peak: this.peak, total: sum[ROW_CONNS]!, refused: 0 },
      requests: sum[ROW_REQUESTS]!,
      bytesIn: sum[ROW_BYTES_IN]!,
      bytesOut: sum[ROW_BYTES_OUT]!,
      syscalls: rowSyscalls(sum),
      eagain: sum[ROW_EAGAIN]!,
      wakeups: sum[ROW_WAKEUPS]!,
      loopStalls: { count: 0, maxMs: 0, byRoute: {} },
      threads: live + 1,
      processes: live + 1,
      // Not (yet) in EngineStats: what a child costs here, and the pids for /proc sampling.
      pool: {
        processKind: 'node child process: a whole Node runtime per process',
        rssPerProcess: Math.round(this.rssPerChild),
        procs: this.procs,
        limitReason: this.capReason(),
        tickMs: TICK_MS,
        v8Flags: this.tiering,
        pids: [...this.children].map((c) => c.proc.pid),
      },
    } as EngineStats;
  }

  private warnOnce(key: string, msg: string): void {
    if (this.opts.quiet || this.warned.has(key)) return;
    this.warned.add(key);
    process.stderr.write(`iolab prefork: ${msg}\n`);
  }
}
