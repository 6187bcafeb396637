/**
 * The `aio` engine: POSIX AIO through glibc (aio_read / aio_write, completions found with aio_suspend
 * and aio_error), to show why the article calls POSIX AIO "mostly unused" for network servers.
 * Try: iolab serve --engine aio --app hello --stats-file s.json, then read `threads` in s.json.
 *
 * What it shows (glibc 2.36, sysdeps/pthread/aio_misc.c and aio_suspend.c):
 *  - No kernel AIO: every request runs as a blocking read()/write() on one of glibc's helper threads.
 *    An idle keep-alive connection has a read in flight, so it holds a helper thread (and its 64 KB
 *    read buffer) for as long as it stays idle: thread-per-connection with extra steps. `threads` in
 *    the stats counts them (the process's threads now minus at start, plus this loop).
 *  - glibc's default cap is 20 helper threads; past it requests queue, and a queued read waits behind
 *    reads on idle connections that may never complete. So we raise the cap with aio_init() and instead
 *    bound connections per loop (--max-connections, default 256 here): the excess is refused (HTTP 503,
 *    RESP "-ERR max number of clients reached"), never left hanging.
 *  - Completion is not an event: aio_suspend() sleeps until one of the listed requests ends (walking
 *    glibc's fd-sorted request list for each entry: O(n^2) in requests in flight, under one global
 *    mutex), then we scan every in-flight aiocb with aio_error() to learn which (O(n) per wake).
 *  - There is no aio_accept: the listener is non-blocking and accept4() is polled every turn, so the
 *    wait is bounded by ACCEPT_POLL_MS, which is the added latency of a new connection.
 *  - Only one request per connection is in flight (glibc serialises requests on one fd anyway): read,
 *    feed the Service, write the answer, read again. Not reading while a write is in flight is the
 *    backpressure. An aiocb and its buffer must stay put until the request completes, so a connection
 *    is closed only once nothing is in flight; at stop, an idle connection gets shutdown(SHUT_WR) and its
 *    blocked read becomes the lingering close's read (aio_cancel cannot stop a request a helper is
 *    already running: AIO_NOTCANCELED); the drain deadline wakes what is left with SHUT_RDWR. Timeouts
 *    (header, idle, send, linger: opts.limits, as the reactor enforces them) work the same way: the
 *    connection is marked, shutdown() ends the blocked request, and its completion closes it.
 */
import { readdirSync } from 'node:fs';
import { loadApp } from '../../apps/index.js';
import { createService, FEED_OUT_BOUND, FeedResult, stallWarner, type Deferred, type Service } from '../../apps/service.js';
import { OutBuf } from '../../protocols/outbuf.js';
import {
  EAGAIN, ECONNABORTED, EMFILE, ENFILE, MSG_DONTWAIT, O_CLOEXEC, O_RDONLY, SHUT_RD, SHUT_RDWR, SHUT_WR, SOCK_CLOEXEC,
  eagain, errnoName, ffi, listenTcp, localAddress, setNoDelay, syscallCounts,
} from '../../sys/index.js';
import { AioQueue, LIO_READ, LIO_WRITE, aioInit, bufferAddress } from '../../sys/aio.js';
import type { Engine, EngineOptions, EngineStats, Listening } from '../types.js';
import { performance } from 'node:perf_hooks'; // the global is a lazy accessor: a getter call per use

const READ_SIZE = 64 * 1024;
/** Yield to Node's loop (signals, timers, promises) at least this often, as the reactor does. */
const YIELD_MS = 50;
/** Longest aio_suspend() wait: accept4() is polled between waits, so this bounds accept latency. */
const ACCEPT_POLL_MS = 2;
const ACCEPT_BATCH = 64;
/** How often timeouts are checked (as the reactor's sweep). */
const SWEEP_MS = 250;
/** A lingering close ends after lingerMs without input or LINGER_TOTAL lingerMs in all (reactor.ts). */
const LINGER_TOTAL = 15;
/**
 * Largest single aio_write: a blocking write() returns only once all of it is queued, so bounding it
 * lets the send timeout see progress from a slow but live reader.
 */
