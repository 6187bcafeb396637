/**
 * The readiness reactor shared by the select, poll and epoll engines: one thread, one Poller,
 * per-connection state in fd-indexed tables.
 *
 * Scheduling. The loop owns its thread: each turn blocks in `poller.wait()` and handles what fired,
 * for up to YIELD_MS, then yields one tick to Node's own loop (signals, timers, promise callbacks)
 * with setImmediate. Under load that is one yield per ~YIELD_MS of work, so Node's own epoll_wait
 * costs nothing per request; when idle the wait blocks up to YIELD_MS, which bounds the latency
 * of Ctrl-C and of stop(). While an async handler is pending the loop waits at most 1 ms and
 * yields every turn so the handler's promise can settle.
 *
 * Connection state is a row across typed arrays (flags, interest mask, generation) plus sparse
 * arrays: `inbuf` (bytes of a partial request), `outq` (bytes the socket would not take) and `files`
 * (a file body still being sent, after `outq`). An idle connection holds none, so it costs a few
 * bytes of tables, no buffers.
 */
import { performance } from 'node:perf_hooks';
import { FEED_OUT_BOUND, FeedResult, type Deferred, type Service } from '../../apps/service.js';
import { OutBuf } from '../../protocols/outbuf.js';
import {
  EAGAIN, ECONNABORTED, EMFILE, ENFILE, MSG_MORE, O_CLOEXEC, O_RDONLY, SOCK_CLOEXEC, SOCK_NONBLOCK, eagain, errnoName, ffi,
  SHUT_WR, getrlimit, setNoDelay, syscallCounts,
} from '../../sys/index.js';
import type { FileSend } from '../../sys/file.js';
import type { ConnectionLimits, EngineStats } from '../types.js';
import { overCap, releaseCap } from '../conncap.js';
import { COPY_CHUNK, FILE_BLOCKED, FILE_DONE, pumpFile } from '../filebody.js';
import { HANGUP, READABLE, WRITABLE, type Poller } from './poller.js';

const F_OPEN = 1;
/** Output (`outq`, then a file body) is backlogged: reading is paused until it drains (backpressure). */
const F_BACKLOG = 2;
/** Close once the backlog (and any pending request) is done. */
const F_CLOSING = 4;
/** A request is being handled asynchronously: reading is paused. */
const F_PENDING = 8;
/** The peer sent FIN. */
const F_EOF = 16;
/** Lingering close: our side is shut for writing; reads are drained and discarded until EOF or the deadline. */
const F_LINGER = 32;
/** Held input may hold complete requests (feed() stopped at its output bound): feed it once the backlog drains. */
const F_MORE = 64;

const READ_SIZE = 64 * 1024;
const YIELD_MS = 50;
const ACCEPT_BATCH = 128;
/** Pause before trying accept again at the fd limit when there was nothing to shed (see acceptPausedUntil). */
const ACCEPT_RETRY_MS = 100;
/** How often timeouts are checked. */
const SWEEP_MS = 250;
/**
 * A lingering close ends once the peer has been quiet for lingerMs (nginx's lingering_timeout) or after
 * this many lingerMs in all (its lingering_time: 30 s over 5 s). A peer still sending is still reading
 * what precedes our FIN, often slowly; closing on it sends an RST that drops our unsent answer.
 */
const LINGER_TOTAL = 15;

export interface ReactorOptions {
  name: string;
  listenFd: number;
  app: string;
  quiet: boolean;
  limits: ConnectionLimits;
}

export class Reactor {
  readonly poller: Poller;
  readonly service: Service;
  private readonly listenFd: number;
  private readonly name: string;
  private readonly app: string;
  private readonly quiet: boolean;

  // ---- connection table, indexed by fd ----
  private readonly flags: Uint8Array;
  private readonly interest: Uint8Array;
  private readonly gen: Uint32Array;
  private readonly inbuf: (Buffer | null)[];
  private readonly outq: (Buffer | null)[];
  private readonly outOff: Int32Array;
  private readonly files: (FileSend | null)[];
  /** When the held partial request began (header timeout; while lingering: when the linger began), when
   *  the connection last did anything (idle timeout; while lingering: last read), and when its backlog
   *  last moved (send timeout); ms on performance.now()'s clock. */
  private readonly partialSince: Float64Array;
  private readonly activeAt: Float64Array;
  private readonly wroteAt: Float64Array;
  /** Highest fd ever opened: the timeout sweep scans rows up to it. */
  private hiFd = 0;
  private lastSweep = 0;
  private now = 0;
  private readonly limits: ConnectionLimits;

