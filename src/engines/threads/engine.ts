/**
 * `threads`: blocking I/O, one OS thread per connection (the model of Apache's worker MPM and of
 * classic servlet containers). An acceptor thread parks in accept(); each connection gets a thread
 * that parks in read(), calls the app, parks in write() until all is sent, and loops.
 *
 *                main thread: signals, stats, spawning threads, stop()  (Node's loop stays free)
 *                     ^ spawn {fd} when no thread is idle
 *   accept() -> acceptor thread --(shared control block: CAS idle->busy, store fd, futex wake)--> conn thread
 *                                                                                   read -> feed -> write
 *
 * In Node an OS thread that runs JS is a worker_thread, a whole V8 isolate: ~8.6-11 MB RSS each here,
 * against ~12 KB for a bare pthread. So the pool is what keeps this model affordable:
 *  - threads are reused: a finished connection returns its thread to the pool, the acceptor hands
 *    the next connection to the lowest-numbered idle thread; idle threads beyond `spare` leave after
 *    an idle timeout (no leak);
 *  - `maxThreads` (IOLAB_MAX_THREADS, or `--workers N` > 1) bounds the pool: while all are busy the
 *    acceptor stops accepting and the excess waits in the listen backlog (Apache's MaxRequestWorkers);
 *  - unbounded (the default) still has a limit: threads stay under half of MemTotal at the measured
 *    RSS per thread and under a hard cap (2000); past it a new connection is refused with the
 *    protocol's words (HTTP 503 + Connection: close, RESP -ERR max number of clients reached, echo:
 *    close) and counted in connections.refused, so the host never runs out of memory.
 *
 * What that costs, measured here (2 vCPU, server pinned to one, wrk -t1 on the other, HTTP hello):
 *  - starting a thread takes ~65 ms of CPU (a bare worker ~34 ms, plus koffi and the app's modules),
 *    against ~20 us for pthread_create: spare threads are started up front, and reused, and only a
 *    few start at once (DEFAULT_MAX_STARTING, and START_FDS free fds each); a burst of connections
 *    waits in a FIFO here for the next thread that is free or started (Apache's prefork ramps its
 *    spawn rate for the same reason);
 *  - 8 connections on 8 threads: ~82k req/s at ~12 us CPU/request (epoll: ~131k at ~7.4 us);
 *    100 on 100 threads, warmed 45 s: ~57-62k req/s at ~16-17.5 us/request (bench:engines; some windows
 *    run at half that, PERFORMANCE.md "Steady state"). Each isolate compiles its
 *    own copy of the hot path (tiering.ts: until that was moved onto each thread's own time slice, the
 *    copies waited behind V8's 4 background compile threads and 100 threads ran baseline code at
 *    ~88-120 us/request), and each request then runs another copy of the code on another heap,
 *    cache-cold. Native threads share their code; isolates do not.
 *
 * Each thread counts its own syscalls (every thread has its own sys module) into a row of a shared
 * Float64Array, so stats() never has to ask a thread that sits in read().
 *
 * Not used on purpose: koffi's `.async` calls, which run blocking C calls on libuv's small thread
 * pool (4 threads by default). That is a pool of C threads behind an event loop, not a thread per
 * connection, and with more connections than pool threads it would serialise them.
 */
import { readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker, SHARE_ENV } from 'node:worker_threads';
import { loadApp } from '../../apps/index.js';
import {
  IPPROTO_TCP, SHUT_RD, SHUT_RDWR, SHUT_WR, SO_RCVTIMEO, SO_SNDTIMEO, TCP_NODELAY, counts, eagain, ffi, getrlimit,
  listenTcp, localAddress, setIntOpt,
} from '../../sys/index.js';
import type { Engine, EngineOptions, EngineStats, Listening } from '../types.js';
import { applyCompileFlags, applyTiering, tieringFlags } from '../tiering.js';
import {
  ROW_EAGAIN, ROW_SYSCALLS, ROW_WIDTH, ROW_BYTES_IN, ROW_BYTES_OUT, ROW_REQUESTS, ROW_WAKEUPS, addRow, envInt, meminfo,
  refuse, rowSyscalls, rssOf, setTimeoutOpt,
} from './blocking.js';
import {
  C_BOUNDED, C_CURRENT, C_IDLE, C_LIMIT, C_MAXCONN, C_PEAK, C_REFUSED, C_SLOTS_HIGH, C_STOP, C_TOTAL, C_WAITING, C_HANDOFF,
  PARK_LINGER, PARK_READ, PARK_WAKING, START_FDS, S_FD, S_PARKED, S_SERVING, S_STATE, ST_BUSY, ST_FREE, ST_IDLE, claimIdle, controlBlock,
  handOver, rowOf, slotIndex, statsBlock, type AcceptorData, type ConnThreadData, type FromAcceptor, type FromConnThread, type ToConnThread,
} from './shared.js';
import { performance } from 'node:perf_hooks'; // the global is a lazy accessor: a getter call per use

