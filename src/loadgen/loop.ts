/**
 * The load loop: one per process, owning its thread like the server reactor
 * (engines/reactor/reactor.ts). Each turn waits in the I/O backend and handles what happened for up
 * to YIELD_MS, then yields one tick to Node's loop (signals, IPC with the parent, progress timers)
 * with setImmediate; idle, the wait blocks up to YIELD_MS, which bounds the latency of Ctrl-C.
 *
 * Connections are *slots* 0..n-1 (this process's share); a slot keeps its place in the schedule
 * across reconnects. Per-slot state is a row across typed arrays: state, requests in flight, a
 * ring of send times (`pipeline` entries per slot) and, in rate mode, a ring of intended times.
 *
 * Phases: CONNECT (open the slots, paced by --connect-rate) -> READY (wait for the go signal: with
 * several processes the parent starts them together) -> RUN (measure) -> DONE. Every run ends: by
 * duration, by request count, by stop() (Ctrl-C), or by the hard deadline.
 *
 * Modes:
 *  - closed: every connection keeps `pipeline` requests in flight; each reply is replaced at once,
 *    replies read together are replaced with one write.
 *  - rate: request g of this process is *intended* at t0 + g/R and belongs to slot g mod n (so each
 *    connection runs at R/n). A slot sends a request when it is due and the slot has room
 *    (in flight < pipeline); a late server therefore delays the sends, and latency is measured
 *    from the intended time: the coordinated-omission correction of wrk2. The uncorrected
 *    latency (from the actual send) is recorded beside it.
 *  - hold: connect, then keep the connections for the duration, idle or (with --interval T) with a
 *    rate-mode trickle of one request per connection every T. Nothing reconnects: a lost
 *    connection is a failure to report.
 */
import { decodeSockaddr, encodeSockaddr, syscallCounts, AF_INET, AF_INET6, errnoName } from '../sys/index.js';
import {
  E_PROTOCOL, E_TIMEOUT, E_WRONG, ERROR_KINDS, errnoLabel, errorsFromArray, kindOfErrno,
  type ErrorCounts,
} from './errors.js';
import { LatencyRecorder, encodeHistogram } from './histogram.js';
import { createIo, type Endpoint, type IoBackend, type IoSink } from './io.js';
import type { ResolvedOptions } from './options.js';
import { createWorkload, type Workload } from './workload.js';
import { performance } from 'node:perf_hooks'; // the global is a lazy accessor: a getter call per use

const YIELD_MS = 50;
/** How often in-flight requests and connects are checked against their timeouts. */
const SCAN_MS = 100;
/** A slot whose connect failed (or that closed before any reply) waits this long before retrying. */
const RETRY_MS = 100;
const MAX_SAMPLES = 5;
/** Connects started per turn of the loop at most. */
const OPEN_BATCH = 256;

const S_IDLE = 0, S_CONNECTING = 1, S_OPEN = 2, S_WAIT = 3, S_DEAD = 4;
const P_CONNECT = 0, P_READY = 1, P_RUN = 2, P_DONE = 3;
/** everOpen: no outcome yet, connected at least once, first attempt failed (and none succeeded yet). */
const EVER_NONE = 0, EVER_OPEN = 1, EVER_FAILED = 2;

/** This process's share of the run. */
export interface ProcShare {
  index: number;
  /** Global index of slot 0 (spreads targets and sources the same way in every process). */
  slotBase: number;
  slots: number;
  /** Requests per second of this process (rate mode; hold trickle derives its own). */
  rate: number;
  /** Requests this process completes (0: bounded by duration). */
  requests: number;
  /** Connects per second of this process (0: unpaced). */
  connectRate: number;
}