  private readonly rbuf = Buffer.allocUnsafe(READ_SIZE);
  private readonly out = new OutBuf(READ_SIZE);
  private readonly fr = new FeedResult();
  /** pread() scratch for file bodies sent by copying (--sendfile off); allocated on first use. */
  private copyBuf: Buffer | null = null;
  private readonly sent = { n: 0 };
  private reserveFd: number;
  private pendingAsync = 0;
  /**
   * At the fd limit accept4() fails with EMFILE before it looks for a connection (net/socket.c
   * __sys_accept4_file reserves the fd first), so with nothing queued to shed a poller that tries the
   * listener every pass (busypoll) would spin on it. Accepting waits until then, or a close frees an fd.
   */
  private acceptPausedUntil = 0;

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
  timedOut = 0;
  private warned = new Set<string>();

  constructor(poller: Poller, service: Service, opts: ReactorOptions) {
    this.poller = poller;
    this.service = service;
    this.listenFd = opts.listenFd;
    this.name = opts.name;
    this.app = opts.app;
    this.quiet = opts.quiet;
    this.limits = opts.limits;
    this.fr.maxOut = FEED_OUT_BOUND; // pipelined requests for large answers: see F_MORE
    this.fr.acceptsFile = true; // file bodies go out with sendfile(2), or pread + write, as the socket takes them
    // Rows for every fd this process may open: the hard RLIMIT_NOFILE bounds fd numbers.
    const cap = Math.min(getrlimit().hard, 1 << 21) + 16;
    this.flags = new Uint8Array(cap);
    this.interest = new Uint8Array(cap);
    this.gen = new Uint32Array(cap);
    this.inbuf = new Array<Buffer | null>(cap).fill(null);
    this.outq = new Array<Buffer | null>(cap).fill(null);
    this.outOff = new Int32Array(cap);
    this.files = new Array<FileSend | null>(cap).fill(null);
    this.partialSince = new Float64Array(cap);
    this.activeAt = new Float64Array(cap);
    this.wroteAt = new Float64Array(cap);
    // libuv's trick for EMFILE: hold a spare fd; when accept fails for lack of fds, free the spare,
    // accept and close the connection (the client sees a clean close, not a hang), re-take the spare.
    this.reserveFd = this.openReserve();
    this.done = new Promise((res, rej) => {
      this.resolveDone = res;
      this.rejectDone = rej;
    });
  }

  private openReserve(): number {
    try {
      return ffi.open('/dev/null', O_RDONLY | O_CLOEXEC, 0);
    } catch {
      return -1;
    }
  }

  start(): void {
    if (!this.poller.add(this.listenFd, READABLE)) throw new Error(`${this.poller.name} cannot watch the listening socket`);
    this.running = true;
    setImmediate(this.turn);
  }

  /** Stop accepting; close idle connections; let busy ones finish until `drainMs`, then force-close. */
  stop(drainMs: number): void {
    if (this.stopping) return;
    this.stopping = true;
    this.stopDeadline = performance.now() + drainMs;
    this.service.draining = true;
    this.poller.remove(this.listenFd, true);
    ffi.close(this.listenFd);
    this.acceptPausedUntil = 0; // no resume: the listener (and its number) are gone
    // Idle as far as the app knows, but the kernel may still hold our last answer (send queue) and
    // the peer's next bytes (receive queue): close(2) would RST and discard the answer. Close lingering.
    for (let fd = 0; fd < this.flags.length; fd++) {
      const fl = this.flags[fd]!;
      if (fl & F_OPEN && !(fl & (F_BACKLOG | F_PENDING | F_LINGER)) && this.inbuf[fd] === null) this.finish(fd);
    }
  }

