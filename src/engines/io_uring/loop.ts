/**
 * The io_uring completion loop: the async model. Instead of asking which sockets are ready and
 * then calling read/write (the reactor), it hands the kernel the operations themselves and gets
 * back completions that already carry the result:
 *
 *  - one multishot ACCEPT on the listening socket yields a CQE per new connection (5.19);
 *  - one multishot RECV per connection (6.0; else re-armed after each completion) yields a CQE per
 *    chunk of data, in a buffer the kernel took from a provided-buffer ring at that moment, so an
 *    idle connection holds no buffer; the buffer goes back to the ring as soon as the data is fed;
 *  - each response goes out with a SEND SQE whose bytes sit in a pooled slot until its CQE (a short
 *    send is resubmitted for the rest);
 *  - a file body (apps/static.ts) goes file -> pipe -> socket as two SPLICE SQEs linked in order, so
 *    its bytes never enter user space (`--sendfile off`: pread into a send slot, then SEND);
 *  - connections close with ASYNC_CANCEL (by fd) hard-linked to CLOSE, both as SQEs.
 * All SQEs prepared during a turn go to the kernel in the same io_uring_enter that waits for the
 * next completions: one syscall per loop turn, however many connections it served. Steady-state
 * HTTP keep-alive needs no other syscall at all (TCP_NODELAY is inherited from the listener).
 *
 * Scheduling is the reactor's (reactor/reactor.ts): the loop owns the thread for up to YIELD_MS,
 * then yields one setImmediate tick to Node's loop; while an async handler is pending it waits at
 * most 1 ms and yields every turn.
 *
 * Ordering and backpressure: requests of one connection are fed strictly in order, and never while
 * that connection has a send in flight or an async reply pending (as the reactor stops reading
 * while output is backlogged). Data that arrives meanwhile (the multishot recv keeps delivering) is
 * held, unparsed, and fed when the send completes; past HOLD_MAX the recv is cancelled, so a client
 * that pipelines without reading holds at most HOLD_MAX of input and one reply in server memory.
 *
 * Limits (EngineOptions.limits, as the reactor enforces them): a connection cap answered with the
 * protocol's refusal (a SEND hard-linked to a CLOSE), a header timeout answered with 408, idle and
 * send timeouts, checked by a sweep every SWEEP_MS; and the lingering close after a last response
 * (IORING_OP_SHUTDOWN of the write side, then reads discarded until FIN or lingerMs), so the
 * response is not destroyed by an RST when the peer still had bytes in flight.
 *
 * user_data layout (64 bits, written and read as two u32 halves, so no BigInt on the hot path):
 *
 * | bits  | field | meaning                                                                      |
 * |-------|-------|------------------------------------------------------------------------------|
 * | 0-31  | index | ACCEPT: the listening fd. RECV, CLOSE, CANCEL: the connection fd.            |
 * |       |       | SEND: the send slot (sendpool.ts), which records the fd and generation.      |
 * | 32-39 | kind  | K_ACCEPT 1, K_RECV 2, K_SEND 3, K_CLOSE 4, K_CANCEL 5, K_REFUSE 6, K_SHUTDOWN 7, |
 * |       |       | K_SPLICE_IN 8 (file -> pipe), K_SPLICE_OUT 9 (pipe -> socket)                 |
 * | 40-63 | gen   | the connection row's generation when the SQE was prepared (24 bits, wraps)   |
 *
 * A row's generation moves on when the connection closes, so a completion that arrives after its
 * connection is gone (a cancelled recv, a send cut short by a reset) is recognised as stale; its
 * buffer or send slot is still returned.
 */
import { performance } from 'node:perf_hooks';
import { FEED_OUT_BOUND, FeedResult, type Deferred, type Service } from '../../apps/service.js';
import { SPLICE_F_MOVE, SPLICE_F_NONBLOCK, type FileSend } from '../../sys/file.js';
import { OutBuf } from '../../protocols/outbuf.js';
import {
  EAGAIN, ECANCELED, ECONNABORTED, EMFILE, ENFILE, ENOBUFS, MSG_NOSIGNAL, O_CLOEXEC, O_RDONLY, SHUT_WR, SOCK_CLOEXEC, eagain,
  errnoName, ffi, getrlimit, syscallCounts,
} from '../../sys/index.js';
import {
  BufRing, bufferAddress, IOSQE_IO_LINK, IORING_ASYNC_CANCEL_ALL, IORING_ASYNC_CANCEL_ANY, IORING_ASYNC_CANCEL_FD, IORING_CQE_BUFFER_SHIFT,
  IORING_CQE_F_BUFFER, IORING_CQE_F_MORE, IORING_SETUP_SQPOLL, IOSQE_IO_HARDLINK, Ring,
} from '../../sys/io_uring.js';
import type { ConnectionLimits, EngineStats } from '../types.js';
import { overCap, releaseCap } from '../conncap.js';
import { LARGE, SendPool } from './sendpool.js';

// user_data kinds (see the table above)
const K_ACCEPT = 1, K_RECV = 2, K_SEND = 3, K_CLOSE = 4, K_CANCEL = 5, K_REFUSE = 6, K_SHUTDOWN = 7, K_SPLICE_IN = 8, K_SPLICE_OUT = 9;
/** fcntl(2): a connection's splice pipe is asked for 1 MB (the unprivileged maximum, fs.pipe-max-size). */
const F_SETPIPE_SZ = 1031, F_GETPIPE_SZ = 1032, PIPE_WANT = 1 << 20;
const GEN_MASK = 0xffffff;

// connection flags
const F_OPEN = 1;
/** A recv (multishot or single) is armed. */
const F_RECV = 2;
/** A send (or a file body: `files`) is in flight: feeding waits for its completion. */
const F_SEND = 4;
/** Close once the send in flight (and any pending request) is done. */
const F_CLOSING = 8;
/** A request is being handled asynchronously. */
const F_PENDING = 16;
/** The peer sent FIN. */
const F_EOF = 32;
/** A cancel of the recv has been queued. */
const F_CANCEL = 64;
/** Held input has bytes that were never fed (arrived while busy, or followed an async request). */
const F_FRESH = 128;
/** Lingering close: our write side is shut; reads are discarded until the peer's FIN or lingerMs. */
const F_LINGER = 256;