/** No more connection threads than this, whatever the memory (env IOLAB_THREAD_CAP lowers it). */
const HARD_CAP = 2000;
/** Share of MemTotal the threads may take at the estimated RSS per thread. */
const MEM_SHARE = 0.5;
/** Measured here: a worker_thread with the hello app loaded, 9.5-11 MB RSS. Refined at start. */
const DEFAULT_THREAD_RSS = 11 * 1024 * 1024;
/** Refuse to start threads while MemAvailable is below this share of MemTotal, whatever the count. */
const MEM_FLOOR_SHARE = 0.05;
const DEFAULT_SPARE = 4;
const DEFAULT_IDLE_MS = 10_000;
/**
 * Threads starting at once (IOLAB_MAX_STARTING overrides). Starting is mostly CPU (~65 ms each), so
 * far more in parallel than CPUs only delays every one of them: 200 short connections in a second
 * would otherwise start ~200 isolates (seconds of CPU, and at stop dozens still loading), where a few
 * threads freed by the connections that ended serve most of them. Measured here (2 vCPU, shared and
 * loaded, load average ~29, so only roughly): 20 new keep-alive connections at once were all answered
 * after 1.5-2.5 s with 4, 1.0-2.5 s with 8, 1.5-2.4 s with 16, 1.5-2.1 s unbounded, and the median one
 * soonest with 4-8.
 */
const DEFAULT_MAX_STARTING = Math.max(8, 2 * availableParallelism());
/** How often queued connections look for a thread that has become idle (threads do not say so). */
const WAITING_POLL_MS = 5;
/** After the drain deadline, how long threads get to unwind before they are terminated. */
const FORCE_GRACE_MS = 1000;

interface Slot {
  worker: Worker;
  ready: boolean;
  /** Starts tried for the connection this slot was created for (a failed start is retried once). */
  attempt: number;
}

export class ThreadsEngine implements Engine {
  readonly name = 'threads';
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private rejectDone!: (e: unknown) => void;

  private listenFd = -1;
  private protocol = 'unknown';
  private appName = '';
  private ctl!: Int32Array;
  private ctlSab!: SharedArrayBuffer;
  private statSab!: SharedArrayBuffer;
  private slotsMax = 0;
  private readonly slots: (Slot | null)[] = [];
  private acceptor: Worker | null = null;
  /** Counters of threads that have exited. */
  private readonly retired = new Float64Array(ROW_WIDTH);
  private readonly own = new Float64Array(ROW_WIDTH);

  private bounded = false;
  private spare = DEFAULT_SPARE;
  /** The V8 tier-up flags this process runs with (tiering.ts). */
  private tiering: string[] = [];
  private idleMs = DEFAULT_IDLE_MS;
  private rssPerThread = DEFAULT_THREAD_RSS;
  private limitReason = '';
  private memCheckAt = 0;
  private memLow = false;
  private fdLimit = Infinity;
  private lost = 0;
  /** Connections still waiting for a thread at the drain deadline (closed unserved). */
  private unserved = 0;
  private fatal: unknown = null;