  private readonly turn = (): void => {
    if (!this.running) return;
    try {
      const t0 = performance.now();
      for (;;) {
        if (this.stopping && (this.current === 0 || performance.now() >= this.stopDeadline)) {
          this.shutdownNow();
          return;
        }
        const left = YIELD_MS - (performance.now() - t0);
        if (left <= 0) break;
        const timeout = this.pendingAsync > 0 ? 1 : this.stopping ? Math.min(10, Math.ceil(left)) : Math.min(SWEEP_MS, Math.ceil(left));
        const n = this.poller.wait(timeout);
        this.wakeups++;
        this.now = performance.now();
        this.service.tick(this.now); // the feeds of this turn time themselves from this reading
        if (n > 0) this.dispatch(n);
        if (this.now - this.lastSweep >= SWEEP_MS) this.sweep();
        if (this.acceptPausedUntil !== 0 && this.now >= this.acceptPausedUntil) {
          // Not on an event: with EPOLLET the edge for connections queued meanwhile has been consumed.
          this.resumeAccept();
          if (!this.stopping) this.acceptAll();
        }
        if (this.pendingAsync > 0) break;
      }
    } catch (e) {
      this.running = false;
      this.rejectDone(e); // before shutdownNow(), whose resolve would otherwise swallow the error
      this.shutdownNow();
      return;
    } finally {
      // Feeds outside a turn (an async reply settling) read the clock themselves.
      this.service.tick(NaN);
    }
    setImmediate(this.turn);
  };

  private dispatch(n: number): void {
    const fds = this.poller.firedFd, masks = this.poller.firedMask;
    for (let i = 0; i < n; i++) {
      const fd = fds[i]!, m = masks[i]!;
      if (fd === this.listenFd) {
        if (!this.stopping && this.acceptPausedUntil === 0) this.acceptAll();
        continue;
      }
      if (!(this.flags[fd]! & F_OPEN)) continue; // closed earlier in this batch
      if (m & WRITABLE && this.flags[fd]! & F_BACKLOG) this.onWritable(fd);
      if (m & READABLE && this.flags[fd]! & F_OPEN && !(this.flags[fd]! & (F_BACKLOG | F_PENDING))) this.onReadable(fd, m);
    }
  }

  private acceptAll(): void {
    // Level-triggered: a bounded batch keeps accepting from starving reads; the rest is reported again.
    // Edge-triggered: no new edge comes for connections already queued, so drain to EAGAIN.
    const batch = this.poller.capabilities.edge ? Infinity : ACCEPT_BATCH;
    for (let k = 0; k < batch; k++) {
      const fd = ffi.accept4(this.listenFd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        const e = -fd;
        if (e === EAGAIN) return;
        if (e === ECONNABORTED) continue;
        if (e === EMFILE || e === ENFILE) {
          if (this.shedWithReserve(e) === 0) this.pauseAccept();
          return;
        }
        this.warnOnce(`accept4:${e}`, `accept4() failed: ${errnoName(e)}`);
        return;
      }
      if (fd >= this.flags.length || !this.poller.add(fd, READABLE)) {
        this.refused++;
        this.warnOnce('fdlimit', `${this.poller.name} cannot watch fd ${fd} (limit ${this.poller.capabilities.fdLimit}): connection closed`);
        ffi.close(fd);
        continue;
      }
      if (overCap(this.limits, this.current)) {
        this.refuse(fd);
        continue;
      }
      setNoDelay(fd);
      this.flags[fd] = F_OPEN;
      this.interest[fd] = READABLE;
      this.activeAt[fd] = this.now;
      if (fd > this.hiFd) this.hiFd = fd;
      this.current++;
      this.total++;
      if (this.current > this.peak) this.peak = this.current;
    }
  }

  /**
   * Over the cap: answer with the protocol's refusal (best effort, non-blocking) and close. The write
   * side is shut first and whatever the client already sent is read off, so the close is a FIN the
   * client reads after the refusal, not an RST that could destroy it.
   */
  private refuse(fd: number): void {
    this.poller.remove(fd, true);
    this.service.refuse(this.out);
    if (this.out.len > 0) ffi.write(fd, this.out.buf, this.out.len);
    this.out.reset();
    ffi.shutdown(fd, SHUT_WR);
    ffi.read(fd, this.rbuf, READ_SIZE);
    ffi.close(fd);
    this.refused++;
    this.warnOnce('maxconn', `connection cap of ${this.limits.maxConnections} reached: refusing new connections`);
  }

