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
 *    against ~20 us for pthread_create: spare threads are started up front, and reused;
 *  - 8 connections on 8 threads: ~82k req/s at ~12 us CPU/request (epoll: ~131k at ~7.4 us);
 *    100 on 100 threads: ~11k req/s at ~88 us/request. Each request runs on another isolate with its
 *    own copy of the JIT code and heap, cache-cold; a 16x lower --interrupt-budget (faster tier-up)
 *    did not change it, so it is not JIT warm-up. Native threads share their code; isolates do not.
 *
 * Each thread counts its own syscalls (every thread has its own sys module) into a row of a shared
 * Float64Array, so stats() never has to ask a thread that sits in read().
 *
 * Not used on purpose: koffi's `.async` calls, which run blocking C calls on libuv's small thread
 * pool (4 threads by default). That is a pool of C threads behind an event loop, not a thread per
 * connection, and with more connections than pool threads it would serialise them.
 */
import { Worker, SHARE_ENV } from 'node:worker_threads';
import { loadApp } from '../../apps/index.js';
import {
  IPPROTO_TCP, SHUT_RD, SHUT_RDWR, SO_SNDTIMEO, TCP_NODELAY, counts, eagain, ffi, listenTcp, localAddress, setIntOpt,
} from '../../sys/index.js';
import type { Engine, EngineOptions, EngineStats, Listening } from '../types.js';
import {
  ROW_EAGAIN, ROW_SYSCALLS, ROW_WIDTH, ROW_BYTES_IN, ROW_BYTES_OUT, ROW_REQUESTS, ROW_WAKEUPS, addRow, envInt, meminfo,
  refuse, rowSyscalls, rssOf, setTimeoutOpt,
} from './blocking.js';
import {
  C_BOUNDED, C_CURRENT, C_IDLE, C_LIMIT, C_PEAK, C_REFUSED, C_SLOTS_HIGH, C_STOP, C_TOTAL, S_FD, S_PARKED, S_SERVING,
  S_STATE, ST_BUSY, ST_FREE, ST_IDLE, controlBlock, rowOf, slotIndex, statsBlock, type AcceptorData, type ConnThreadData,
  type FromAcceptor, type FromConnThread,
} from './shared.js';

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
/** A write that makes no progress this long (a client that does not read) closes the connection. */
const SLOW_READER_MS = 30_000;
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
  private idleMs = DEFAULT_IDLE_MS;
  private rssPerThread = DEFAULT_THREAD_RSS;
  private limitReason = '';
  private memCheckAt = 0;
  private memLow = false;
  private lost = 0;
  private fatal: unknown = null;

  private started = false;
  private stopping = false;
  private finished = false;
  private forceTimer: NodeJS.Timeout | null = null;
  private killTimer: NodeJS.Timeout | null = null;
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

    const maxThreads = o.maxThreads ?? envInt('IOLAB_MAX_THREADS') ?? (o.workers > 1 ? o.workers : undefined);
    this.bounded = maxThreads !== undefined;
    const hardCap = Math.min(HARD_CAP, envInt('IOLAB_THREAD_CAP') ?? HARD_CAP);
    this.spare = Math.min(envInt('IOLAB_SPARE_THREADS', 0) ?? DEFAULT_SPARE, maxThreads ?? hardCap, hardCap);
    this.idleMs = envInt('IOLAB_THREAD_IDLE_MS') ?? DEFAULT_IDLE_MS;
    // Idle threads beyond the limit only exist until their idle timeout; a few extra slots cover
    // threads that are leaving while new ones start.
    this.slotsMax = Math.min(maxThreads ?? hardCap, hardCap) + this.spare + 16;

    this.listenFd = listenTcp({ host: o.host, port: o.port, backlog: o.backlog, nonBlocking: false });
    try {
      // Accepted sockets inherit these from the listener (sk_clone_lock() -> sock_copy() copies the
      // listener's struct sock), which saves a setsockopt per connection. Checked with getsockopt.
      setIntOpt(this.listenFd, IPPROTO_TCP, TCP_NODELAY, 1);
      setTimeoutOpt(this.listenFd, SO_SNDTIMEO, SLOW_READER_MS);
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
    this.setLimit(maxThreads, hardCap);

    this.started = true;
    await this.startAcceptor();
    // Start the spare threads, and measure what a thread costs on this machine.
    const rss0 = rssOf('self');
    await Promise.all(Array.from({ length: this.spare }, () => this.spawn(-1)));
    if (this.spare > 0) {
      const per = (rssOf('self') - rss0) / this.spare;
      if (per > 4 * 1024 * 1024 && per < 256 * 1024 * 1024) {
        this.rssPerThread = Math.max(per, 8 * 1024 * 1024);
        this.setLimit(maxThreads, hardCap);
      }
    }
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
        else if (m.type === 'spawn') void this.spawn(m.fd);
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
   * Start a connection thread: for `fd` (the acceptor found no idle thread), or idle (fd -1: a spare).
   * Resolves when the thread is ready; never rejects (a failure refuses that connection).
   */
  private spawn(fd: number, into = -1, attempt = 0): Promise<void> {
    const ctl = this.ctl;
    let slot = into;
    if (slot < 0) {
      slot = this.freeSlot();
      if (slot < 0 || (fd >= 0 && this.memoryLow())) {
        if (fd >= 0) this.refuseHere(fd, slot < 0 ? 'no free thread slot' : 'MemAvailable is low');
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
      slowReaderMs: SLOW_READER_MS,
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
    return new Promise((resolve) => {
      w.on('message', (m: FromConnThread) => {
        if (m.type === 'ready') {
          entry.ready = true;
          resolve();
        } else if (m.type === 'warn') this.warnOnce(m.message, m.message);
      });
      w.on('error', (e) => this.warnOnce(`thread-error:${e.message}`, `connection thread ${slot} died: ${e.message}`));
      w.once('exit', (code) => {
        resolve();
        this.onThreadExit(slot, entry, code);
      });
    });
  }

  private freeSlot(): number {
    for (let s = 0; s < this.slotsMax; s++) if (this.slots[s] == null && Atomics.load(this.ctl, slotIndex(s, S_STATE)) === ST_FREE) return s;
    return -1;
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
      if (Atomics.load(ctl, C_IDLE) < this.spare) void this.spawn(-1);
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
    // Wakes the acceptor parked in accept() (EINVAL) and takes the port out of listening at once.
    ffi.shutdown(this.listenFd, SHUT_RD);
    const high = Atomics.load(ctl, C_SLOTS_HIGH);
    for (let s = 0; s < high; s++) {
      Atomics.notify(ctl, slotIndex(s, S_FD)); // idle threads: wake up and leave
      // A thread parked in read() between requests has nothing in flight: EOF it now. (It set
      // S_PARKED before checking C_STOP, and we set C_STOP before reading S_PARKED, so one of us sees it.)
      const fd = Atomics.load(ctl, slotIndex(s, S_FD));
      if (fd >= 0 && Atomics.load(ctl, slotIndex(s, S_PARKED)) === 1) ffi.shutdown(fd, SHUT_RD);
    }
    this.forceTimer = setTimeout(() => this.force(), this.opts.drainMs);
    this.maybeFinish();
    return this.done;
  }

  /** The drain deadline passed: end every connection; terminate threads that still do not leave. */
  private force(): void {
    const ctl = this.ctl;
    Atomics.store(ctl, C_STOP, 2);
    const high = Atomics.load(ctl, C_SLOTS_HIGH);
    for (let s = 0; s < high; s++) {
      const fd = Atomics.load(ctl, slotIndex(s, S_FD));
      if (fd >= 0) ffi.shutdown(fd, SHUT_RDWR); // a parked read() returns 0, a parked write() EPIPE
      Atomics.notify(ctl, slotIndex(s, S_FD));
    }
    this.killTimer = setTimeout(() => {
      for (const e of this.slots) void e?.worker.terminate();
      void this.acceptor?.terminate();
    }, FORCE_GRACE_MS);
  }

  private maybeFinish(): void {
    if (!this.stopping || this.finished || this.acceptor !== null) return;
    if (this.slots.some((e) => e != null)) return;
    this.finished = true;
    if (this.forceTimer) clearTimeout(this.forceTimer);
    if (this.killTimer) clearTimeout(this.killTimer);
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
        limit: Atomics.load(ctl, C_LIMIT),
        bounded: this.bounded,
        limitReason: this.limitReason,
        lostToDeadThreads: this.lost,
      },
    } as EngineStats;
  }

  private warnOnce(key: string, msg: string): void {
    if (this.opts.quiet || this.warned.has(key)) return;
    this.warned.add(key);
    process.stderr.write(`iolab threads: ${msg}\n`);
  }
}