  private started = false;
  private stopping = false;
  private finished = false;
  private forceTimer: NodeJS.Timeout | null = null;
  private killTimer: NodeJS.Timeout | null = null;
  private lingerTimer: NodeJS.Timeout | null = null;
  /** Threads started and not yet ready. */
  private starting = 0;
  /** Of `starting`, threads started for a connection (spawn(fd >= 0)): it waits for them. */
  private startingConns = 0;
  private maxStarting = DEFAULT_MAX_STARTING;
  /** Accepted connections waiting for a thread (FIFO; their count is C_WAITING). */
  private readonly waiting: number[] = [];
  private waitingTimer: NodeJS.Timeout | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private readonly warned = new Set<string>();

  constructor(private readonly opts: EngineOptions) {
    this.done = new Promise((res, rej) => {
      this.resolveDone = res;
      this.rejectDone = rej;
    });
  }

  async start(): Promise<Listening> {
    const o = this.opts;
    const app = await loadApp(o.app); // fail here, once, rather than in every thread
    this.protocol = app.protocol;
    this.appName = app.name;
    // Active expiry (kv): each thread's Service has a sweep timer, but a connection thread sits in
    // read() and seldom runs its timers. The keyspace is shared (apps/kv-shm.ts), so this thread
    // sweeps it for all of them, as Redis's serverCron does ~10 times a second.
    if (app.protocol === 'resp' && typeof app.sweep === 'function') {
      const sweep = app.sweep.bind(app);
      this.sweepTimer = setInterval(sweep, 100).unref();
    }

    const maxThreads = o.maxThreads ?? envInt('IOLAB_MAX_THREADS') ?? (o.workers > 1 ? o.workers : undefined);
    this.bounded = maxThreads !== undefined;
    const hardCap = Math.min(HARD_CAP, envInt('IOLAB_THREAD_CAP') ?? HARD_CAP);
    this.spare = Math.min(o.spareThreads ?? envInt('IOLAB_SPARE_THREADS', 0) ?? DEFAULT_SPARE, maxThreads ?? hardCap, hardCap);
    this.idleMs = envInt('IOLAB_THREAD_IDLE_MS') ?? DEFAULT_IDLE_MS;
    this.maxStarting = envInt('IOLAB_MAX_STARTING') ?? DEFAULT_MAX_STARTING;
    // Idle threads beyond the limit only exist until their idle timeout; a few extra slots cover
    // threads that are leaving while new ones start.
    this.slotsMax = Math.min(maxThreads ?? hardCap, hardCap) + this.spare + 16;

    this.fdLimit = getrlimit().soft;
    this.listenFd = listenTcp({ host: o.host, port: o.port, backlog: o.backlog, nonBlocking: false });
    try {
      // Accepted sockets inherit these from the listener (sk_clone_lock() -> sock_copy() copies the
      // listener's struct sock), which saves a setsockopt per connection. Checked with getsockopt.
      // SO_RCVTIMEO is the idle timeout of a parked read() and SO_SNDTIMEO the send timeout of a parked
      // write() (blocking.ts). The listener's own accept() honours SO_RCVTIMEO too: the acceptor
      // wakes with EAGAIN once per idle timeout and parks again.
      setIntOpt(this.listenFd, IPPROTO_TCP, TCP_NODELAY, 1);
      setTimeoutOpt(this.listenFd, SO_SNDTIMEO, o.limits.sendTimeoutMs);
      setTimeoutOpt(this.listenFd, SO_RCVTIMEO, o.limits.idleTimeoutMs);
    } catch (e) {
      ffi.close(this.listenFd);
      throw e;
    }
    const addr = localAddress(this.listenFd);

    this.ctlSab = controlBlock(this.slotsMax);
    this.ctl = new Int32Array(this.ctlSab);
    this.statSab = statsBlock(this.slotsMax + 1);
    for (let s = 0; s < this.slotsMax; s++) this.ctl[slotIndex(s, S_FD)] = -1;
    this.ctl[C_BOUNDED] = this.bounded ? 1 : 0;
    // --max-connections: past it the acceptor refuses (503 / -ERR), as the reactor does. With a bounded
    // pool at or under the cap the excess waits in the backlog first, so the cap is never reached.
    this.ctl[C_MAXCONN] = Math.max(0, o.limits.maxConnections);
    this.setLimit(maxThreads, hardCap);

    this.started = true;
    this.tiering = tieringFlags(); // a bad IOLAB_V8_TIERING fails here, before any thread starts
    // TurboFan on each thread's own time slice (tiering.ts): only isolates created from now on get it.
    applyCompileFlags();
    await this.startAcceptor();
    // Start the spare threads, and measure what a thread costs on this machine.
    const rss0 = rssOf('self');
    // In batches the fd table allows (startable()): under a low RLIMIT_NOFILE, spares loading side by
    // side run out of fds and die.
    for (let left = this.spare; left > 0; ) {
      const n = Math.max(1, Math.min(left, this.startable()));
      await Promise.all(Array.from({ length: n }, () => this.spawn(-1)));
      left -= n;
    }
    const started = this.slots.filter((e) => e?.ready).length;
    if (started > 0) {
      const per = (rssOf('self') - rss0) / started;
      if (per > 4 * 1024 * 1024 && per < 256 * 1024 * 1024) {
        this.rssPerThread = Math.max(per, 8 * 1024 * 1024);
        this.setLimit(maxThreads, hardCap);
      }
    }
    // Lower V8's tier-up thresholds (tiering.ts) only now: the flags are process-wide, and under them
    // each isolate's start-up code (module loading) gets compiled too, ~50% more CPU per thread start.
    // Threads started later, on demand, pay that.
    applyTiering();
    return { host: addr.host, port: addr.port, engine: this.name };
  }