const WRITE_CHUNK = 256 * 1024;
/**
 * Measured here (2 vCPU VM, glibc 2.36; idle keep-alive connections, then one client's serial
 * requests): 250 idle -> 5% CPU idle, 0.24 ms per request; 1,000 -> 30%, 1.9 ms; 2,000 -> 54%,
 * 7.7 ms (epoll with 2,000 idle: 0.5%, 0.3 ms). Each wake pays for every request in flight.
 */
export const DEFAULT_AIO_MAX_CONN = 256;
const MAX_AIO_MAX_CONN = 4096;
/** glibc's helper-thread cap, raised from its default of 20 (see the file comment); our per-loop cap is the real bound. */
const AIO_THREADS = 65536;
/** After the drain deadline, how long shut-down connections get to see their request complete. */
const FORCE_GRACE_MS = 2000;

const F_OPEN = 1;
/** Close once the request in flight (and any queued output) is done. */
const F_CLOSING = 2;
/** An async request is being handled: no read is issued until it resolves. */
const F_PENDING = 4;
/** Held input may hold complete requests (after a deferred answer): feed it before reading. */
const F_REFEED = 8;
/** Lingering close: write side shut, reads discarded until EOF or lingerMs (see finish()). */
const F_LINGER = 16;
/** Timed out: shutdown() was issued; the completion of the request in flight closes the connection. */
const F_EXPIRE = 32;
/** ... and answers first (HTTP 408 after the header timeout). */
const F_ANSWER = 64;

const OP_NONE = 0, OP_READ = 1, OP_WRITE = 2;

/** Connections per loop: --max-connections (limits.maxConnections) when set, else DEFAULT_AIO_MAX_CONN. */
export function aioMaxConn(opts: EngineOptions): number {
  const n = opts.limits.maxConnections;
  if (n <= 0) return DEFAULT_AIO_MAX_CONN;
  if (n > MAX_AIO_MAX_CONN) {
    throw new Error(
      `the aio engine serves at most ${MAX_AIO_MAX_CONN} connections per loop (--max-connections ${n}): each holds a ` +
        'glibc helper thread and every wake costs O(n^2) in requests in flight; use --workers for more',
    );
  }
  return n;
}

function taskCount(): number {
  try {
    return readdirSync('/proc/self/task').length;
  } catch {
    return 1;
  }
}

let aioInitDone = false;

export class AioEngine implements Engine {
  readonly name = 'aio';
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private rejectDone!: (e: unknown) => void;

  private service!: Service;
  private appName = '';
  private queue!: AioQueue;
  private listenFd = -1;
  private reserveFd = -1;
  private maxConn = DEFAULT_AIO_MAX_CONN;
  private baselineThreads = 1;

  // ---- connection table, indexed by slot (0 .. maxConn-1) ----
  private fdOf!: Int32Array;
  private flags!: Uint8Array;
  private op!: Uint8Array;
  private gen!: Uint32Array;
  private inbuf!: (Buffer | null)[];
  /** The buffer of the write in flight (kept referenced: a helper thread reads it), its address, progress. */
  private wbuf!: (Buffer | null)[];
  private wAddr!: Float64Array;
  private wOff!: Int32Array;
  private wLen!: Int32Array;
  /** Output produced while a write was in flight, written after it. */
  private wq!: (Buffer | null)[];
  /** Timestamps (performance.now()): last read activity, first byte of a partial request, last write progress. */
  private activeAt!: Float64Array;
  private partialSince!: Float64Array;
  private wroteAt!: Float64Array;
  private now = 0;
  private lastSweep = 0;
  private free!: Int32Array;
  private freeTop = 0;
  /** Read buffers, READ_SIZE per slot, in one block that outlives every request. */
  private readArena!: Buffer;
  private readBase = 0;

  private readonly out = new OutBuf(READ_SIZE);
  private readonly fr = new FeedResult();
  private pendingAsync = 0;
  private running = false;
  private stopping = false;
  private forced = false;
  private closed = false;
  private stopDeadline = 0;
  private warned = new Set<string>();

  // ---- stats ----
  private current = 0;
  private peak = 0;
  private total = 0;
  private refused = 0;
  private requests = 0;
  private bytesIn = 0;
  private bytesOut = 0;
  private wakeups = 0;