  /**
   * Nothing could be shed at the fd limit (no spare fd: with --workers N another loop of this process
   * can take the fd the spare frees before we take it back). The listener stays readable while its
   * queue is full, so a level-triggered poller would report it on every wait and the loop would spin
   * until the retry: stop watching it until then (or until a close frees an fd).
   */
  private pauseAccept(): void {
    this.acceptPausedUntil = this.now + ACCEPT_RETRY_MS;
    this.poller.modify(this.listenFd, 0);
  }

  private resumeAccept(): void {
    this.acceptPausedUntil = 0;
    this.poller.modify(this.listenFd, READABLE);
    if (this.reserveFd < 0) this.reserveFd = this.openReserve(); // lost to another loop: take one again
  }

  /** Returns how many queued connections were shed. */
  private shedWithReserve(e: number): number {
    this.warnOnce('emfile', `accept4() failed: ${errnoName(e)}: out of file descriptors; shedding new connections (raise ulimit -n)`);
    if (this.reserveFd < 0) return 0;
    let shed = 0;
    // As libuv's uv__emfile_trick: with the spare fd freed, accept and close every queued connection
    // (the clients see a clean close rather than a hang), then take the spare back.
    ffi.close(this.reserveFd);
    for (;;) {
      const fd = ffi.accept4(this.listenFd, null, null, SOCK_CLOEXEC);
      if (fd < 0) break;
      ffi.close(fd);
      this.refused++;
      shed++;
    }
    this.reserveFd = this.openReserve();
    return shed;
  }

  private onReadable(fd: number, m: number): void {
    if (this.flags[fd]! & F_LINGER) return this.drainLinger(fd);
    const edge = this.poller.capabilities.edge;
    const hangup = (m & HANGUP) !== 0;
    for (;;) {
      const n = ffi.read(fd, this.rbuf, READ_SIZE);
      if (n > 0) {
        // Only bytes count as activity: a busy poller reports every fd as maybe-readable on every pass.
        this.activeAt[fd] = this.now;
        this.bytesIn += n;
        this.onData(fd, n);
        // A short read drained the socket; with EPOLLET new data raises a new edge anyway, but a FIN
        // that came with this data raises none, so read on to the EOF when the peer hung up.
        if (!(this.flags[fd]! & F_OPEN) || this.flags[fd]! & (F_BACKLOG | F_PENDING | F_CLOSING)) return;
        if (!edge || (n < READ_SIZE && !hangup)) return;
        continue;
      }
      if (n === 0) {
        this.onEof(fd);
        return;
      }
      if (n === -EAGAIN) return;
      this.closeConn(fd); // ECONNRESET and friends: only this connection ends
      return;
    }
  }

  private onData(fd: number, n: number): void {
    let buf = this.rbuf;
    let end = n;
    const held = this.inbuf[fd];
    if (held !== null) {
      buf = Buffer.allocUnsafe(held.length + n);
      held.copy(buf, 0);
      this.rbuf.copy(buf, held.length, 0, n);
      end = buf.length;
      this.inbuf[fd] = null;
    }
    this.feed(fd, buf, 0, end);
  }