export interface ProgressSnapshot {
  index: number;
  phase: 'connect' | 'ready' | 'run' | 'done';
  /** Milliseconds since the run phase began (0 before). */
  elapsedMs: number;
  completed: number;
  sent: number;
  errors: number;
  open: number;
  bytesSent: number;
  bytesReceived: number;
  /** HdrHistogram log interval (encoded), when an HDR log is being written. */
  interval?: { startMs: number; endMs: number; histogram: string };
}

export interface LoopHooks {
  /** The connect phase is over. */
  onReady?(r: { established: number; failed: number; connectMs: number }): void;
  /** Start measuring when this resolves (default: at once). */
  go?: Promise<void>;
  onProgress?(p: ProgressSnapshot): void;
  /** Default 1000 ms. */
  progressMs?: number;
  /** Record interval histograms for an HDR log. */
  hdrIntervals?: boolean;
}

/** One process's result: plain data (crosses IPC), merged by result.ts. */
export interface ProcResult {
  index: number;
  pid: number;
  backend: string;
  /** Epoch ms when the run phase began. */
  startedAt: number;
  connectMs: number;
  /** Length of the measured window. */
  elapsedMs: number;
  interrupted: boolean;
  deadlineHit: boolean;
  connections: {
    target: number;
    /** Slots that got connected at least once. */
    established: number;
    /** Open when the run ended. */
    open: number;
    peak: number;
    /** Slots never connected. */
    failed: number;
    /** Connects after a slot's first. */
    reconnects: number;
  };
  requests: { sent: number; completed: number };
  bytes: { sent: number; received: number };
  errors: ErrorCounts;
  byErrno: Record<string, number>;
  samples: string[];
  /** Encoded HDR histograms (µs). `latency` is corrected in rate mode. */
  latency: string;
  uncorrected: string | null;
  connect: string;
  /** Hold mode: connections lost during the hold, by cause. */
  lost: number;
  syscalls: Record<string, number>;
  /** The I/O backend's own counters (io_uring: SQEs, CQEs, overflows, -ENOBUFS, short sends ...). */
  io: Record<string, number>;
  cpu: { userUs: number; systemUs: number };
}

export class LoadLoop implements IoSink {
  private readonly o: ResolvedOptions;
  private readonly share: ProcShare;
  private readonly hooks: LoopHooks;
  private io!: IoBackend;
  private wl!: Workload;
  private readonly n: number;
  private readonly depth: number;
  private readonly rateMode: boolean;
  private readonly hold: boolean;
  private readonly reconnect: boolean;

  // ---- slot rows ----
  private readonly st: Uint8Array;
  private readonly inflight: Int32Array;
  private readonly head: Int32Array;
  private readonly sentT: Float64Array;
  private readonly intT: Float64Array;
  private readonly nextK: Float64Array;
  private readonly connT: Float64Array;
  private readonly everOpen: Uint8Array;
  /** Replies since this slot's last connect (a slot that dies before any reply retries after RETRY_MS). */
  private readonly answered: Uint8Array;
  /** Slots with sends pending until the current batch of events is handled (see markDirty). */
  private readonly dirty: Int32Array;
  private dirtyLen = 0;
  private readonly isDirty: Uint8Array;
  private readonly refill: Int32Array;
  private readonly targetOf: Uint16Array;
  private readonly endpoints: Endpoint[];
  private readonly sourceOf: (Endpoint | null)[];

  // ---- retry queue (FIFO: every entry waits the same RETRY_MS) ----
  private readonly retrySlot: Int32Array;
  private readonly retryAt: Float64Array;
  private retryHead = 0;
  private retryLen = 0;

  // ---- histograms (µs) ----
  private readonly hist: LatencyRecorder;
  private readonly histUnc: LatencyRecorder | null;
  private readonly histConnect = new LatencyRecorder();
  private intervalStart = 0;