  constructor(private readonly opts: EngineOptions, private readonly reusePort = false) {
    this.done = new Promise((res, rej) => {
      this.resolveDone = res;
      this.rejectDone = rej;
    });
    this.fr.maxOut = FEED_OUT_BOUND; // pipelined requests for large answers: the rest is F_REFEED, fed after the write
  }

  async start(): Promise<Listening> {
    const o = this.opts;
    this.maxConn = aioMaxConn(o);
    const app = await loadApp(o.app);
    this.appName = app.name;
    this.service = createService(app, {
      ...o.service,
      onStall: stallWarner('aio', o.quiet, () => this.service.stalls.count),
    });
    this.baselineThreads = taskCount();
    if (!aioInitDone) {
      // Process-wide and only effective before the first request (glibc sizes its pool once).
      aioInit(AIO_THREADS, this.maxConn);
      aioInitDone = true;
    }
    const n = this.maxConn;
    this.queue = new AioQueue(n);
    this.fdOf = new Int32Array(n).fill(-1);
    this.flags = new Uint8Array(n);
    this.op = new Uint8Array(n);
    this.gen = new Uint32Array(n);
    this.inbuf = new Array<Buffer | null>(n).fill(null);
    this.wbuf = new Array<Buffer | null>(n).fill(null);
    this.wAddr = new Float64Array(n);
    this.wOff = new Int32Array(n);
    this.wLen = new Int32Array(n);
    this.wq = new Array<Buffer | null>(n).fill(null);
    this.activeAt = new Float64Array(n);
    this.partialSince = new Float64Array(n);
    this.wroteAt = new Float64Array(n);
    this.free = new Int32Array(n);
    for (let i = 0; i < n; i++) this.free[i] = n - 1 - i;
    this.freeTop = n;
    // Not zeroed: pages are touched only by reads that fill them.
    this.readArena = Buffer.allocUnsafeSlow(n * READ_SIZE);
    this.readBase = bufferAddress(this.readArena);
    this.reserveFd = this.openReserve();

    this.listenFd = listenTcp({ host: o.host, port: o.port, backlog: o.backlog, reusePort: this.reusePort, nonBlocking: true });
    const addr = localAddress(this.listenFd);
    this.running = true;
    setImmediate(this.turn);
    return { host: addr.host, port: addr.port, engine: this.name };
  }

  private openReserve(): number {
    try {
      return ffi.open('/dev/null', O_RDONLY | O_CLOEXEC, 0);
    } catch {
      return -1;
    }
  }

  // ---------------------------------------------------------------- the loop

  private readonly turn = (): void => {
    if (!this.running) return;
    try {
      const t0 = performance.now();
      for (;;) {
        if (this.stopping && this.stopStep()) return;
        const left = YIELD_MS - (performance.now() - t0);
        if (left <= 0) break;
        if (!this.stopping) this.acceptAll();
        const timeout = this.pendingAsync > 0 ? 1 : Math.min(ACCEPT_POLL_MS, left);
        const woke = this.queue.wait(timeout);
        this.wakeups++;
        this.now = performance.now();
        if (woke) this.queue.reap(this.onDone);
        if (this.now - this.lastSweep >= SWEEP_MS) this.sweep();
        if (this.pendingAsync > 0) break;
      }
    } catch (e) {
      this.running = false;
      this.rejectDone(e); // first: shutdownNow() resolves, and the first settlement wins
      this.shutdownNow();
      return;
    }
    setImmediate(this.turn);
  };

  private acceptAll(): void {
    for (let k = 0; k < ACCEPT_BATCH; k++) {
      // No SOCK_NONBLOCK: glibc's helper threads do blocking read()/write() on the connection.
      const fd = ffi.accept4(this.listenFd, null, null, SOCK_CLOEXEC);
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
      if (this.freeTop === 0) {
        this.refuse(fd);
        continue;
      }
      setNoDelay(fd);
      const slot = this.free[--this.freeTop]!;
      this.fdOf[slot] = fd;
      this.flags[slot] = F_OPEN;
      this.op[slot] = OP_NONE;
      this.activeAt[slot] = this.now || performance.now();
      this.partialSince[slot] = 0;
      this.current++;
      this.total++;
      if (this.current > this.peak) this.peak = this.current;
      this.startRead(slot);
    }
  }