  /** Run the service over buf[start,end) and act on what it says. */
  private feed(fd: number, buf: Buffer, start: number, end: number): void {
    const r = this.fr;
    for (;;) {
      r.reset();
      this.service.feed(buf, start, end, this.out, r);
      this.requests += r.requests;
      if (r.file === null && (!r.more || r.close || r.pending !== null || this.out.len === 0)) break;
      // feed() stopped at its output bound, or after a response with a file body: write (the file
      // after the head), and go on while the socket takes it all; once it backlogs, the rest is held
      // (F_MORE) and fed when the backlog drains.
      // With a file to follow, the head goes with MSG_MORE so it shares segments with the file's
      // first bytes (nginx: tcp_nopush) instead of leaving alone under TCP_NODELAY.
      if (this.out.len > 0) this.send(fd, this.out.buf, this.out.len, r.file !== null);
      this.out.reset();
      if (r.file !== null) this.sendFile(fd, r.file);
      if (!(this.flags[fd]! & F_OPEN)) return;
      if (this.flags[fd]! & F_BACKLOG || !r.more || r.close) break;
      start = r.next;
    }
    if (r.more) {
      this.flags[fd]! |= F_MORE;
      this.partialSince[fd] = 0; // not a slow request: our own output holds it back
      this.inbuf[fd] = Buffer.from(buf.subarray(r.next, end));
    } else if (r.next < end) {
      // A request is only partly here. Its header timeout runs from its first byte, not the latest
      // (a slowloris client sends a byte every few seconds to look alive).
      if (r.next !== start || this.partialSince[fd] === 0) this.partialSince[fd] = this.now || performance.now();
      this.inbuf[fd] = Buffer.from(buf.subarray(r.next, end));
    } else this.partialSince[fd] = 0;
    if (r.close) this.flags[fd]! |= F_CLOSING;
    if (this.out.len > 0) this.send(fd, this.out.buf, this.out.len);
    this.out.reset();
    if (!(this.flags[fd]! & F_OPEN)) {
      // The write found the peer gone (EPIPE, ECONNRESET) and closed the fd: nothing more to watch.
      r.pending?.catch(() => {});
      return;
    }
    if (r.pending !== null) {
      this.flags[fd]! |= F_PENDING;
      this.pendingAsync++;
      const g = this.gen[fd]!;
      r.pending.then(
        (d) => this.onDeferred(fd, g, d),
        () => this.onDeferred(fd, g, null),
      );
      this.updateInterest(fd);
      return;
    }
    if (this.flags[fd]! & F_CLOSING && !(this.flags[fd]! & F_BACKLOG)) this.finish(fd);
    else this.updateInterest(fd);
  }

  private onDeferred(fd: number, g: number, d: Deferred | null): void {
    this.pendingAsync--;
    if (this.gen[fd] !== g || !(this.flags[fd]! & F_OPEN)) return; // closed meanwhile
    this.flags[fd]! &= ~F_PENDING;
    if (d === null) {
      this.closeConn(fd);
      return;
    }
    this.requests++; // the deferred request is answered now
    if (d.close) this.flags[fd]! |= F_CLOSING;
    if (d.bytes.length > 0) this.send(fd, d.bytes, d.bytes.length);
    if (!(this.flags[fd]! & F_OPEN)) return;
    const held = this.inbuf[fd];
    if (held !== null && !(this.flags[fd]! & F_CLOSING)) {
      this.inbuf[fd] = null;
      this.feed(fd, held, 0, held.length);
      return;
    }
    if ((this.flags[fd]! & (F_CLOSING | F_EOF) || (this.stopping && held === null)) && !(this.flags[fd]! & F_BACKLOG)) this.finish(fd);
    else this.updateInterest(fd);
  }

  /**
   * Write now; whatever the socket will not take becomes the connection's backlog. Never called while
   * a file body is pending (feed() stops after a file response until it is sent), so `outq` is always
   * the part of the output that precedes the file.
   */
  private send(fd: number, data: Buffer, len: number, more = false): void {
    const q = this.outq[fd];
    if (q !== null) {
      // Already backlogged: keep order by appending.
      const off = this.outOff[fd]!;
      const next = Buffer.allocUnsafe(q.length - off + len);
      q.copy(next, 0, off);
      data.copy(next, q.length - off, 0, len);
      this.outq[fd] = next;
      this.outOff[fd] = 0;
      return;
    }
    const w = more ? ffi.send(fd, data, len, MSG_MORE) : ffi.write(fd, data, len);
    if (w === len) {
      this.bytesOut += w;
      return;
    }
    if (w < 0 && w !== -EAGAIN) {
      this.closeConn(fd);
      return;
    }
    const done = w > 0 ? w : 0;
    this.bytesOut += done;
    this.outq[fd] = Buffer.from(data.subarray(done, len));
    this.outOff[fd] = 0;
    this.flags[fd]! |= F_BACKLOG;
    this.wroteAt[fd] = this.now || performance.now();
  }