  // ---- counters ----
  private sent = 0;
  private completed = 0;
  private bytesSent = 0;
  private bytesRecv = 0;
  private readonly errors = new Float64Array(ERROR_KINDS.length);
  private readonly byErrno = new Map<string, number>();
  private readonly samples: string[] = [];
  private open = 0;
  private peak = 0;
  private everCount = 0;
  private outcomes = 0;
  private reconnects = 0;
  private lost = 0;
  private totalInflight = 0;
  private budget = Infinity;

  // ---- schedule ----
  private phase = P_CONNECT;
  private deadline = 0;
  private nextOpen = 0;
  private connectStart = 0;
  private connectEnd = 0;
  private connectLimit = 0;
  private t0 = 0;
  private startedAt = 0;
  private tEnd = Infinity;
  /** Rate mode: ms between requests of this process, and the global sequence issued so far. */
  private period = 0;
  private issued = 0;
  private nextScan = 0;
  private nextProgress = 0;
  private goFired = false;
  private stopRequested = false;
  private interrupted = false;
  private deadlineHit = false;
  private cpu0 = process.cpuUsage();
  private resolveDone!: (r: ProcResult) => void;
  private rejectDone!: (e: unknown) => void;

  constructor(o: ResolvedOptions, share: ProcShare, hooks: LoopHooks = {}) {
    this.o = o;
    this.share = share;
    this.hooks = hooks;
    const n = (this.n = share.slots);
    this.hold = o.mode === 'hold';
    this.rateMode = o.mode === 'rate' || (this.hold && o.intervalMs > 0);
    this.depth = this.hold ? 1 : o.pipeline;
    this.reconnect = !this.hold;
    this.st = new Uint8Array(n);
    this.inflight = new Int32Array(n);
    this.head = new Int32Array(n);
    this.sentT = new Float64Array(n * this.depth);
    this.intT = this.rateMode ? new Float64Array(n * this.depth) : new Float64Array(0);
    this.nextK = new Float64Array(n);
    this.connT = new Float64Array(n);
    this.everOpen = new Uint8Array(n);
    this.answered = new Uint8Array(n);
    this.dirty = new Int32Array(n);
    this.isDirty = new Uint8Array(n);
    this.refill = new Int32Array(n);
    this.retrySlot = new Int32Array(n);
    this.retryAt = new Float64Array(n);
    this.hist = new LatencyRecorder(hooks.hdrIntervals === true);
    this.histUnc = this.rateMode ? new LatencyRecorder() : null;
    // Slot i of this process is global connection slotBase + i: target (i mod T), source (i div T mod S).
    const T = o.targets.length;
    this.endpoints = o.targets.map((t) => endpoint(t.host, t.port));
    const srcs = o.sources.map((s) => endpoint(s, 0));
    this.targetOf = new Uint16Array(n);
    this.sourceOf = new Array<Endpoint | null>(n).fill(null);
    for (let i = 0; i < n; i++) {
      const g = share.slotBase + i;
      this.targetOf[i] = g % T;
      if (srcs.length > 0) this.sourceOf[i] = srcs[Math.floor(g / T) % srcs.length]!;
    }
    if (share.requests > 0) this.budget = share.requests;
    if (this.rateMode) {
      const rate = this.hold ? (n * 1000) / o.intervalMs : share.rate;
      this.period = 1000 / rate;
    }
  }

  /** Run to the end; resolves with this process's result. */
  async run(): Promise<ProcResult> {
    this.wl = createWorkload(this.o, this.n, this.targetOf);
    this.io = await createIo(this.o.backend, this.n, this);
    const done = new Promise<ProcResult>((res, rej) => {
      this.resolveDone = res;
      this.rejectDone = rej;
    });
    const now = performance.now();
    this.deadline = now + this.o.deadlineMs;
    this.connectStart = now;
    const rate = this.share.connectRate;
    this.connectLimit = now + (rate > 0 ? (this.n / rate) * 1000 : 0) + this.o.connectTimeoutMs + 1000;
    this.nextScan = now + SCAN_MS;
    this.nextProgress = now + (this.hooks.progressMs ?? 1000);
    if (this.hooks.go) void this.hooks.go.then(() => (this.goFired = true));
    else this.goFired = true;
    setImmediate(this.turn);
    return done;
  }