/**
 * Ring sizes: an SQ that rarely fills in one turn, a CQ that rarely overflows (256 KB each).
 * `IOLAB_IO_URING_RING=<sq>x<cq>` overrides them (tests use tiny rings to force both).
 */
const [SQ_ENTRIES, CQ_ENTRIES] = pair(process.env.IOLAB_IO_URING_RING, 'IOLAB_IO_URING_RING', [4096, 16384], 1, 32768);
/**
 * Provided receive buffers: 512 x 16 KB (8 MB of address space; pages are touched only as used).
 * `IOLAB_IO_URING_BUFS=<count>x<size>` overrides it (tests use a tiny ring to force -ENOBUFS).
 */
const [RECV_BUFS, RECV_BUF_SIZE] = pair(process.env.IOLAB_IO_URING_BUFS, 'IOLAB_IO_URING_BUFS', [512, 16 * 1024], 64, 1 << 20);

/** Parse `<a>x<b>`: a a power of two <= 32768, b in [bMin, bMax]. */
function pair(v: string | undefined, name: string, dflt: [number, number], bMin: number, bMax: number): [number, number] {
  const m = v ? /^(\d+)x(\d+)$/.exec(v) : null;
  if (!m) return dflt;
  const a = Number(m[1]), b = Number(m[2]);
  if (a < 1 || a > 32768 || a & (a - 1) || b < bMin || b > bMax) {
    throw new Error(`${name}=${v}: want <a>x<b>, a a power of two <= 32768, b in ${bMin}..${bMax}`);
  }
  return [a, b];
}
const BGID = 1;
/** Input held unparsed while busy, before the recv is cancelled (backpressure). */
const HOLD_MAX = 256 * 1024;
const YIELD_MS = 50;
/** How often timeouts are checked (as the reactor). */
const SWEEP_MS = 250;
/** A lingering close ends after lingerMs without input or LINGER_TOTAL lingerMs in all (reactor.ts). */
const LINGER_TOTAL = 15;
/** Back-off before re-arming accept after an error that shedding cannot fix. */
const ACCEPT_RETRY_MS = 100;
/** How long shutdown waits for the kernel to finish with our buffers before unmapping them. */
const SHUTDOWN_DRAIN_MS = 500;

export interface UringLoopOptions {
  name: string;
  listenFd: number;
  app: string;
  quiet: boolean;
  /** io_uring_setup flags the probe found usable (COOP_TASKRUN, DEFER_TASKRUN ...). */
  setupFlags: number;
  multishotRecv: boolean;
  /** Try IORING_SETUP_SQPOLL (a kernel thread polls the SQ; submission needs no syscall). */
  sqpoll: boolean;
  limits: ConnectionLimits;
}

export class UringLoop {
  readonly service: Service;
  readonly ring: Ring;
  readonly engineName: string;
  private readonly bufRing: BufRing;
  private readonly pool = new SendPool();
  private readonly listenFd: number;
  private readonly name: string;
  private readonly app: string;
  private readonly quiet: boolean;
  private readonly multishot: boolean;

  // ---- connection table, indexed by fd ----
  private readonly flags: Uint16Array;
  private readonly gen: Uint32Array;
  /** Held input (partial request, or data that arrived while busy) and how much of it is valid. */
  private readonly inbuf: (Buffer | null)[];
  private readonly inLen: Int32Array;
  /** Replies queued behind a send in flight (only an async reply can meet one). */
  private readonly outq: (Buffer | null)[];
  /** A file body being sent after the head (FeedResult.file), its splice pipe (opened on first use,
   *  kept for the connection), the bytes sitting in that pipe, and the file SQEs in flight. */
  private readonly files: (FileSend | null)[];
  private readonly pipeR: Int32Array;
  private readonly pipeW: Int32Array;
  private readonly pipeSize: Int32Array;
  private readonly pipeHeld: Int32Array;
  private readonly fileOps: Uint8Array;
  /** fds of a closed connection that splices in flight still name (see closeConn), by fd + gen. */
  private readonly orphans = new Map<number, { fds: number[]; ops: number }>();
  /** When the held partial request began (header timeout), when the connection last received or
   *  began lingering (idle, linger), and when its send last moved (send timeout); performance.now() ms. */
  private readonly partialSince: Float64Array;
  private readonly activeAt: Float64Array;
  private readonly wroteAt: Float64Array;
  /** Highest fd ever opened: the sweep scans rows up to it. */
  private hiFd = 0;
  private lastSweep = 0;
  private now = 0;
  private readonly limits: ConnectionLimits;
  /** The protocol's refusal for connections over the cap, encoded once (a send needs stable bytes). */
  private readonly refusal: Buffer;
  private readonly refusalAddr: number;

  private readonly out = new OutBuf(64 * 1024);
  private readonly fr = new FeedResult();
  private reserveFd: number;
  private pendingAsync = 0;
  /** SQEs whose final CQE has not arrived (multishot ones count once). */
  private inflight = 0;
  private acceptArmed = false;
  private acceptRetryAt = 0;
  private listenClosed = false;

  private running = false;
  private stopping = false;
  private closed = false;
  private stopDeadline = 0;
  private resolveDone!: () => void;
  private rejectDone!: (e: unknown) => void;
  readonly done: Promise<void>;

  // ---- stats ----
  current = 0;
  peak = 0;
  total = 0;
  refused = 0;
  requests = 0;
  bytesIn = 0;
  bytesOut = 0;
  wakeups = 0;
  enobufs = 0;
  shortSends = 0;
  cqOverflows = 0;
  recvCancels = 0;
  timedOut = 0;
  private warned = new Set<string>();