  /** A file body to send after what is already queued: the socket takes what it can now, the rest on writable. */
  private sendFile(fd: number, f: FileSend): void {
    if (!(this.flags[fd]! & F_OPEN)) {
      ffi.close(f.fd); // the head's write found the peer gone
      return;
    }
    this.files[fd] = f;
    if (this.flags[fd]! & F_BACKLOG) return; // the head is queued: the file follows it from onWritable
    this.pumpFile(fd);
  }

  /** Send what the socket takes of the pending file; true when it is all sent (and its fd closed). */
  private pumpFile(fd: number): boolean {
    const f = this.files[fd]!;
    const st = pumpFile(fd, f, this.service.sendfile, this.copyBuf ??= Buffer.allocUnsafe(COPY_CHUNK), this.sent);
    if (this.sent.n > 0) {
      this.bytesOut += this.sent.n;
      this.sent.n = 0;
      this.wroteAt[fd] = this.now || performance.now();
    }
    if (st === FILE_DONE) {
      ffi.close(f.fd);
      this.files[fd] = null;
      return true;
    }
    if (st === FILE_BLOCKED) {
      if (!(this.flags[fd]! & F_BACKLOG)) {
        this.flags[fd]! |= F_BACKLOG;
        this.wroteAt[fd] = this.now || performance.now();
      }
      return false;
    }
    this.closeConn(fd); // EPIPE, ECONNRESET, or the file shrank under us: the framing is lost
    return false;
  }

  private onWritable(fd: number): void {
    const q = this.outq[fd];
    if (q !== null) {
      const off = this.outOff[fd]!;
      const w = ffi.write(fd, off === 0 ? q : q.subarray(off), q.length - off);
      if (w < 0) {
        if (w !== -EAGAIN) this.closeConn(fd);
        return;
      }
      this.bytesOut += w;
      if (w > 0) this.wroteAt[fd] = this.now;
      if (off + w < q.length) {
        this.outOff[fd] = off + w;
        return;
      }
      this.outq[fd] = null;
      this.outOff[fd] = 0;
    }
    if (this.files[fd] !== null && !this.pumpFile(fd)) return;
    this.flags[fd]! &= ~F_BACKLOG;
    if (this.flags[fd]! & F_PENDING) return;
    if (this.flags[fd]! & F_MORE) {
      // Requests held back by feed()'s output bound: their turn, even after the peer's FIN.
      this.flags[fd]! &= ~F_MORE;
      const held = this.inbuf[fd]!;
      this.inbuf[fd] = null;
      this.feed(fd, held, 0, held.length); // after a FIN, onEof set F_CLOSING: feed() finishes when done
      return;
    }
    if (this.flags[fd]! & (F_CLOSING | F_EOF)) {
      this.finish(fd);
      return;
    }
    if (this.stopping && this.inbuf[fd] === null) {
      this.finish(fd);
      return;
    }
    this.updateInterest(fd);
  }

  /**
   * Close after the last response. If the peer may still be sending (no FIN seen), close(2) with unread
   * input would send an RST, and an RST can destroy the response in the peer's receive buffer before it
   * is read. So, as nginx's lingering close: shut our write side (FIN after the response), then read
   * and discard until the peer's FIN, or `lingerMs` without input (LINGER_TOTAL), then close.
   */
  private finish(fd: number): void {
    const fl = this.flags[fd]!;
    if (fl & F_EOF || this.limits.lingerMs <= 0) return this.closeConn(fd);
    ffi.shutdown(fd, SHUT_WR);
    this.flags[fd] = (fl | F_LINGER) & ~(F_CLOSING | F_MORE);
    this.inbuf[fd] = null;
    this.activeAt[fd] = this.partialSince[fd] = this.now || performance.now();
    this.updateInterest(fd);
  }

  private drainLinger(fd: number): void {
    for (let k = 0; k < 16; k++) {
      const n = ffi.read(fd, this.rbuf, READ_SIZE);
      if (n === -EAGAIN) return;
      if (n <= 0) return this.closeConn(fd);
      this.activeAt[fd] = this.now;
    }
  }