  /** Stop soon (Ctrl-C): the result says `interrupted`. */
  stop(): void {
    this.stopRequested = true;
  }

  // ------------------------------------------------------------------------------------ the loop

  private readonly turn = (): void => {
    try {
      const start = performance.now();
      for (;;) {
        const now = performance.now();
        if (this.tick(now)) return;
        const left = YIELD_MS - (now - start);
        if (left <= 0) break;
        const timeout = this.waitTimeout(now, left);
        this.io.wait(timeout);
        if (this.dirtyLen > 0) this.flushDirty();
        if (this.phase === P_RUN && this.rateMode) this.rateTick(performance.now());
      }
    } catch (e) {
      this.phase = P_DONE;
      try {
        this.io.destroy();
      } catch {
        /* already failing */
      }
      this.rejectDone(e);
      return;
    }
    setImmediate(this.turn);
  };

  /** Phase changes, pacing, timeouts, progress. Returns true when the run is over (result delivered). */
  private tick(now: number): boolean {
    if (now >= this.deadline && this.phase !== P_DONE) {
      this.deadlineHit = true;
      return this.finish(now);
    }
    if (this.stopRequested) {
      this.interrupted = this.phase !== P_DONE;
      return this.finish(now);
    }
    if (this.phase === P_CONNECT) {
      this.openDue(now);
      if (this.outcomes >= this.n || now >= this.connectLimit) {
        this.phase = P_READY;
        this.connectEnd = now;
        this.hooks.onReady?.({ established: this.everCount, failed: this.n - this.everCount, connectMs: now - this.connectStart });
      }
    }
    if (this.phase === P_READY && this.goFired) this.begin(now);
    if (this.phase === P_RUN) {
      if (now >= this.tEnd) return this.finish(this.tEnd);
      if (this.budget === 0 && this.totalInflight === 0) return this.finish(now);
    }
    if (this.retryLen > 0) this.retryDue(now);
    if (now >= this.nextScan) {
      this.scanTimeouts(now);
      this.nextScan = now + SCAN_MS;
    }
    if (now >= this.nextProgress) {
      this.progress(now);
      this.nextProgress = now + (this.hooks.progressMs ?? 1000);
    }
    return false;
  }

  private waitTimeout(now: number, left: number): number {
    let t = left;
    if (this.phase === P_RUN) {
      t = Math.min(t, this.tEnd - now);
      if (this.rateMode) t = Math.min(t, this.t0 + this.issued * this.period - now);
    } else if (this.phase === P_CONNECT) {
      if (this.nextOpen < this.n) t = this.share.connectRate > 0 ? Math.min(t, 1000 / this.share.connectRate) : 0;
      else t = Math.min(t, 10);
    } else if (this.phase === P_READY && !this.goFired) t = Math.min(t, 5);
    if (this.retryLen > 0) t = Math.min(t, this.retryAt[this.retryHead]! - now);
    t = Math.min(t, this.nextScan - now);
    // Fractional: the backend waits to the microsecond where it can (epoll_pwait2), else rounds up.
    return t <= 0 ? 0 : t;
  }

  private begin(now: number): void {
    this.phase = P_RUN;
    this.t0 = now;
    this.intervalStart = Date.now();
    this.startedAt = Date.now();
    if (this.o.durationMs > 0) this.tEnd = now + this.o.durationMs;
    this.cpu0 = process.cpuUsage();
    if (this.rateMode) {
      this.issued = 0;
      this.rateTick(now);
    } else if (!this.hold) {
      for (let s = 0; s < this.n; s++) if (this.st[s] === S_OPEN) this.issue(s, this.depth, now);
    }
  }

  // ---------------------------------------------------------------------------------- connecting