  /** Past the connection cap: answer "too many" in the app's protocol and close (RELIABILITY.md 1). */
  private refuse(fd: number): void {
    this.refused++;
    this.warnOnce(
      'cap',
      `${this.maxConn} connections reached (--max-connections; 256 by default on aio): each one keeps a read in flight on a glibc helper ` +
        `thread and aio_suspend costs O(n^2) in requests in flight; refusing further connections until some close`,
    );
    const out = this.out;
    this.service.refuse(out);
    if (out.len > 0) ffi.write(fd, out.buf, out.len); // a fresh socket's buffer takes a few bytes without blocking
    out.reset();
    ffi.shutdown(fd, SHUT_WR);
    // Read what the client already sent, so close() sends FIN rather than RST (which could drop our answer).
    out.ensure(READ_SIZE);
    ffi.recv(fd, out.buf, READ_SIZE, MSG_DONTWAIT);
    ffi.close(fd);
  }

  private shedWithReserve(e: number): void {
    this.warnOnce('emfile', `accept4() failed: ${errnoName(e)}: out of file descriptors; shedding new connections (raise ulimit -n)`);
    if (this.reserveFd < 0) return;
    ffi.close(this.reserveFd);
    const fd = ffi.accept4(this.listenFd, null, null, SOCK_CLOEXEC);
    if (fd >= 0) {
      ffi.close(fd);
      this.refused++;
    }
    this.reserveFd = this.openReserve();
  }

  // ---------------------------------------------------------------- requests

  private startRead(slot: number): void {
    if (this.stopping && this.inbuf[slot] === null && !(this.flags[slot]! & F_LINGER)) {
      // Draining: the connection is done. Lingering, not close(2): the peer may have sent more already
      // (an echo client streams), and closing on unread input is an RST that destroys the answer we
      // just wrote before the peer reads it.
      this.finish(slot);
      return;
    }
    const r = this.queue.submit(slot, LIO_READ, this.fdOf[slot]!, this.readBase + slot * READ_SIZE, READ_SIZE);
    if (r < 0) {
      this.warnOnce(`aio_read:${-r}`, `aio_read() failed: ${errnoName(-r)}; closing that connection`);
      this.closeConn(slot);
      return;
    }
    this.op[slot] = OP_READ;
  }

  /** Write data[0,len) after whatever is in flight; the bytes are copied (the caller's buffer is reused). */
  private startWrite(slot: number, data: Buffer, len: number): void {
    if (this.op[slot] !== OP_NONE) {
      const q = this.wq[slot];
      this.wq[slot] = q === null ? Buffer.from(data.subarray(0, len)) : Buffer.concat([q, data.subarray(0, len)]);
      return;
    }
    let b = this.wbuf[slot];
    if (b === null || b.length < len) {
      b = Buffer.allocUnsafeSlow(Math.max(len, 4096));
      this.wbuf[slot] = b;
      this.wAddr[slot] = bufferAddress(b);
    }
    data.copy(b, 0, 0, len);
    this.wOff[slot] = 0;
    this.wLen[slot] = len;
    this.submitWrite(slot);
  }

  private submitWrite(slot: number): void {
    const off = this.wOff[slot]!;
    const len = Math.min(this.wLen[slot]! - off, WRITE_CHUNK);
    this.wroteAt[slot] = this.now || performance.now();
    const r = this.queue.submit(slot, LIO_WRITE, this.fdOf[slot]!, this.wAddr[slot]! + off, len);
    if (r < 0) {
      this.warnOnce(`aio_write:${-r}`, `aio_write() failed: ${errnoName(-r)}; closing that connection`);
      this.closeConn(slot);
      return;
    }
    this.op[slot] = OP_WRITE;
  }