  constructor(service: Service, opts: UringLoopOptions) {
    this.service = service;
    this.listenFd = opts.listenFd;
    this.name = opts.name;
    this.app = opts.app;
    this.quiet = opts.quiet;
    this.multishot = opts.multishotRecv;
    this.limits = opts.limits;
    this.fr.maxOut = FEED_OUT_BOUND; // pipelined requests for large answers: the rest is F_FRESH, fed after the send
    this.fr.acceptsFile = true; // file bodies: SPLICE through a pipe (or pread + SEND), see fileStep()
    const o = new OutBuf(256);
    service.refuse(o);
    this.refusal = Buffer.allocUnsafeSlow(o.len);
    o.buf.copy(this.refusal, 0, 0, o.len);
    this.refusalAddr = o.len > 0 ? bufferAddress(this.refusal) : 0;
    this.ring = UringLoop.makeRing(opts, (msg) => this.warnOnce('sqpoll', msg));
    this.engineName = this.ring.sqpoll ? 'io_uring (sqpoll)' : 'io_uring';
    try {
      this.bufRing = new BufRing(this.ring, BGID, RECV_BUFS, RECV_BUF_SIZE);
    } catch (e) {
      this.ring.close();
      throw e;
    }
    const cap = Math.min(getrlimit().hard, 1 << 21) + 16;
    this.flags = new Uint16Array(cap);
    this.gen = new Uint32Array(cap);
    this.inbuf = new Array<Buffer | null>(cap).fill(null);
    this.inLen = new Int32Array(cap);
    this.outq = new Array<Buffer | null>(cap).fill(null);
    this.files = new Array<FileSend | null>(cap).fill(null);
    this.pipeR = new Int32Array(cap).fill(-1);
    this.pipeW = new Int32Array(cap).fill(-1);
    this.pipeSize = new Int32Array(cap);
    this.pipeHeld = new Int32Array(cap);
    this.fileOps = new Uint8Array(cap);
    this.partialSince = new Float64Array(cap);
    this.activeAt = new Float64Array(cap);
    this.wroteAt = new Float64Array(cap);
    // libuv's EMFILE trick, as in the reactor: a spare fd to free when accept runs out of fds.
    this.reserveFd = this.openReserve();
    this.done = new Promise((res, rej) => {
      this.resolveDone = res;
      this.rejectDone = rej;
    });
  }

  private static makeRing(o: UringLoopOptions, warn: (m: string) => void): Ring {
    if (o.sqpoll) {
      try {
        // DEFER_TASKRUN and SINGLE_ISSUER do not combine with SQPOLL (the SQ thread issues).
        return new Ring({ entries: SQ_ENTRIES, cqEntries: CQ_ENTRIES, flags: IORING_SETUP_SQPOLL, sqThreadIdleMs: 50 });
      } catch (e) {
        warn(`IORING_SETUP_SQPOLL refused (${e instanceof Error ? e.message : String(e)}); running without it`);
      }
    }
    return new Ring({ entries: SQ_ENTRIES, cqEntries: CQ_ENTRIES, flags: o.setupFlags });
  }

  private openReserve(): number {
    try {
      return ffi.open('/dev/null', O_RDONLY | O_CLOEXEC, 0);
    } catch {
      return -1;
    }
  }

  start(): void {
    this.running = true;
    this.armAccept();
    setImmediate(this.turn);
  }

  /** Stop accepting; close idle connections; let busy ones finish until `drainMs`, then force-close. */
  stop(drainMs: number): void {
    if (this.stopping || this.closed) return;
    this.stopping = true;
    this.stopDeadline = performance.now() + drainMs;
    this.service.draining = true;
    this.closeListener();
    // Idle as far as the app knows, but the kernel may still hold our last answer (a completed send is
    // only in the socket buffer) and the peer's next bytes: a plain close would RST and drop the answer.
    for (let fd = 0; fd < this.flags.length; fd++) {
      const fl = this.flags[fd]!;
      if (fl & F_OPEN && !(fl & (F_SEND | F_PENDING | F_LINGER)) && this.inLen[fd] === 0) this.finish(fd);
    }
  }

  // ------------------------------------------------------------------------------------------
  // The loop
  // ------------------------------------------------------------------------------------------

  private readonly turn = (): void => {
    if (!this.running) return;
    try {
      const t0 = performance.now();
      for (;;) {
        const now = performance.now();
        if (this.stopping && (this.current === 0 || now >= this.stopDeadline)) {
          this.shutdownNow();
          return;
        }
        const left = YIELD_MS - (now - t0);
        if (left <= 0) break;
        if (this.acceptRetryAt !== 0 && now >= this.acceptRetryAt) {
          this.acceptRetryAt = 0;
          if (!this.acceptArmed && !this.stopping) this.armAccept();
        }
        const timeout = this.pendingAsync > 0 ? 1 : this.stopping ? Math.min(10, Math.ceil(left)) : Math.min(SWEEP_MS, Math.ceil(left));
        this.bufRing.publish();
        // The one syscall of the turn: submit everything prepared since the last one, then wait.
        this.ring.submitAndWait(1, timeout);
        this.wakeups++;
        this.now = performance.now();
        this.service.tick(this.now); // the feeds of this turn time themselves from this reading
        this.reap();
        if (this.now - this.lastSweep >= SWEEP_MS) this.sweep();
        if (this.pendingAsync > 0) break;
      }
    } catch (e) {
      this.running = false;
      try {
        this.shutdownNow();
      } catch {
        // already failing; report the first error
      }
      this.rejectDone(e);
      return;
    } finally {
      // Feeds outside a turn (an async reply settling) read the clock themselves.
      this.service.tick(NaN);
    }
    setImmediate(this.turn);
  };

  private reap(): void {
    const ring = this.ring;
    ring.reap(this.complete);
    if (ring.cqOverflowFlagged()) {
      // Completions overflowed into the kernel's list (IORING_FEAT_NODROP keeps them); the next
      // io_uring_enter(GETEVENTS) flushes them back. Multishot requests that hit it end, and are re-armed.
      this.cqOverflows++;
      this.warnOnce('cqoverflow', `completion queue overflowed (${ring.cqEntries} entries); completions were parked in the kernel`);
    }
  }