  /** The most connection threads at once: the bound asked for, the hard cap, and half the memory. */
  private setLimit(maxThreads: number | undefined, hardCap: number): void {
    const mem = meminfo();
    const memCap = mem ? Math.max(1, Math.floor((mem.total * MEM_SHARE) / this.rssPerThread)) : hardCap;
    let limit = hardCap;
    this.limitReason = hardCap < HARD_CAP ? 'IOLAB_THREAD_CAP' : `hard cap ${HARD_CAP}`;
    if (memCap < limit) {
      limit = memCap;
      this.limitReason = `${Math.round(MEM_SHARE * 100)}% of MemTotal at ${(this.rssPerThread / 1048576).toFixed(1)} MB per thread`;
    }
    if (maxThreads !== undefined) {
      if (maxThreads > limit) this.warnOnce('cap', `max threads ${maxThreads} lowered to ${limit} (${this.limitReason})`);
      else this.limitReason = 'max threads';
      limit = Math.min(limit, maxThreads);
    }
    Atomics.store(this.ctl, C_LIMIT, limit);
  }

  private startAcceptor(): Promise<void> {
    const data: AcceptorData = { listenFd: this.listenFd, ctl: this.ctlSab, stats: this.statSab, row: this.slotsMax, protocol: this.protocol };
    const w = new Worker(new URL('./acceptor-thread.js', import.meta.url), { workerData: data, env: SHARE_ENV });
    this.acceptor = w;
    return new Promise((resolve, reject) => {
      w.on('message', (m: FromAcceptor) => {
        if (m.type === 'ready') resolve();
        else if (m.type === 'spawn') {
          this.assign(m.fd);
          Atomics.sub(this.ctl, C_HANDOFF, 1);
        }
        else if (m.type === 'warn') this.warnOnce(m.message, m.message);
      });
      w.once('error', (e) => {
        reject(e);
        if (!this.stopping) {
          // Without its acceptor the engine can serve nothing more: drain, then fail with the reason.
          this.fatal = e;
          void this.stop();
        }
      });
      w.once('exit', () => {
        this.acceptor = null;
        this.maybeFinish();
      });
    });
  }

  /**
   * A connection the acceptor found no idle thread for: start one, or, with maxStarting already
   * starting, queue it for the first thread that is idle or may start.
   */
  private assign(fd: number): void {
    if (this.waiting.length === 0 && this.startable() > 0) {
      void this.spawn(fd);
      return;
    }
    this.waiting.push(fd);
    Atomics.add(this.ctl, C_WAITING, 1);
    this.pumpWaiting();
  }