  /** A request completed: `res` is the byte count or -errno (ECANCELED, ECONNRESET, EPIPE ...). */
  private readonly onDone = (slot: number, res: number): void => {
    const op = this.op[slot]!;
    this.op[slot] = OP_NONE;
    const fl = this.flags[slot]!;
    if (this.forced || !(fl & F_OPEN)) {
      this.closeConn(slot);
      return;
    }
    if (fl & F_EXPIRE) {
      if (res > 0) (op === OP_READ ? (this.bytesIn += res) : (this.bytesOut += res));
      this.onExpired(slot);
      return;
    }
    if (op === OP_READ) {
      if (res > 0 && fl & F_LINGER) {
        this.bytesIn += res;
        this.activeAt[slot] = this.now; // still sending, so still reading what precedes our FIN
        this.startRead(slot); // lingering: discard until the peer's FIN
      } else if (res > 0 && !(fl & F_CLOSING)) {
        this.bytesIn += res;
        this.activeAt[slot] = this.now;
        this.onData(slot, res);
      } else this.closeConn(slot); // 0: FIN (or our shutdown() on a timeout); < 0: reset, cancelled
      return;
    }
    if (res < 0) {
      this.closeConn(slot);
      return;
    }
    this.bytesOut += res;
    this.wOff[slot]! += res;
    if (this.wOff[slot]! < this.wLen[slot]!) {
      this.submitWrite(slot); // a short write (or the next chunk): send the rest
      return;
    }
    if (this.wbuf[slot]!.length > READ_SIZE) this.wbuf[slot] = null; // do not pin a big buffer on an idle connection
    this.afterWrite(slot);
  };

  private onData(slot: number, n: number): void {
    const start = slot * READ_SIZE;
    const held = this.inbuf[slot];
    if (held === null) {
      this.feed(slot, this.readArena, start, start + n);
      return;
    }
    const buf = Buffer.allocUnsafe(held.length + n);
    held.copy(buf, 0);
    this.readArena.copy(buf, held.length, start, start + n);
    this.inbuf[slot] = null;
    this.feed(slot, buf, 0, buf.length);
  }

  /** Run the service over buf[start,end) and act on what it says. */
  private feed(slot: number, buf: Buffer, start: number, end: number): void {
    const r = this.fr, out = this.out;
    r.reset();
    this.service.feed(buf, start, end, out, r);
    this.requests += r.requests;
    // Copied: the read buffer is reused by the next aio_read.
    if (r.next < end) {
      // The header timeout runs from a request's first byte, not its latest (slowloris). With `more`
      // (feed() stopped at its output bound) the rest may hold complete requests: feed it after the write.
      if (r.more) {
        this.partialSince[slot] = 0;
        this.flags[slot]! |= F_REFEED;
      } else if (r.next !== start || this.partialSince[slot] === 0) this.partialSince[slot] = this.now || performance.now();
      this.inbuf[slot] = Buffer.from(buf.subarray(r.next, end));
    } else this.partialSince[slot] = 0;
    if (r.close) this.flags[slot]! |= F_CLOSING;
    const wrote = out.len > 0;
    if (wrote) this.startWrite(slot, out.buf, out.len);
    out.reset();
    if (r.pending !== null) {
      this.flags[slot]! |= F_PENDING;
      this.pendingAsync++;
      const g = this.gen[slot]!;
      r.pending.then(
        (d) => this.onDeferred(slot, g, d),
        () => this.onDeferred(slot, g, null),
      );
      return;
    }
    if (!wrote && this.op[slot] === OP_NONE) this.afterWrite(slot);
  }

  private onDeferred(slot: number, g: number, d: Deferred | null): void {
    this.pendingAsync--;
    if (this.gen[slot] !== g || !(this.flags[slot]! & F_OPEN)) return; // closed meanwhile
    this.flags[slot]! &= ~F_PENDING;
    if (d === null || d.close) this.flags[slot]! |= F_CLOSING;
    if (!(this.flags[slot]! & F_CLOSING) && this.inbuf[slot] !== null) this.flags[slot]! |= F_REFEED;
    if (d !== null && d.bytes.length > 0) this.startWrite(slot, d.bytes, d.bytes.length);
    else if (this.op[slot] === OP_NONE) this.afterWrite(slot);
  }