  private readonly complete = (lo: number, hi: number, res: number, cflags: number): void => {
    if (!(cflags & IORING_CQE_F_MORE)) this.inflight--;
    switch (hi & 0xff) {
      case K_RECV:
        this.onRecv(lo, hi >>> 8, res, cflags);
        return;
      case K_SEND:
        this.onSend(lo, res);
        return;
      case K_ACCEPT:
        this.onAccept(res, cflags);
        return;
      case K_SPLICE_IN:
      case K_SPLICE_OUT:
        this.onSplice(lo, hi >>> 8, hi & 0xff, res);
        return;
      default:
        // K_CLOSE, K_CANCEL: nothing to do. A cancel that found nothing (0 or -ENOENT) is normal.
        return;
    }
  };

  /** Set user_data and count the SQE as in flight until its final CQE. */
  private track(i: number, lo: number, kind: number, gen: number): void {
    this.ring.setUserData(i, lo, (kind | (gen << 8)) >>> 0);
    this.inflight++;
  }

  // ------------------------------------------------------------------------------------------
  // Accept
  // ------------------------------------------------------------------------------------------

  private armAccept(): void {
    // SOCK_CLOEXEC only: io_uring needs no O_NONBLOCK to avoid blocking the loop.
    const i = this.ring.prepMultishotAccept(this.listenFd, SOCK_CLOEXEC);
    this.track(i, this.listenFd, K_ACCEPT, 0);
    this.acceptArmed = true;
  }

  private onAccept(res: number, cflags: number): void {
    if (!(cflags & IORING_CQE_F_MORE)) this.acceptArmed = false;
    if (res >= 0) {
      if (this.stopping || this.closed) this.closeRaw(res);
      else this.onConnection(res);
    } else {
      const e = -res;
      if (e === EMFILE || e === ENFILE) {
        // Multishot accept ends on an error. The kernel reserves the new fd before it looks for a
        // pending connection (io_uring/net.c io_accept), so at the fd limit a re-armed accept fails
        // at once even with an empty backlog (epoll never sees this: readiness needs a connection).
        // Shed one connection with the spare fd; re-arm now only if that found one, else once a
        // connection closes (freeing an fd) or after ACCEPT_RETRY_MS, so the loop cannot spin.
        if (!this.shedWithReserve(e)) this.acceptRetryAt = performance.now() + ACCEPT_RETRY_MS;
      } else if (e !== ECANCELED && e !== ECONNABORTED) {
        this.warnOnce(`accept:${e}`, `accept failed: ${errnoName(e)}`);
        this.acceptRetryAt = performance.now() + ACCEPT_RETRY_MS;
      }
    }
    if (!this.acceptArmed && !this.stopping && !this.closed && this.acceptRetryAt === 0) this.armAccept();
  }

  private onConnection(fd: number): void {
    if (fd >= this.flags.length) {
      this.refused++;
      this.warnOnce('fdlimit', `fd ${fd} is beyond the connection table (${this.flags.length}): connection closed`);
      this.closeRaw(fd);
      return;
    }
    if (overCap(this.limits, this.current)) {
      this.refuse(fd);
      return;
    }
    this.flags[fd] = F_OPEN;
    this.inLen[fd] = 0;
    this.inbuf[fd] = null;
    this.outq[fd] = null;
    this.partialSince[fd] = 0;
    this.activeAt[fd] = this.now || performance.now();
    if (fd > this.hiFd) this.hiFd = fd;
    this.current++;
    this.total++;
    if (this.current > this.peak) this.peak = this.current;
    this.armRecv(fd);
  }

  /**
   * Over the cap: the protocol's refusal (HTTP 503, RESP `-ERR max number of clients reached`), then
   * close. The SEND is hard-linked to the CLOSE, so the close runs after it whatever it returns.
   */
  private refuse(fd: number): void {
    this.refused++;
    this.warnOnce('maxconn', `connection cap of ${this.limits.maxConnections} reached: refusing new connections`);
    if (this.refusal.length > 0) {
      const i = this.ring.prepSend(fd, this.refusalAddr, this.refusal.length, MSG_NOSIGNAL);
      this.ring.setFlags(i, IOSQE_IO_HARDLINK);
      this.track(i, fd, K_REFUSE, 0);
    }
    this.closeRaw(fd);
  }

  /** Close an fd that has no row (a connection we refuse) with a CLOSE SQE. */
  private closeRaw(fd: number): void {
    this.track(this.ring.prepClose(fd), fd, K_CLOSE, 0);
  }

  /** libuv's EMFILE trick: free the spare fd, accept and close one pending connection, re-take the spare. */
  private shedWithReserve(e: number): boolean {
    this.warnOnce('emfile', `accept failed: ${errnoName(e)}: out of file descriptors; shedding new connections (raise ulimit -n)`);
    if (this.reserveFd < 0) return false;
    ffi.close(this.reserveFd);
    const fd = ffi.accept4(this.listenFd, null, null, SOCK_CLOEXEC);
    if (fd >= 0) {
      ffi.close(fd);
      this.refused++;
    }
    this.reserveFd = this.openReserve();
    return fd >= 0;
  }

  private closeListener(): void {
    if (this.listenClosed) return;
    this.listenClosed = true;
    // The multishot accept holds its own reference to the listening socket: cancel it first, or the
    // socket would go on accepting after close.
    if (this.acceptArmed) {
      const c = this.ring.prepCancelUserData(this.listenFd, K_ACCEPT);
      this.ring.setFlags(c, IOSQE_IO_HARDLINK);
      this.track(c, this.listenFd, K_CANCEL, 0);
    }
    this.track(this.ring.prepClose(this.listenFd), this.listenFd, K_CLOSE, 0);
  }

  // ------------------------------------------------------------------------------------------
  // Receive
  // ------------------------------------------------------------------------------------------