  /** Give queued connections, oldest first, to idle threads or to threads allowed to start now. */
  private pumpWaiting(): void {
    const ctl = this.ctl;
    while (this.waiting.length > 0) {
      const slot = claimIdle(ctl);
      if (slot >= 0) handOver(ctl, slot, this.waiting[0]!);
      else if (this.startable() > 0) void this.spawn(this.waiting[0]!);
      else if (this.starting === 0) void this.spawn(this.waiting[0]!); // cannot start one at all: spawn() refuses it
      else break;
      this.waiting.shift();
      Atomics.sub(ctl, C_WAITING, 1);
    }
    if (this.waiting.length > 0 && this.waitingTimer === null) {
      this.waitingTimer = setTimeout(() => {
        this.waitingTimer = null;
        this.pumpWaiting();
      }, WAITING_POLL_MS);
    }
  }

  /**
   * Start a connection thread: for `fd` (the acceptor found no idle thread), or idle (fd -1: a spare).
   * Resolves when the thread is ready; never rejects (a failure refuses that connection).
   */
  private spawn(fd: number, into = -1, attempt = 0): Promise<void> {
    const ctl = this.ctl;
    let slot = into;
    if (slot < 0) {
      slot = this.freeSlot();
      const why = slot < 0 ? 'no free thread slot' : this.fdsLow() ? `fewer than ${START_FDS} file descriptors free for a new thread (raise ulimit -n)` : fd >= 0 && this.memoryLow() ? 'MemAvailable is low' : '';
      if (why !== '') {
        if (fd >= 0) this.refuseHere(fd, why);
        return Promise.resolve();
      }
      ctl[slotIndex(slot, S_FD)] = fd;
      ctl[slotIndex(slot, S_PARKED)] = 0;
      ctl[slotIndex(slot, S_SERVING)] = 0;
      rowOf(this.statSab, slot).fill(0);
      if (fd < 0) Atomics.add(ctl, C_IDLE, 1);
      Atomics.store(ctl, slotIndex(slot, S_STATE), fd >= 0 ? ST_BUSY : ST_IDLE);
      if (slot >= Atomics.load(ctl, C_SLOTS_HIGH)) Atomics.store(ctl, C_SLOTS_HIGH, slot + 1);
    }
    const data: ConnThreadData = {
      slot,
      ctl: this.ctlSab,
      stats: this.statSab,
      app: this.opts.app,
      // Blocking engines do not time app calls: a slow handler holds only its own thread.
      service: { ...this.opts.service, stallMs: null, onStall: undefined },
      spare: this.spare,
      idleMs: this.idleMs,
      limits: this.opts.limits,
    };
    let w: Worker;
    try {
      w = new Worker(new URL('./conn-thread.js', import.meta.url), { workerData: data, env: SHARE_ENV });
    } catch (e) {
      // Thread creation failed (EAGAIN from pthread_create, out of memory): refuse, do not crash.
      this.warnOnce('spawn', `cannot start a connection thread: ${(e as Error).message}`);
      this.release(slot, true);
      return Promise.resolve();
    }
    const entry: Slot = { worker: w, ready: false, attempt };
    this.slots[slot] = entry;
    this.starting++;
    const forConn = fd >= 0 ? 1 : 0;
    this.startingConns += forConn;
    return new Promise((resolve) => {
      w.on('message', (m: FromConnThread) => {
        if (m.type === 'ready') {
          entry.ready = true;
          this.starting--;
          this.startingConns -= forConn;
          resolve();
          if (this.waiting.length > 0) this.pumpWaiting();
        } else if (m.type === 'warn') this.warnOnce(m.message, m.message);
      });
      w.on('error', (e) => this.warnOnce(`thread-error:${e.message}`, `connection thread ${slot} died: ${e.message}`));
      w.once('exit', (code) => {
        if (!entry.ready) {
          this.starting--;
          this.startingConns -= forConn;
        }
        resolve();
        this.onThreadExit(slot, entry, code);
        if (this.waiting.length > 0) this.pumpWaiting();
      });
    });
  }

  private freeSlot(): number {
    for (let s = 0; s < this.slotsMax; s++) if (this.slots[s] == null && Atomics.load(this.ctl, slotIndex(s, S_STATE)) === ST_FREE) return s;
    return -1;
  }