  private openDue(now: number): void {
    const rate = this.share.connectRate;
    let allowed = rate > 0 ? Math.min(this.n, Math.floor(((now - this.connectStart) * rate) / 1000) + 1) : this.n;
    // A bounded batch per turn, so completions are handled between batches (connect() itself costs
    // ~10-50 us, more when the port range is crowded).
    if (allowed - this.nextOpen > OPEN_BATCH) allowed = this.nextOpen + OPEN_BATCH;
    while (this.nextOpen < allowed) this.openSlot(this.nextOpen++, now);
  }

  private openSlot(slot: number, now: number): void {
    this.st[slot] = S_CONNECTING;
    this.connT[slot] = now;
    this.answered[slot] = 0;
    const r = this.io.connect(slot, this.endpoints[this.targetOf[slot]!]!, this.sourceOf[slot]!);
    if (r < 0) this.connectFailed(slot, -r, now);
  }

  onConnect(slot: number, errno: number, now: number): void {
    if (errno !== 0) {
      this.connectFailed(slot, errno, now);
      return;
    }
    this.st[slot] = S_OPEN;
    this.open++;
    if (this.open > this.peak) this.peak = this.open;
    this.histConnect.record(Math.round((now - this.connT[slot]!) * 1000));
    const ever = this.everOpen[slot]!;
    if (ever !== EVER_OPEN) {
      if (ever === EVER_NONE) this.outcomes++;
      this.everOpen[slot] = EVER_OPEN;
      this.everCount++;
    } else this.reconnects++;
    this.wl.reset(slot);
    this.inflight[slot] = 0;
    this.head[slot] = 0;
    this.refill[slot] = 0;
    if (this.phase === P_RUN && (this.rateMode || !this.hold)) this.markDirty(slot, this.rateMode ? 0 : this.depth);
  }

  /** A connect attempt ended without a connection (the backend has closed the fd, or none was made). */
  private connectFailed(slot: number, errno: number, now: number): void {
    this.firstOutcomeFailed(slot);
    this.count(kindOfErrno(errno), errno, `connect: ${errnoName(errno)}`);
    this.retire(slot, now);
  }

  private firstOutcomeFailed(slot: number): void {
    if (this.everOpen[slot] === EVER_NONE) {
      this.everOpen[slot] = EVER_FAILED;
      this.outcomes++;
    }
  }

  /**
   * After a failure or a close: hold mode (and a finished run) gives the slot up; otherwise a slot
   * that was serving replies reconnects at once (as wrk does) and one that failed before any reply
   * waits RETRY_MS, so a refusing server is not hammered in a tight loop.
   */
  private retire(slot: number, now: number): void {
    if (!this.reconnect || this.phase === P_DONE) {
      this.st[slot] = S_DEAD;
      return;
    }
    if (this.answered[slot] === 1) {
      this.openSlot(slot, now);
      return;
    }
    this.st[slot] = S_WAIT;
    const i = (this.retryHead + this.retryLen) % this.n;
    this.retrySlot[i] = slot;
    this.retryAt[i] = now + RETRY_MS;
    this.retryLen++;
  }

  private retryDue(now: number): void {
    while (this.retryLen > 0 && this.retryAt[this.retryHead]! <= now) {
      const slot = this.retrySlot[this.retryHead]!;
      this.retryHead = (this.retryHead + 1) % this.n;
      this.retryLen--;
      if (this.st[slot] === S_WAIT) this.openSlot(slot, now);
    }
  }

  // ------------------------------------------------------------------------------------- sending

