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
 * Connection state is a row across typed arrays (flags, interest mask, generation) plus two sparse
 * arrays of Buffers: `inbuf` (bytes of a partial request) and `outq` (bytes the socket would not
 * take). An idle connection holds neither, so it costs a few bytes of tables, no buffers.
 */
import { FeedResult, type Deferred, type Service } from '../../apps/service.js';
import { OutBuf } from '../../protocols/outbuf.js';
import {
  EAGAIN, ECONNABORTED, EMFILE, ENFILE, O_CLOEXEC, O_RDONLY, SOCK_CLOEXEC, SOCK_NONBLOCK, eagain, errnoName, ffi,
  getrlimit, setNoDelay, syscallCounts,
} from '../../sys/index.js';
import type { EngineStats } from '../types.js';
import { READABLE, WRITABLE, type Poller } from './poller.js';

const F_OPEN = 1;
/** Output is backlogged: reading is paused until it drains (backpressure). */
const F_BACKLOG = 2;
/** Close once the backlog (and any pending request) is done. */
const F_CLOSING = 4;
/** A request is being handled asynchronously: reading is paused. */
const F_PENDING = 8;
/** The peer sent FIN. */
const F_EOF = 16;

const READ_SIZE = 64 * 1024;
const YIELD_MS = 50;
const ACCEPT_BATCH = 128;

export interface ReactorOptions {
  name: string;
  listenFd: number;
  app: string;
  quiet: boolean;
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

  private readonly rbuf = Buffer.allocUnsafe(READ_SIZE);
  private readonly out = new OutBuf(READ_SIZE);
  private readonly fr = new FeedResult();
  private reserveFd: number;
  private pendingAsync = 0;

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
  private warned = new Set<string>();