  /** File descriptors free, counted (the acceptor's check is a heuristic); Infinity when unknown. */
  private fdsFree(): number {
    if (this.fdLimit === Infinity) return Infinity;
    try {
      return this.fdLimit - readdirSync('/proc/self/fd').length;
    } catch {
      return Infinity; // no /proc: start, and let a failed start refuse the connection
    }
  }

  /** Too few fds free to start one more thread safely, on top of those starting (shared.ts START_FDS). */
  private fdsLow(): boolean {
    return this.fdsFree() < START_FDS * (this.starting + 1);
  }

  /** How many more threads may start now: maxStarting at once, and START_FDS free fds for each. */
  private startable(): number {
    const byCount = this.maxStarting - this.starting;
    if (byCount <= 0) return 0;
    return Math.max(0, Math.min(byCount, Math.floor(this.fdsFree() / START_FDS) - this.starting));
  }

  /** Check MemAvailable at most every 100 ms: past the floor, new threads are refused. */
  private memoryLow(): boolean {
    const t = performance.now();
    if (t - this.memCheckAt < 100) return this.memLow;
    this.memCheckAt = t;
    const m = meminfo();
    this.memLow = m !== null && m.available < m.total * MEM_FLOOR_SHARE;
    return this.memLow;
  }

  /** Refuse a connection the acceptor counted as accepted: it moves from total to refused. */
  private refuseHere(fd: number, why: string): void {
    refuse(fd, this.protocol);
    Atomics.add(this.ctl, C_REFUSED, 1);
    Atomics.sub(this.ctl, C_TOTAL, 1);
    Atomics.sub(this.ctl, C_CURRENT, 1);
    Atomics.notify(this.ctl, C_CURRENT);
    this.warnOnce(`refuse:${why}`, `refusing connections: ${why}`);
  }

  /** A slot whose thread never started or has gone: close what it held and free it. */
  private release(slot: number, refuseFd: boolean): void {
    const ctl = this.ctl;
    const st = Atomics.load(ctl, slotIndex(slot, S_STATE));
    if (st === ST_IDLE) Atomics.sub(ctl, C_IDLE, 1);
    const fd = Atomics.exchange(ctl, slotIndex(slot, S_FD), -1);
    if (fd >= 0) {
      if (refuseFd) {
        refuse(fd, this.protocol);
        Atomics.add(ctl, C_REFUSED, 1);
        Atomics.sub(ctl, C_TOTAL, 1);
      } else {
        ffi.close(fd);
        this.lost++;
      }
      Atomics.sub(ctl, C_CURRENT, 1);
      Atomics.notify(ctl, C_CURRENT);
    }
    Atomics.store(ctl, slotIndex(slot, S_STATE), ST_FREE);
    this.slots[slot] = null;
  }

  private onThreadExit(slot: number, entry: Slot, code: number): void {
    const ctl = this.ctl;
    const row = rowOf(this.statSab, slot);
    addRow(this.retired, row);
    row.fill(0);
    const iState = slotIndex(slot, S_STATE);
    let st = Atomics.load(ctl, iState);
    // Died while idle: take the slot back, unless the acceptor claimed it in the meantime.
    if (st === ST_IDLE) {
      if (Atomics.compareExchange(ctl, iState, ST_IDLE, ST_FREE) === ST_IDLE) {
        Atomics.sub(ctl, C_IDLE, 1);
        st = ST_FREE;
      } else st = ST_BUSY;
    }
    if (st === ST_BUSY) {
      if (!entry.ready && entry.attempt === 0 && !this.stopping) {
        // It could not start (a transient failure: memory, a module file being rewritten): once more.
        this.slots[slot] = null;
        void this.spawn(Atomics.load(ctl, slotIndex(slot, S_FD)), slot, 1);
        return;
      } else if (!entry.ready) {
        // It could not start twice (thread or memory limits): refuse the connection it was given.
        this.release(slot, true);
      } else if (Atomics.load(ctl, slotIndex(slot, S_SERVING)) === 1) {
        // It died in the middle of a connection: that connection ends.
        this.release(slot, false);
      } else if (this.stopping) {
        // Handed a connection it never picked up, and stopping: that connection ends.
        this.release(slot, false);
      } else {
        // Handed a connection it never picked up: a new thread in the same slot serves it.
        this.slots[slot] = null;
        void this.spawn(Atomics.load(ctl, slotIndex(slot, S_FD)), slot);
        return;
      }
    } else {
      Atomics.store(ctl, iState, ST_FREE);
      this.slots[slot] = null;
    }
    if (code !== 0 && !this.stopping) {
      this.warnOnce(`exit:${code}`, `a connection thread exited with code ${code}; it is replaced`);
      if (Atomics.load(ctl, C_IDLE) < this.spare && this.startable() > 0) void this.spawn(-1);
    }
    this.maybeFinish();
  }