  private armRecv(fd: number): void {
    const i = this.ring.prepRecvSelect(fd, BGID, this.multishot);
    this.track(i, fd, K_RECV, this.gen[fd]!);
    this.flags[fd] = (this.flags[fd]! | F_RECV) & ~F_CANCEL;
  }

  private cancelRecv(fd: number): void {
    const fl = this.flags[fd]!;
    if (!(fl & F_RECV) || fl & F_CANCEL) return;
    const g = this.gen[fd]!;
    this.track(this.ring.prepCancelUserData(fd, (K_RECV | (g << 8)) >>> 0), fd, K_CANCEL, g);
    this.flags[fd] = fl | F_CANCEL;
    this.recvCancels++;
  }

  private onRecv(fd: number, g: number, res: number, cflags: number): void {
    const bid = cflags & IORING_CQE_F_BUFFER ? cflags >>> IORING_CQE_BUFFER_SHIFT : -1;
    if (this.gen[fd] !== g || !(this.flags[fd]! & F_OPEN)) {
      // Stale: the connection closed after this recv was armed. The buffer still goes back.
      if (bid >= 0) this.bufRing.add(bid);
      return;
    }
    if (!(cflags & IORING_CQE_F_MORE)) this.flags[fd]! &= ~(F_RECV | F_CANCEL);
    if (this.flags[fd]! & F_LINGER) {
      // Lingering: discard what the peer still sends; its FIN (or any error) ends the connection.
      if (bid >= 0) this.bufRing.add(bid);
      if (res > 0) {
        this.bytesIn += res;
        this.activeAt[fd] = this.now; // the peer is still sending: it is still reading what precedes our FIN
      }
      if (res === 0 || (res < 0 && res !== -ENOBUFS && res !== -ECANCELED)) this.closeConn(fd);
      else if (!(this.flags[fd]! & F_RECV)) this.armRecv(fd);
      return;
    }
    if (res > 0) {
      this.bytesIn += res;
      this.activeAt[fd] = this.now;
      this.onData(fd, this.bufRing.bufs[bid]!, res);
      this.bufRing.add(bid); // fed (and any remainder copied): the kernel may have it back
    } else {
      if (bid >= 0) this.bufRing.add(bid);
      if (res === 0) {
        this.flags[fd]! |= F_EOF;
      } else if (res === -ENOBUFS) {
        // The ring ran dry before we reaped: the buffers are back by the next enter; settle re-arms.
        this.enobufs++;
      } else if (res !== -ECANCELED) {
        this.closeConn(fd); // ECONNRESET and friends: only this connection ends
        return;
      }
    }
    this.settle(fd);
  }

  private onData(fd: number, buf: Buffer, n: number): void {
    const fl = this.flags[fd]!;
    if (fl & (F_SEND | F_PENDING)) {
      // Busy: keep the bytes, in order, and parse them when the send or the async reply is done.
      this.append(fd, buf, 0, n);
      this.flags[fd] = fl | F_FRESH;
      if (this.inLen[fd]! > HOLD_MAX) this.cancelRecv(fd);
      return;
    }
    if (this.inLen[fd]! > 0) {
      this.append(fd, buf, 0, n);
      this.feed(fd, this.inbuf[fd]!, 0, this.inLen[fd]!);
      return;
    }
    this.feed(fd, buf, 0, n); // straight from the provided buffer: no copy before the parser
  }

  /** Run the service over buf[start,end) and act on what it says. */
  private feed(fd: number, buf: Buffer, start: number, end: number): void {
    const r = this.fr;
    r.reset();
    this.service.feed(buf, start, end, this.out, r);
    this.requests += r.requests;
    const rest = end - r.next;
    if (rest > 0) {
      // A request is only partly here. Its header timeout runs from its first byte, not the latest
      // (a slowloris client sends a byte every few seconds to look alive). With `more` (feed() stopped
      // at its output bound) the rest is not slow: it waits for our send.
      if (r.more) this.partialSince[fd] = 0;
      else if (r.next !== start || this.partialSince[fd] === 0) this.partialSince[fd] = this.now || performance.now();
      this.keep(fd, buf, r.next, end);
    } else {
      this.partialSince[fd] = 0;
      this.dropHeld(fd);
    }
    // Held requests left by the output bound are fed again (settle) once the send completes.
    let fl = (this.flags[fd]! & ~F_FRESH) | (r.more ? F_FRESH : 0);
    if (r.close) fl |= F_CLOSING;
    this.flags[fd] = fl;
    if (this.out.len > 0) {
      this.send(fd, this.out.buf, this.out.len);
      this.out.reset();
    }
    if (r.file !== null) {
      // After the head: onSend starts the file once the head's SEND completes (F_SEND stays set).
      this.files[fd] = r.file;
      if (!(this.flags[fd]! & F_SEND)) {
        this.flags[fd]! |= F_SEND;
        this.fileStep(fd);
      }
    }
    if (r.pending !== null) {
      // The bytes after the async request are unparsed: feed them once it is answered.
      this.flags[fd]! |= F_PENDING | (rest > 0 ? F_FRESH : 0);
      this.pendingAsync++;
      const g = this.gen[fd]!;
      r.pending.then(
        (d) => this.onDeferred(fd, g, d),
        () => this.onDeferred(fd, g, null),
      );
    }
  }

  private onDeferred(fd: number, g: number, d: Deferred | null): void {
    this.pendingAsync--;
    if (this.closed || this.gen[fd] !== g || !(this.flags[fd]! & F_OPEN)) return; // closed meanwhile
    this.flags[fd]! &= ~F_PENDING;
    if (d === null) {
      this.closeConn(fd);
      return;
    }
    if (d.close) this.flags[fd]! |= F_CLOSING;
    if (d.bytes.length > 0) this.send(fd, d.bytes, d.bytes.length);
    this.settle(fd);
  }