  /** Nothing in flight on the slot: write queued output, or wait for a pending answer, or close, or read on. */
  private afterWrite(slot: number): void {
    const q = this.wq[slot];
    if (q !== null) {
      this.wq[slot] = null;
      this.startWrite(slot, q, q.length);
      return;
    }
    const fl = this.flags[slot]!;
    if (fl & F_PENDING) return;
    if (fl & F_CLOSING) {
      this.finish(slot);
      return;
    }
    if (fl & F_REFEED) {
      this.flags[slot]! &= ~F_REFEED;
      const held = this.inbuf[slot]!;
      this.inbuf[slot] = null;
      this.feed(slot, held, 0, held.length);
      return;
    }
    this.startRead(slot);
  }

  /**
   * Close after the last response, as the reactor does (nginx's lingering close): close(2) with unread
   * input would send an RST that can destroy the response in the peer's buffer, so shut our write side
   * (FIN after the response) and read and discard until the peer's FIN or lingerMs.
   */
  private finish(slot: number): void {
    if (this.opts.limits.lingerMs <= 0) return this.closeConn(slot);
    ffi.shutdown(this.fdOf[slot]!, SHUT_WR);
    this.flags[slot] = (this.flags[slot]! | F_LINGER) & ~F_CLOSING;
    this.inbuf[slot] = null;
    this.activeAt[slot] = this.partialSince[slot] = this.now || performance.now(); // partialSince: when the linger began
    this.startRead(slot);
  }

  /** Timeouts, every SWEEP_MS (the same rules as the reactor's sweep). */
  private sweep(): void {
    const now = this.now;
    this.lastSweep = now;
    const { headerTimeoutMs, idleTimeoutMs, sendTimeoutMs, lingerMs } = this.opts.limits;
    for (let slot = 0; slot < this.maxConn; slot++) {
      const fl = this.flags[slot]!;
      if (!(fl & F_OPEN) || fl & (F_EXPIRE | F_PENDING)) continue;
      const op = this.op[slot]!;
      if (fl & F_LINGER) {
        if (now - this.activeAt[slot]! > lingerMs || now - this.partialSince[slot]! > lingerMs * LINGER_TOTAL) this.expire(slot, false);
      } else if (op === OP_WRITE) {
        // Slow reader: the write in flight has not completed for the send timeout.
        if (now - this.wroteAt[slot]! > sendTimeoutMs) this.expire(slot, false);
      } else if (this.inbuf[slot] !== null) {
        if (now - this.partialSince[slot]! > headerTimeoutMs) this.expire(slot, true);
      } else if (op === OP_READ && now - this.activeAt[slot]! > idleTimeoutMs) {
        this.expire(slot, false);
      }
    }
  }

  /**
   * A timeout fired. The request in flight blocks a helper thread in read() or write(); shutdown()
   * makes it return, and its completion (onExpired) answers or closes.
   */
  private expire(slot: number, answer: boolean): void {
    this.flags[slot]! |= F_EXPIRE | (answer ? F_ANSWER : 0);
    if (!this.queue.busy(slot)) return this.onExpired(slot);
    ffi.shutdown(this.fdOf[slot]!, this.op[slot] === OP_WRITE ? SHUT_RDWR : SHUT_RD);
  }

  private onExpired(slot: number): void {
    const fl = this.flags[slot]!;
    this.flags[slot] = fl & ~(F_EXPIRE | F_ANSWER);
    if (!(fl & F_ANSWER)) return this.closeConn(slot);
    // Header timeout: answer (HTTP 408; nothing for RESP and echo), then close lingering.
    this.inbuf[slot] = null;
    this.partialSince[slot] = 0;
    this.flags[slot]! |= F_CLOSING;
    this.service.timeout(this.out);
    const len = this.out.len;
    if (len > 0) this.startWrite(slot, this.out.buf, len);
    this.out.reset();
    if (len === 0) this.closeConn(slot);
  }