  /** Closed mode: send `count` requests on slot now (fewer when the request budget runs out). */
  private issue(slot: number, count: number, now: number): void {
    if (count > this.budget) count = this.budget;
    if (count <= 0) return;
    if (this.budget !== Infinity) this.budget -= count;
    const d = this.depth, base = slot * d;
    let pos = this.head[slot]! + this.inflight[slot]!;
    for (let i = 0; i < count; i++, pos++) this.sentT[base + (pos % d)] = now;
    this.inflight[slot]! += count;
    this.totalInflight += count;
    this.sent += count;
    const len = this.wl.fill(slot, count);
    this.bytesSent += len;
    const r = this.io.send(slot, this.wl.buf, len);
    if (r < 0) this.fail(slot, kindOfErrno(-r), `write: ${errnoLabel(-r)}`, -r, now);
  }

  /** Rate mode: send what is due on slot, as far as it has room. */
  private pump(slot: number, now: number): void {
    if (this.st[slot] !== S_OPEN) return;
    const d = this.depth, base = slot * d, n = this.n, period = this.period;
    let k = this.nextK[slot]!;
    let inf = this.inflight[slot]!;
    let pos = this.head[slot]! + inf;
    let count = 0;
    while (inf < d && count < this.budget) {
      const intended = this.t0 + (slot + k * n) * period;
      if (intended > now || intended >= this.tEnd) break;
      const i = base + (pos % d);
      this.intT[i] = intended;
      this.sentT[i] = now;
      k++;
      inf++;
      pos++;
      count++;
    }
    if (count === 0) return;
    this.nextK[slot] = k;
    this.inflight[slot] = inf;
    this.totalInflight += count;
    if (this.budget !== Infinity) this.budget -= count;
    this.sent += count;
    const len = this.wl.fill(slot, count);
    this.bytesSent += len;
    const r = this.io.send(slot, this.wl.buf, len);
    if (r < 0) this.fail(slot, kindOfErrno(-r), `write: ${errnoLabel(-r)}`, -r, now);
  }

  /** Rate mode: wake the slots whose next request has come due. */
  private rateTick(now: number): void {
    const elapsed = now - this.t0;
    let due = Math.floor(elapsed / this.period) + 1;
    if (this.tEnd !== Infinity) due = Math.min(due, Math.ceil((this.tEnd - this.t0) / this.period));
    if (due <= this.issued) return;
    const n = this.n;
    if (due - this.issued >= n) {
      for (let s = 0; s < n; s++) this.pump(s, now);
    } else {
      for (let g = this.issued; g < due; g++) this.pump(g % n, now);
    }
    this.issued = due;
  }

  // ------------------------------------------------------------------------------------- receiving

  onData(slot: number, buf: Buffer, n: number, now: number): void {
    this.bytesRecv += n;
    const wl = this.wl;
    const k = wl.consume(slot, buf, n);
    if (k > 0 && !this.complete(slot, k, now)) return;
    if (wl.bad > 0) this.count(E_WRONG, -1, wl.reason, wl.bad);
    if (wl.err !== 0) {
      this.fail(slot, wl.err, wl.reason, -1, now);
      return;
    }
    if (wl.closeAfter) {
      // The server ends keep-alive: not an error. Requests still in flight are dropped with it.
      this.drop(slot);
      this.io.close(slot);
      this.open--;
      this.st[slot] = S_IDLE;
      this.retire(slot, now);
      return;
    }
    if (this.phase !== P_RUN) return;
    if (this.rateMode) this.markDirty(slot, 0);
    else if (k > 0) this.markDirty(slot, k);
  }

  /**
   * Slot has requests to send (closed: `k` more replacements; rate: whatever is due). Sends wait
   * until the whole batch of events is handled, then go out together (flushDirty), as wrk's loop
   * does: the server then finds many requests per wakeup instead of being woken per request, which
   * is what a server-bound measurement needs, and replies read together become one write per slot.
   */
  private markDirty(slot: number, k: number): void {
    this.refill[slot]! += k;
    if (this.isDirty[slot] === 1) return;
    this.isDirty[slot] = 1;
    this.dirty[this.dirtyLen++] = slot;
  }