  constructor(poller: Poller, service: Service, opts: ReactorOptions) {
    this.poller = poller;
    this.service = service;
    this.listenFd = opts.listenFd;
    this.name = opts.name;
    this.app = opts.app;
    this.quiet = opts.quiet;
    // Rows for every fd this process may open: the hard RLIMIT_NOFILE bounds fd numbers.
    const cap = Math.min(getrlimit().hard, 1 << 21) + 16;
    this.flags = new Uint8Array(cap);
    this.interest = new Uint8Array(cap);
    this.gen = new Uint32Array(cap);
    this.inbuf = new Array<Buffer | null>(cap).fill(null);
    this.outq = new Array<Buffer | null>(cap).fill(null);
    this.outOff = new Int32Array(cap);
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
    for (let fd = 0; fd < this.flags.length; fd++) {
      const fl = this.flags[fd]!;
      if (fl & F_OPEN && !(fl & (F_BACKLOG | F_PENDING)) && this.inbuf[fd] === null) this.closeConn(fd);
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
        const timeout = this.pendingAsync > 0 ? 1 : this.stopping ? Math.min(10, Math.ceil(left)) : Math.ceil(left);
        const n = this.poller.wait(timeout);
        this.wakeups++;
        if (n > 0) this.dispatch(n);
        if (this.pendingAsync > 0) break;
      }
    } catch (e) {
      this.running = false;
      this.shutdownNow();
      this.rejectDone(e);
      return;
    }
    setImmediate(this.turn);
  };

  private dispatch(n: number): void {
    const fds = this.poller.firedFd, masks = this.poller.firedMask;
    for (let i = 0; i < n; i++) {
      const fd = fds[i]!, m = masks[i]!;
      if (fd === this.listenFd) {
        if (!this.stopping) this.acceptAll();
        continue;
      }
      if (!(this.flags[fd]! & F_OPEN)) continue; // closed earlier in this batch
      if (m & WRITABLE && this.outq[fd] !== null) this.onWritable(fd);
      if (m & READABLE && this.flags[fd]! & F_OPEN && !(this.flags[fd]! & (F_BACKLOG | F_PENDING))) this.onReadable(fd);
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
          this.shedWithReserve(e);
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
      setNoDelay(fd);
      this.flags[fd] = F_OPEN;
      this.interest[fd] = READABLE;
      this.current++;
      this.total++;
      if (this.current > this.peak) this.peak = this.current;
    }
  }

  private shedWithReserve(e: number): void {
    this.warnOnce('emfile', `accept4() failed: ${errnoName(e)}: out of file descriptors; shedding new connections (raise ulimit -n)`);
    if (this.reserveFd < 0) return;
    // As libuv's uv__emfile_trick: with the spare fd freed, accept and close every queued connection
    // (the clients see a clean close rather than a hang), then take the spare back.
    ffi.close(this.reserveFd);
    for (;;) {
      const fd = ffi.accept4(this.listenFd, null, null, SOCK_CLOEXEC);
      if (fd < 0) break;
      ffi.close(fd);
      this.refused++;
    }
    this.reserveFd = this.openReserve();
  }

  private onReadable(fd: number): void {
    const edge = this.poller.capabilities.edge;
    for (;;) {
      const n = ffi.read(fd, this.rbuf, READ_SIZE);
      if (n > 0) {
        this.bytesIn += n;
        this.onData(fd, n);
        // A short read drained the socket; with EPOLLET new data raises a new edge anyway.
        if (n < READ_SIZE || !edge || this.flags[fd]! & (F_BACKLOG | F_PENDING | F_CLOSING) || !(this.flags[fd]! & F_OPEN)) return;
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
    r.reset();
    this.service.feed(buf, start, end, this.out, r);
    this.requests += r.requests;
    if (r.next < end) this.inbuf[fd] = Buffer.from(buf.subarray(r.next, end));
    if (r.close) this.flags[fd]! |= F_CLOSING;
    if (this.out.len > 0) this.send(fd, this.out.buf, this.out.len);
    this.out.reset();
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
    if (this.flags[fd]! & F_CLOSING && this.outq[fd] === null) this.closeConn(fd);
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
    if (d.close) this.flags[fd]! |= F_CLOSING;
    if (d.bytes.length > 0) this.send(fd, d.bytes, d.bytes.length);
    if (!(this.flags[fd]! & F_OPEN)) return;
    const held = this.inbuf[fd];
    if (held !== null && !(this.flags[fd]! & F_CLOSING)) {
      this.inbuf[fd] = null;
      this.feed(fd, held, 0, held.length);
      return;
    }
    if (this.flags[fd]! & (F_CLOSING | F_EOF) && this.outq[fd] === null) this.closeConn(fd);
    else this.updateInterest(fd);
  }

  /** Write now; whatever the socket will not take becomes the connection's backlog. */
  private send(fd: number, data: Buffer, len: number): void {
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
    const w = ffi.write(fd, data, len);
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
  }

  private onWritable(fd: number): void {
    const q = this.outq[fd]!;
    const off = this.outOff[fd]!;
    const w = ffi.write(fd, off === 0 ? q : q.subarray(off), q.length - off);
    if (w < 0) {
      if (w !== -EAGAIN) this.closeConn(fd);
      return;
    }
    this.bytesOut += w;
    if (off + w < q.length) {
      this.outOff[fd] = off + w;
      return;
    }
    this.outq[fd] = null;
    this.outOff[fd] = 0;
    this.flags[fd]! &= ~F_BACKLOG;
    if (this.flags[fd]! & F_PENDING) return;
    if (this.flags[fd]! & (F_CLOSING | F_EOF)) {
      this.closeConn(fd);
      return;
    }
    if (this.stopping && this.inbuf[fd] === null) {
      this.closeConn(fd);
      return;
    }
    this.updateInterest(fd);
  }

  /** The peer half-closed. Answer what it already sent (RELIABILITY.md: FIN after the response), then close. */
  private onEof(fd: number): void {
    this.flags[fd]! |= F_EOF;
    this.inbuf[fd] = null; // a partial request can never complete now
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
    const want = fl & F_BACKLOG ? WRITABLE : fl & (F_PENDING | F_EOF) ? 0 : READABLE;
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
    this.current--;
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