  /** Close a connection with nothing in flight (never earlier: a helper thread may still use the fd and buffers). */
  private closeConn(slot: number): void {
    if (!(this.flags[slot]! & F_OPEN)) return;
    if (this.queue.busy(slot)) {
      this.flags[slot]! |= F_CLOSING;
      return;
    }
    ffi.close(this.fdOf[slot]!);
    this.flags[slot] = 0;
    this.op[slot] = OP_NONE;
    this.fdOf[slot] = -1;
    this.gen[slot]!++;
    this.inbuf[slot] = null;
    this.wq[slot] = null;
    this.partialSince[slot] = 0;
    this.free[this.freeTop++] = slot;
    this.current--;
  }

  // ---------------------------------------------------------------- stop

  /** Stop accepting; wake idle connections so they close; let busy ones finish until drainMs. */
  stop(): Promise<void> {
    if (!this.running && !this.closed) return Promise.resolve(); // never started
    if (!this.running || this.stopping) return this.done;
    this.stopping = true;
    this.stopDeadline = performance.now() + this.opts.drainMs;
    this.service.draining = true;
    ffi.close(this.listenFd);
    this.listenFd = -1;
    for (let slot = 0; slot < this.maxConn; slot++) {
      const fl = this.flags[slot]!;
      if (!(fl & F_OPEN) || this.op[slot] !== OP_READ || fl & (F_PENDING | F_LINGER) || this.inbuf[slot] !== null) continue;
      // An idle connection: its read runs in a helper thread (aio_cancel cannot stop a running request).
      // Idle as far as the app knows, but the kernel may still hold our last answer and the peer's next
      // bytes, and a close with unread input would RST and drop the answer. So close lingering: FIN
      // after the answer; the read in flight now discards until the peer's FIN (or lingerMs).
      ffi.shutdown(this.fdOf[slot]!, SHUT_WR);
      this.flags[slot] = fl | F_LINGER;
      this.activeAt[slot] = this.partialSince[slot] = performance.now();
    }
    return this.done;
  }

  /** One step of the drain; true once everything is closed. */
  private stopStep(): boolean {
    if (this.current === 0) {
      this.shutdownNow();
      return true;
    }
    const t = performance.now();
    if (!this.forced && t >= this.stopDeadline) {
      this.forced = true;
      for (let slot = 0; slot < this.maxConn; slot++) {
        if (!(this.flags[slot]! & F_OPEN)) continue;
        if (this.queue.busy(slot)) ffi.shutdown(this.fdOf[slot]!, SHUT_RDWR); // wakes a blocked read() or write()
        else this.closeConn(slot);
      }
    }
    if (this.forced && t >= this.stopDeadline + FORCE_GRACE_MS) {
      this.warnOnce('stuck', `${this.queue.live} AIO requests did not complete after shutdown(); leaving their fds open`);
      this.shutdownNow();
      return true;
    }
    return false;
  }

  private shutdownNow(): void {
    if (this.closed) return;
    this.closed = true;
    this.running = false;
    // Close what has nothing in flight; a request still running keeps its fd and memory (never reused).
    for (let slot = 0; slot < this.maxConn; slot++) if (this.flags[slot]! & F_OPEN && !this.queue.busy(slot)) this.closeConn(slot);
    if (this.queue.live > 0) stuck.push(this.queue, this.readArena, this.wbuf);
    if (this.listenFd >= 0) ffi.close(this.listenFd);
    this.listenFd = -1;
    if (this.reserveFd >= 0) ffi.close(this.reserveFd);
    this.reserveFd = -1;
    this.resolveDone();
  }

  private warnOnce(key: string, msg: string): void {
    if (this.opts.quiet || this.warned.has(key)) return;
    this.warned.add(key);
    process.stderr.write(`iolab aio: ${msg}\n`);
  }

  async stats(): Promise<EngineStats> {
    const st = this.service?.stalls ?? { count: 0, maxMs: 0, byRoute: new Map<string, number>() };
    return {
      engine: this.name,
      app: this.appName || this.opts.app,
      protocol: this.service?.protocol ?? 'unknown',
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
      // This loop plus the threads the process gained since start: glibc's AIO helpers.
      threads: 1 + Math.max(0, taskCount() - this.baselineThreads),
      processes: 1,
    };
  }
}

/** Memory of requests that never completed: kept referenced so it is never freed under a helper thread. */
const stuck: unknown[] = [];