  private flushDirty(): void {
    const now = performance.now();
    const list = this.dirty;
    // Sends may fail and close slots; a failed slot's refill is cleared by drop(), so it sends nothing.
    for (let i = 0; i < this.dirtyLen; i++) {
      const slot = list[i]!;
      this.isDirty[slot] = 0;
      const k = this.refill[slot]!;
      this.refill[slot] = 0;
      if (this.st[slot] !== S_OPEN || this.phase !== P_RUN) continue;
      if (this.rateMode) this.pump(slot, now);
      else if (k > 0) this.issue(slot, k, now);
    }
    this.dirtyLen = 0;
  }

  /** Account for k replies on slot. Returns false if the slot was failed. */
  private complete(slot: number, k: number, now: number): boolean {
    const inf = this.inflight[slot]!;
    if (k > inf) {
      this.fail(slot, E_PROTOCOL, `${k - inf} more replies than requests`, -1, now);
      return false;
    }
    const d = this.depth, base = slot * d;
    let h = this.head[slot]!;
    const counted = this.phase === P_RUN && now <= this.tEnd;
    const hist = this.hist, unc = this.histUnc;
    for (let i = 0; i < k; i++) {
      const idx = base + h;
      if (counted) {
        // Rounded to whole µs; performance.now() is monotonic, so never negative.
        hist.record(Math.round((now - (unc !== null ? this.intT[idx]! : this.sentT[idx]!)) * 1000));
        if (unc !== null) unc.record(Math.round((now - this.sentT[idx]!) * 1000));
      }
      h = h + 1 === d ? 0 : h + 1;
    }
    this.head[slot] = h;
    this.inflight[slot] = inf - k;
    this.totalInflight -= k;
    this.answered[slot] = 1;
    if (counted) this.completed += k;
    return true;
  }

  onClose(slot: number, errno: number, now: number): void {
    this.open--;
    this.st[slot] = S_IDLE;
    const wl = this.wl;
    // A body read until close ends here.
    const k = wl.eof(slot);
    if (k > 0) this.complete(slot, Math.min(k, this.inflight[slot]!), now);
    if (wl.bad > 0) this.count(E_WRONG, -1, wl.reason, wl.bad);
    if (wl.err !== 0) this.count(wl.err, -1, wl.reason);
    else if (!wl.closeAfter) {
      const inf = this.inflight[slot]!;
      const what = errno === 0 ? (inf > 0 ? `closed by the server with ${inf} request(s) in flight` : 'closed by the server') : `read: ${errnoLabel(errno)}`;
      this.count(kindOfErrno(errno), errno, what);
      if (this.hold) this.lost++;
    }
    this.drop(slot);
    this.retire(slot, now);
  }

  /** Close slot after an error of `kind` (errno -1: not a syscall error). */
  private fail(slot: number, kind: number, why: string, errno: number, now: number): void {
    this.count(kind, errno, why);
    this.drop(slot);
    const st = this.st[slot]!;
    if (this.io.isOpen(slot)) this.io.close(slot);
    if (st === S_OPEN) {
      this.open--;
      if (this.hold) this.lost++;
    } else if (st === S_CONNECTING) this.firstOutcomeFailed(slot);
    this.st[slot] = S_IDLE;
    this.retire(slot, now);
  }

  /** Forget the requests in flight on slot: they will not be answered (nor resent: a rate schedule moves on). */
  private drop(slot: number): void {
    this.refill[slot] = 0;
    this.totalInflight -= this.inflight[slot]!;
    this.inflight[slot] = 0;
    this.head[slot] = 0;
  }

  private count(kind: number, errno: number, why: string, times = 1): void {
    this.errors[kind]! += times;
    if (errno >= 0) {
      const name = errnoLabel(errno);
      this.byErrno.set(name, (this.byErrno.get(name) ?? 0) + times);
    }
    if (this.samples.length < MAX_SAMPLES && !this.samples.includes(why)) this.samples.push(why);
  }