  /**
   * Decide what a connection that is not waiting for anything does next: close, feed held input,
   * or make sure a recv is armed. Called after every completion that touched the connection.
   */
  private settle(fd: number): void {
    for (;;) {
      const fl = this.flags[fd]!;
      if (!(fl & F_OPEN) || fl & (F_SEND | F_PENDING | F_LINGER)) return;
      if (fl & F_CLOSING) {
        this.finish(fd);
        return;
      }
      if (fl & F_FRESH) {
        if (this.inLen[fd]! > 0) this.feed(fd, this.inbuf[fd]!, 0, this.inLen[fd]!);
        else this.flags[fd] = fl & ~F_FRESH;
        continue;
      }
      // After FIN a partial request can never complete; while stopping, an idle connection closes.
      if (fl & F_EOF || (this.stopping && this.inLen[fd] === 0)) {
        this.finish(fd);
        return;
      }
      if (!(fl & F_RECV)) this.armRecv(fd);
      return;
    }
  }

  // ---- held input: one growable Buffer per connection, dropped when empty ----

  private append(fd: number, src: Buffer, from: number, to: number): void {
    const n = to - from;
    const len = this.inLen[fd]!;
    let b = this.inbuf[fd];
    if (b === null || b.length < len + n) {
      const next = Buffer.allocUnsafe(Math.max(len + n, b === null ? 2048 : b.length * 2));
      if (b !== null && len > 0) b.copy(next, 0, 0, len);
      this.inbuf[fd] = b = next;
    }
    src.copy(b, len, from, to);
    this.inLen[fd] = len + n;
  }

  /** Keep buf[from,to) as the connection's held input (a partial request). */
  private keep(fd: number, buf: Buffer, from: number, to: number): void {
    if (buf === this.inbuf[fd]) {
      if (from > 0) buf.copyWithin(0, from, to);
      this.inLen[fd] = to - from;
      return;
    }
    this.inLen[fd] = 0;
    this.append(fd, buf, from, to);
  }

  private dropHeld(fd: number): void {
    this.inbuf[fd] = null;
    this.inLen[fd] = 0;
  }

  // ------------------------------------------------------------------------------------------
  // Send
  // ------------------------------------------------------------------------------------------

  /** Queue data[0,len) for the connection: a SEND SQE now, or behind the send in flight. */
  private send(fd: number, data: Buffer, len: number): void {
    if (this.flags[fd]! & F_SEND) {
      const q = this.outq[fd];
      const tail = data.subarray(0, len);
      this.outq[fd] = q === null ? Buffer.from(tail) : Buffer.concat([q, tail]);
      return;
    }
    const s = this.pool.take(data, len, fd, this.gen[fd]!);
    this.flags[fd]! |= F_SEND;
    this.wroteAt[fd] = this.now || performance.now();
    this.submitSend(s);
  }

  private submitSend(s: number): void {
    const p = this.pool;
    const off = p.off[s]!;
    // MSG_NOSIGNAL: a peer that reset gets EPIPE in the CQE, not SIGPIPE.
    const i = this.ring.prepSend(p.fd[s]!, p.addr[s]! + off, p.end[s]! - off, MSG_NOSIGNAL);
    this.track(i, s, K_SEND, p.gen[s]!);
  }

  private onSend(s: number, res: number): void {
    const p = this.pool;
    const fd = p.fd[s]!;
    if (this.gen[fd] !== p.gen[s] || !(this.flags[fd]! & F_OPEN)) {
      p.release(s); // the connection is gone; the kernel is done with the bytes now
      return;
    }
    if (res <= 0) {
      p.release(s);
      this.flags[fd]! &= ~F_SEND;
      this.closeConn(fd); // EPIPE, ECONNRESET, ECANCELED: only this connection ends
      return;
    }
    this.bytesOut += res;
    this.wroteAt[fd] = this.now;
    const off = p.off[s]! + res;
    if (off < p.end[s]!) {
      // Short send (the socket buffer filled): send the rest, keeping the slot and its bytes.
      p.off[s] = off;
      this.shortSends++;
      this.submitSend(s);
      return;
    }
    p.release(s);
    const q = this.outq[fd];
    if (q !== null) {
      this.flags[fd]! &= ~F_SEND;
      this.outq[fd] = null;
      this.send(fd, q, q.length);
      return;
    }
    if (this.files[fd] !== null) return this.fileStep(fd); // the file body follows the head
    this.flags[fd]! &= ~F_SEND;
    this.settle(fd);
  }

  // ------------------------------------------------------------------------------------------
  // File bodies
  // ------------------------------------------------------------------------------------------