  /** Stop accepting; let in-flight requests finish (HTTP answers carry Connection: close); close. */
  async stop(): Promise<void> {
    if (!this.started) {
      this.finished = true;
      this.resolveDone();
    }
    if (this.finished) return this.done;
    if (this.stopping) return this.done;
    this.stopping = true;
    const ctl = this.ctl;
    Atomics.store(ctl, C_STOP, 1);
    Atomics.notify(ctl, C_CURRENT); // a bounded acceptor waiting for a free thread
    // A thread awaiting an async answer hears this before the answer is encoded (conn-thread.ts).
    for (const e of this.slots) e?.worker.postMessage({ type: 'drain' } satisfies ToConnThread);
    // Wakes the acceptor parked in accept() (EINVAL) and takes the port out of listening at once.
    ffi.shutdown(this.listenFd, SHUT_RD);
    const high = Atomics.load(ctl, C_SLOTS_HIGH);
    for (let s = 0; s < high; s++) {
      Atomics.notify(ctl, slotIndex(s, S_FD)); // idle threads: wake up and leave
      // A thread parked in read() between requests has nothing in flight: begin its lingering close
      // (FIN now; the client's FIN in reply ends the read). Not SHUT_RD: after it a read returns 0 at
      // once, so the linger could not wait for the client's FIN. (The thread set S_PARKED before
      // checking C_STOP, and we set C_STOP before reading S_PARKED, so one of us sees it.)
      this.wakeParked(s, PARK_READ, SHUT_WR);
    }
    // A client that never answers our FIN leaves its thread in read(): after lingerMs of quiet, EOF it.
    const lingerMs = this.opts.limits.lingerMs;
    if (lingerMs > 0) {
      this.lingerTimer = setTimeout(() => {
        for (let s = 0; s < high; s++) this.wakeParked(s, PARK_LINGER, SHUT_RD);
      }, lingerMs);
    }
    this.forceTimer = setTimeout(() => this.force(), this.opts.drainMs);
    this.maybeFinish();
    return this.done;
  }

  /**
   * shutdown(how) the fd of slot `s` if its thread is parked in read() in state `from` (shared.ts:
   * PARK_WAKING holds the thread, and so its fd, until the call is done). Leaves it PARK_LINGER.
   */
  private wakeParked(s: number, from: number, how: number): void {
    const ctl = this.ctl;
    const i = slotIndex(s, S_PARKED);
    if (Atomics.compareExchange(ctl, i, from, PARK_WAKING) !== from) return;
    const fd = Atomics.load(ctl, slotIndex(s, S_FD));
    if (fd >= 0) ffi.shutdown(fd, how);
    Atomics.store(ctl, i, PARK_LINGER);
    Atomics.notify(ctl, i);
  }

  /** The drain deadline passed: end every connection; terminate threads that still do not leave. */
  private force(): void {
    const ctl = this.ctl;
    Atomics.store(ctl, C_STOP, 2);
    // Connections still waiting for a thread at the deadline end unserved.
    for (const fd of this.waiting.splice(0)) {
      ffi.shutdown(fd, SHUT_RDWR);
      ffi.close(fd);
      Atomics.sub(ctl, C_WAITING, 1);
      Atomics.sub(ctl, C_CURRENT, 1);
      this.unserved++;
    }
    if (this.waitingTimer) clearTimeout(this.waitingTimer);
    this.waitingTimer = null;
    const high = Atomics.load(ctl, C_SLOTS_HIGH);
    for (let s = 0; s < high; s++) {
      const fd = Atomics.load(ctl, slotIndex(s, S_FD));
      if (fd >= 0) ffi.shutdown(fd, SHUT_RDWR); // a parked read() returns 0, a parked write() EPIPE
      Atomics.notify(ctl, slotIndex(s, S_FD));
    }
    this.killTimer = setTimeout(() => {
      // Not a thread still starting: terminating an isolate while koffi registers its module or builds
      // its types aborts the whole process (napi_throw fails: "FATAL ERROR ... napi_throw"), seen when a
      // burst of short connections leaves dozens of threads starting at stop. Such a thread ends by
      // itself once started: C_STOP is 2 and its connection was shut down above.
      for (const e of this.slots) if (e?.ready) void e.worker.terminate();
      void this.acceptor?.terminate();
    }, FORCE_GRACE_MS);
  }