  private scanTimeouts(now: number): void {
    const d = this.depth, to = this.o.timeoutMs, cto = this.o.connectTimeoutMs;
    for (let s = 0; s < this.n; s++) {
      const st = this.st[s]!;
      if (st === S_OPEN) {
        if (this.inflight[s]! > 0 && now - this.sentT[s * d + this.head[s]!]! > to) {
          this.fail(s, E_TIMEOUT, `no reply within ${to} ms`, -1, now);
        }
      } else if (st === S_CONNECTING && now - this.connT[s]! > cto) {
        this.fail(s, E_TIMEOUT, `connect took over ${cto} ms`, -1, now);
      }
    }
  }

  // ------------------------------------------------------------------------------------- results

  private snapshot(now: number): ProgressSnapshot {
    const phase = this.phase === P_CONNECT ? 'connect' : this.phase === P_READY ? 'ready' : this.phase === P_RUN ? 'run' : 'done';
    let errors = 0;
    for (let i = 0; i < this.errors.length; i++) errors += this.errors[i]!;
    return {
      index: this.share.index,
      phase,
      elapsedMs: this.phase >= P_RUN ? now - this.t0 : 0,
      completed: this.completed,
      sent: this.sent,
      errors,
      open: this.open,
      bytesSent: this.bytesSent,
      bytesReceived: this.bytesRecv,
    };
  }

  private progress(now: number): void {
    if (!this.hooks.onProgress) return;
    const p = this.snapshot(now);
    if (this.hooks.hdrIntervals && this.phase === P_RUN) {
      const end = Date.now();
      p.interval = { startMs: this.intervalStart, endMs: end, histogram: this.hist.takeInterval()! };
      this.intervalStart = end;
    }
    this.hooks.onProgress(p);
  }

  private finish(end: number): boolean {
    if (this.phase === P_DONE) return true;
    const wasRunning = this.phase === P_RUN;
    const elapsed = wasRunning ? Math.max(0, Math.min(end, this.tEnd) - this.t0) : 0;
    if (this.connectEnd === 0) this.connectEnd = end;
    if (wasRunning && this.hooks.hdrIntervals) this.progress(end);
    this.phase = P_DONE;
    const openAtEnd = this.open;
    this.io.destroy();
    const cpu = process.cpuUsage(this.cpu0);
    const byErrno: Record<string, number> = {};
    for (const [k, v] of this.byErrno) byErrno[k] = v;
    const result: ProcResult = {
      index: this.share.index,
      pid: process.pid,
      backend: this.io.name,
      startedAt: this.startedAt || Date.now(),
      connectMs: this.connectEnd - this.connectStart,
      elapsedMs: elapsed,
      interrupted: this.interrupted,
      deadlineHit: this.deadlineHit,
      connections: {
        target: this.n,
        established: this.everCount,
        open: openAtEnd,
        peak: this.peak,
        failed: this.n - this.everCount,
        reconnects: this.reconnects,
      },
      requests: { sent: this.sent, completed: this.completed },
      bytes: { sent: this.bytesSent, received: this.bytesRecv },
      errors: errorsFromArray(this.errors),
      byErrno,
      samples: this.samples,
      latency: encodeHistogram(this.hist.flush()),
      uncorrected: this.histUnc !== null ? encodeHistogram(this.histUnc.flush()) : null,
      connect: encodeHistogram(this.histConnect.flush()),
      lost: this.lost,
      syscalls: syscallCounts(),
      io: this.io.stats?.() ?? {},
      cpu: { userUs: cpu.user, systemUs: cpu.system },
    };
    this.resolveDone(result);
    return true;
  }
}

function endpoint(host: string, port: number): Endpoint {
  const addr = encodeSockaddr(host, port);
  const fam = decodeSockaddr(addr).family === 4 ? AF_INET : AF_INET6;
  return { addr, family: fam };
}