  /**
   * The next piece of the file body, or its end. Zero-copy: SPLICE file -> pipe, IOSQE_IO_LINK, SPLICE
   * pipe -> socket, both SPLICE_F_NONBLOCK on the pipe side so an empty or full pipe is -EAGAIN, never a
   * worker parked forever. A short first splice breaks the link (io_uring/splice.c: req_set_fail when
   * ret != len), the second comes back -ECANCELED, and what sits in the pipe goes out next step.
   */
  private fileStep(fd: number): void {
    const f = this.files[fd]!;
    const g = this.gen[fd]!;
    if (this.service.sendfile) {
      if (this.pipeHeld[fd]! > 0) {
        this.track(this.ring.prepSplice(this.pipeR[fd]!, -1, fd, -1, this.pipeHeld[fd]!, SPLICE_F_MOVE | SPLICE_F_NONBLOCK), fd, K_SPLICE_OUT, g);
        this.fileOps[fd] = 1;
        return;
      }
      if (f.off >= f.end) return this.endFile(fd);
      if (this.pipeR[fd]! < 0 && !this.openPipe(fd)) return this.closeConn(fd);
      const n = Math.min(this.pipeSize[fd]!, f.end - f.off);
      const i = this.ring.prepSplice(f.fd, f.off, this.pipeW[fd]!, -1, n, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      this.ring.setFlags(i, IOSQE_IO_LINK);
      this.track(i, fd, K_SPLICE_IN, g);
      this.track(this.ring.prepSplice(this.pipeR[fd]!, -1, fd, -1, n, SPLICE_F_MOVE | SPLICE_F_NONBLOCK), fd, K_SPLICE_OUT, g);
      this.fileOps[fd] = 2;
      return;
    }
    // Copying: pread into a send slot (a copy into user space), then a plain SEND (a copy back).
    if (f.off >= f.end) return this.endFile(fd);
    const n = Math.min(LARGE, f.end - f.off);
    const s = this.pool.reserve(n, fd, g);
    const got = ffi.pread(f.fd, this.pool.buf[s]!, n, f.off);
    if (got <= 0) {
      this.pool.release(s);
      return this.closeConn(fd); // the file shrank under us: the Content-Length cannot be kept
    }
    f.off += got;
    this.pool.end[s] = got;
    this.submitSend(s);
  }

  private onSplice(fd: number, g: number, kind: number, res: number): void {
    if (this.gen[fd] !== g || !(this.flags[fd]! & F_OPEN)) return this.orphanDone(fd, g);
    this.fileOps[fd]!--;
    let failed = false;
    if (kind === K_SPLICE_IN) {
      if (res > 0) {
        this.files[fd]!.off += res;
        this.pipeHeld[fd]! += res;
      } else failed = res === 0 || (res !== -EAGAIN && res !== -ECANCELED); // 0: the file shrank under us
    } else if (res > 0) {
      this.pipeHeld[fd]! -= res;
      this.bytesOut += res;
      this.wroteAt[fd] = this.now;
    } else failed = res === 0 || (res !== -EAGAIN && res !== -ECANCELED); // EPIPE, ECONNRESET ...
    if (failed) return this.closeConn(fd);
    if (this.fileOps[fd] === 0) this.fileStep(fd);
  }

  private openPipe(fd: number): boolean {
    const p = new Int32Array(2);
    if (ffi.pipe2Raw(p, O_CLOEXEC) < 0) return false;
    this.pipeR[fd] = p[0]!;
    this.pipeW[fd] = p[1]!;
    ffi.fcntl(p[1]!, F_SETPIPE_SZ, PIPE_WANT); // may be refused past fs.pipe-user-pages-soft: keep the default
    const size = ffi.fcntl(p[1]!, F_GETPIPE_SZ, 0);
    this.pipeSize[fd] = size > 0 ? size : 65536;
    return true;
  }

  private endFile(fd: number): void {
    ffi.close(this.files[fd]!.fd);
    this.files[fd] = null;
    this.flags[fd]! &= ~F_SEND;
    this.settle(fd);
  }

  /** A splice of a closed connection completed: its fds close once none is in flight. */
  private orphanDone(fd: number, g: number): void {
    const key = fd * 0x1000000 + g;
    const o = this.orphans.get(key);
    if (o === undefined || --o.ops > 0) return;
    for (const x of o.fds) ffi.close(x);
    this.orphans.delete(key);
  }

  /** Release a connection's file body and pipe: now, or (with splices in flight) when they complete. */
  private dropFile(fd: number, g: number): void {
    const fds: number[] = [];
    const f = this.files[fd];
    if (f !== null) fds.push(f.fd);
    if (this.pipeR[fd]! >= 0) fds.push(this.pipeR[fd]!, this.pipeW[fd]!);
    this.files[fd] = null;
    this.pipeR[fd] = this.pipeW[fd] = -1;
    this.pipeHeld[fd] = 0;
    const ops = this.fileOps[fd]!;
    this.fileOps[fd] = 0;
    if (fds.length === 0) return;
    // A splice already queued names these fds by number: closing them now could let a new file or
    // connection take a number a splice is about to resolve. They close when the last one completes.
    if (ops > 0) this.orphans.set(fd * 0x1000000 + g, { fds, ops });
    else for (const x of fds) ffi.close(x);
  }

  // ------------------------------------------------------------------------------------------
  // Close and shutdown
  // ------------------------------------------------------------------------------------------

  /**
   * Close after the last response. If the peer may still be sending (no FIN seen), closing with
   * unread input sends an RST, which can destroy the response in the peer's receive buffer before
   * it is read. So, as nginx's lingering close (and the reactor): shut our write side (FIN after the
   * response) with an IORING_OP_SHUTDOWN, keep the recv armed to discard input until the peer's FIN
   * or lingerMs, then close.
   */
  private finish(fd: number): void {
    const fl = this.flags[fd]!;
    if (fl & F_EOF || this.limits.lingerMs <= 0 || this.closed) return this.closeConn(fd);
    this.track(this.ring.prepShutdown(fd, SHUT_WR), fd, K_SHUTDOWN, this.gen[fd]!);
    this.flags[fd] = (fl | F_LINGER) & ~(F_CLOSING | F_FRESH);
    this.dropHeld(fd);
    this.activeAt[fd] = this.partialSince[fd] = this.now || performance.now(); // partialSince: when the linger began
    // A recv still being cancelled (HOLD_MAX) comes back -ECANCELED and is re-armed in onRecv.
    if (!(fl & F_RECV)) this.armRecv(fd);
  }

  /** Timeouts, checked every SWEEP_MS over the rows in use (the reactor's sweep, same rules). */
  private sweep(): void {
    const now = this.now;
    this.lastSweep = now;
    const { headerTimeoutMs, idleTimeoutMs, sendTimeoutMs, lingerMs } = this.limits;
    for (let fd = 0; fd <= this.hiFd; fd++) {
      const fl = this.flags[fd]!;
      if (!(fl & F_OPEN)) continue;
      if (fl & F_LINGER) {
        if (now - this.activeAt[fd]! > lingerMs || now - this.partialSince[fd]! > lingerMs * LINGER_TOTAL) this.closeConn(fd);
      } else if (fl & F_SEND) {
        // Slow reader: the send in flight has not moved for the send timeout.
        if (now - this.wroteAt[fd]! > sendTimeoutMs) this.expire(fd, false);
      } else if (fl & F_PENDING) {
        continue;
      } else if (this.inLen[fd]! > 0) {
        if (now - this.partialSince[fd]! > headerTimeoutMs) this.expire(fd, true);
      } else if (now - this.activeAt[fd]! > idleTimeoutMs) {
        this.expire(fd, false);
      }
    }
  }

  private expire(fd: number, answer: boolean): void {
    this.timedOut++;
    if (answer) {
      // Header timeout: answer (HTTP 408), then the lingering close once it is sent.
      this.dropHeld(fd);
      this.partialSince[fd] = 0;
      this.service.timeout(this.out);
      if (this.out.len > 0) {
        this.flags[fd]! |= F_CLOSING;
        this.send(fd, this.out.buf, this.out.len);
        this.out.reset();
        return;
      }
      return this.finish(fd);
    }
    this.closeConn(fd); // idle, or a peer that stopped reading: nothing to say
  }

  private closeConn(fd: number): void {
    const fl = this.flags[fd]!;
    if (!(fl & F_OPEN)) return;
    const g = this.gen[fd]!;
    if (fl & F_SEND) {
      // In-flight requests hold their own reference to the socket, so CLOSE alone would leave a
      // multishot recv armed and the FIN unsent. Cancel every request on the fd first; the hard
      // link runs the CLOSE after the cancel whatever it returns (io_uring/cancel.c: ALL returns
      // the count, possibly 0). Cancelled CQEs come back stale and return their buffer or slot.
      const c = this.ring.prepCancelFd(fd, IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL);
      this.ring.setFlags(c, IOSQE_IO_HARDLINK);
      this.track(c, fd, K_CANCEL, g);
    } else if (fl & F_RECV) {
      // Only the recv is armed (the usual close): cancel it by its user_data, one hash lookup. A cancel
      // by fd walks every armed poll request of the ring (io_uring/poll.c io_poll_file_find), which
      // made closing 15,000 connections cost seconds of system time in the load generator.
      const c = this.ring.prepCancelUserData(fd, (K_RECV | (g << 8)) >>> 0);
      this.ring.setFlags(c, IOSQE_IO_HARDLINK);
      this.track(c, fd, K_CANCEL, g);
    }
    this.track(this.ring.prepClose(fd), fd, K_CLOSE, g);
    this.dropFile(fd, g);
    this.flags[fd] = 0;
    this.gen[fd] = (g + 1) & GEN_MASK;
    this.inbuf[fd] = null;
    this.inLen[fd] = 0;
    this.outq[fd] = null;
    this.partialSince[fd] = 0;
    this.current--;
    releaseCap(this.limits);
    // Accept was parked at the fd limit: this close frees an fd (the CLOSE SQE runs before the accept).
    if (this.acceptRetryAt !== 0 && !this.acceptArmed && !this.stopping && !this.closed) {
      this.acceptRetryAt = 0;
      this.armAccept();
    }
  }

  private shutdownNow(): void {
    if (this.closed) return;
    this.closed = true;
    this.service.tick(NaN); // the drain below reaps outside the turn's clock
    for (let fd = 0; fd < this.flags.length; fd++) if (this.flags[fd]! & F_OPEN) this.closeConn(fd);
    this.closeListener();
    // Cancel whatever is left and wait (bounded) for the kernel to finish with our buffers before
    // they are unmapped: a recv completing into unmapped memory could hit whatever maps there next.
    this.track(this.ring.prepCancelFd(-1, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL), 0, K_CANCEL, 0);
    const until = performance.now() + SHUTDOWN_DRAIN_MS;
    while (this.inflight > 0 && performance.now() < until) {
      this.bufRing.publish();
      this.ring.submitAndWait(1, 10);
      this.wakeups++;
      this.reap();
    }
    const drained = this.inflight <= 0;
    if (drained) this.bufRing.close();
    else this.warnOnce('inflight', `${this.inflight} requests still in flight at shutdown; receive buffers left mapped`);
    this.ring.close(); // the kernel cancels anything left
    for (const o of this.orphans.values()) for (const x of o.fds) ffi.close(x);
    this.orphans.clear();
    if (this.reserveFd >= 0) ffi.close(this.reserveFd);
    this.reserveFd = -1;
    this.running = false;
    this.stopping = false;
    this.resolveDone();
  }

  private warnOnce(key: string, msg: string): void {
    if (this.quiet || this.warned.has(key)) return;
    this.warned.add(key);
    process.stderr.write(`iolab ${this.name}: ${msg}\n`);
  }

  stats(): UringStats {
    const st = this.service.stalls;
    const ring = this.ring;
    return {
      engine: this.engineName,
      app: this.app,
      protocol: this.service.protocol,
      pid: process.pid,
      workers: 1,
      connections: { current: this.current, peak: this.peak, total: this.total, refused: this.refused },
      requests: this.requests,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      syscalls: syscallCounts(),
      eagain: eagain[0]!,
      wakeups: this.wakeups,
      loopStalls: { count: st.count, maxMs: st.maxMs, byRoute: Object.fromEntries(st.byRoute) },
      threads: 1,
      processes: 1,
      uring: {
        sqesSubmitted: ring.sqesSubmitted,
        cqesReaped: ring.cqesReaped,
        inflight: this.inflight,
        sqFullFlushes: ring.sqFullFlushes,
        cqOverflows: this.cqOverflows,
        cqDropped: ring.cqDropped(),
        enobufs: this.enobufs,
        shortSends: this.shortSends,
        recvCancels: this.recvCancels,
        timedOut: this.timedOut,
        sendsInFlight: this.pool.inUse,
        multishotRecv: this.multishot,
        sqpoll: ring.sqpoll,
        setupFlags: ring.setupFlags,
        recvBuffers: `${RECV_BUFS} x ${RECV_BUF_SIZE}`,
      },
    };
  }
}

/** EngineStats plus io_uring's own counters (not yet part of the shared shape). */
export interface UringStats extends EngineStats {
  uring: {
    sqesSubmitted: number;
    cqesReaped: number;
    inflight: number;
    sqFullFlushes: number;
    cqOverflows: number;
    cqDropped: number;
    enobufs: number;
    shortSends: number;
    recvCancels: number;
    timedOut: number;
    sendsInFlight: number;
    multishotRecv: boolean;
    sqpoll: boolean;
    setupFlags: number;
    recvBuffers: string;
  };
}