  /** Timeouts, checked every SWEEP_MS over the rows in use. */
  private sweep(): void {
    const now = this.now;
    this.lastSweep = now;
    const { headerTimeoutMs, idleTimeoutMs, sendTimeoutMs, lingerMs } = this.limits;
    for (let fd = 0; fd <= this.hiFd; fd++) {
      const fl = this.flags[fd]!;
      if (!(fl & F_OPEN)) continue;
      if (fl & F_LINGER) {
        if (now - this.activeAt[fd]! > lingerMs || now - this.partialSince[fd]! > lingerMs * LINGER_TOTAL) this.closeConn(fd);
      } else if (fl & F_BACKLOG) {
        // Slow reader: the backlog has not moved (and reading it paused) for the send timeout.
        if (now - this.wroteAt[fd]! > sendTimeoutMs) this.expire(fd, false);
      } else if (fl & F_PENDING) {
        continue;
      } else if (this.inbuf[fd] !== null) {
        if (now - this.partialSince[fd]! > headerTimeoutMs) this.expire(fd, true);
      } else if (now - this.activeAt[fd]! > idleTimeoutMs) {
        this.expire(fd, false);
      }
    }
  }

  private expire(fd: number, answer: boolean): void {
    this.timedOut++;
    if (answer) {
      // Header timeout: answer (HTTP 408) and close lingering, so the answer is not lost to an RST.
      this.inbuf[fd] = null;
      this.service.timeout(this.out);
      if (this.out.len > 0) ffi.write(fd, this.out.buf, this.out.len);
      this.out.reset();
      return this.finish(fd);
    }
    this.closeConn(fd); // idle, or a peer that stopped reading: nothing to say
  }

  /** The peer half-closed. Answer what it already sent (RELIABILITY.md: FIN after the response), then close. */
  private onEof(fd: number): void {
    this.flags[fd]! |= F_EOF;
    if (!(this.flags[fd]! & F_MORE)) this.inbuf[fd] = null; // a partial request can never complete now
    if (this.flags[fd]! & (F_BACKLOG | F_PENDING)) {
      this.flags[fd]! |= F_CLOSING;
      this.updateInterest(fd);
      return;
    }
    this.closeConn(fd);
  }

  /** Watch for what the connection needs: writable while backlogged, readable otherwise, nothing while pending. */
  private updateInterest(fd: number): void {
    const fl = this.flags[fd]!;
    const want = fl & F_BACKLOG ? WRITABLE : fl & F_LINGER ? READABLE : fl & (F_PENDING | F_EOF) ? 0 : READABLE;
    if (want === this.interest[fd]) return;
    this.poller.modify(fd, want);
    this.interest[fd] = want;
  }

  private closeConn(fd: number): void {
    if (!(this.flags[fd]! & F_OPEN)) return;
    this.poller.remove(fd, true);
    ffi.close(fd);
    this.flags[fd] = 0;
    this.interest[fd] = 0;
    this.gen[fd]!++;
    this.inbuf[fd] = null;
    this.outq[fd] = null;
    this.outOff[fd] = 0;
    const f = this.files[fd];
    if (f !== null) {
      ffi.close(f.fd);
      this.files[fd] = null;
    }
    this.partialSince[fd] = 0;
    this.current--;
    releaseCap(this.limits);
    if (this.acceptPausedUntil !== 0) this.acceptPausedUntil = this.now; // an fd is free: accept at the end of this pass
  }

  private shutdownNow(): void {
    if (this.closed) return;
    this.closed = true;
    for (let fd = 0; fd < this.flags.length; fd++) if (this.flags[fd]! & F_OPEN) this.closeConn(fd);
    if (!this.stopping) {
      this.poller.remove(this.listenFd, true);
      ffi.close(this.listenFd);
    }
    if (this.reserveFd >= 0) ffi.close(this.reserveFd);
    this.reserveFd = -1;
    this.poller.close();
    this.running = false;
    this.stopping = false;
    this.resolveDone();
  }

  private warnOnce(key: string, msg: string): void {
    if (this.quiet || this.warned.has(key)) return;
    this.warned.add(key);
    process.stderr.write(`iolab ${this.name}: ${msg}\n`);
  }

  stats(): EngineStats {
    const st = this.service.stalls;
    return {
      engine: this.poller.name,
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
    };
  }
}