  private maybeFinish(): void {
    if (!this.stopping || this.finished || this.acceptor !== null) return;
    if (this.slots.some((e) => e != null) || this.waiting.length > 0) return;
    this.finished = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.forceTimer) clearTimeout(this.forceTimer);
    if (this.killTimer) clearTimeout(this.killTimer);
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    ffi.close(this.listenFd);
    if (this.fatal !== null) this.rejectDone(this.fatal);
    else this.resolveDone();
  }

  async stats(): Promise<EngineStats> {
    if (!this.started) throw new Error('engine not started');
    const ctl = this.ctl;
    const sum = new Float64Array(ROW_WIDTH);
    sum.set(this.retired);
    let live = 0;
    for (let s = 0; s < this.slotsMax; s++) {
      if (this.slots[s] == null) continue;
      live++;
      addRow(sum, rowOf(this.statSab, s));
    }
    addRow(sum, rowOf(this.statSab, this.slotsMax)); // the acceptor's row
    // This (main) thread's own calls: socket, bind, listen, shutdown, the refusals it sends ...
    this.own.fill(0);
    this.own.set(counts, ROW_SYSCALLS);
    this.own[ROW_EAGAIN] = eagain[0]!;
    addRow(sum, this.own);
    return {
      engine: this.name,
      app: this.appName,
      protocol: this.protocol,
      pid: process.pid,
      workers: 1,
      connections: {
        current: Atomics.load(ctl, C_CURRENT),
        peak: Atomics.load(ctl, C_PEAK),
        total: Atomics.load(ctl, C_TOTAL),
        refused: Atomics.load(ctl, C_REFUSED),
        // Accepted, but no thread of theirs has started yet: on its way from the acceptor, in the FIFO,
        // or on a thread still starting.
        queued: Atomics.load(ctl, C_HANDOFF) + this.waiting.length + this.startingConns,
      },
      requests: sum[ROW_REQUESTS]!,
      bytesIn: sum[ROW_BYTES_IN]!,
      bytesOut: sum[ROW_BYTES_OUT]!,
      syscalls: rowSyscalls(sum),
      eagain: sum[ROW_EAGAIN]!,
      wakeups: sum[ROW_WAKEUPS]!,
      // Blocking engines have no shared loop to stall: a slow handler holds only its own thread.
      loopStalls: { count: 0, maxMs: 0, byRoute: {} },
      // Threads running JS: connection threads + the acceptor + this main thread.
      threads: live + (this.acceptor ? 1 : 0) + 1,
      processes: 1,
      // Not (yet) in EngineStats: what the pool looks like and what a thread costs here.
      pool: {
        threadKind: 'node worker_thread: a V8 isolate per thread (a bare pthread costs ~12 KB RSS)',
        rssPerThread: Math.round(this.rssPerThread),
        connectionThreads: live,
        idle: Atomics.load(ctl, C_IDLE),
        spare: this.spare,
        v8Flags: this.tiering,
        limit: Atomics.load(ctl, C_LIMIT),
        bounded: this.bounded,
        limitReason: this.limitReason,
        lostToDeadThreads: this.lost,
        waiting: this.waiting.length,
        starting: this.starting,
        unservedAtDeadline: this.unserved,
      },
    } as EngineStats;
  }

  private warnOnce(key: string, msg: string): void {
    if (this.opts.quiet || this.warned.has(key)) return;
    this.warned.add(key);
    process.stderr.write(`iolab threads: ${msg}\n`);
  }
}
