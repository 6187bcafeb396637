/**
 * The blocking connection loop shared by the `threads` and `prefork` engines: one thread of control
 * owns one connection and parks in the kernel on each call, as Apache's worker and prefork MPMs do:
 *
 *     for (;;) { n = read(fd);  service.feed(buf, out);  write(fd, out); }   // read and write park
 *
 * There is no readiness loop and no O_NONBLOCK: a slow client holds its thread, never the others.
 *
 * Deadlines (ConnectionLimits). A parked read() or write() has none of its own, so each phase gets one
 * from what a blocking socket offers:
 *  - idle keep-alive and slow reader: SO_RCVTIMEO = idle timeout and SO_SNDTIMEO = send timeout, set
 *    once on the listening socket and inherited by every accepted one (sk_clone_lock() copies the
 *    listener's struct sock), so they cost no syscall per connection or request. A read() parked
 *    that long with nothing arriving returns EAGAIN (socket(7)): close. A write() that moves no byte
 *    for that long returns EAGAIN: the peer is not reading; close. Both restart on every call, which
 *    is what "no progress for N ms" means.
 *  - header timeout: it runs from the FIRST byte of a partial request, and SO_RCVTIMEO restarts on
 *    every read (a slowloris byte every few seconds would never trip it), so while a partial request
 *    is held the thread first waits in poll(2) on its one fd for the time left, then reads. Still one
 *    fd per thread, still parked in the kernel: the model stays blocking I/O, and the extra poll is
 *    paid only on the rare partial-request path, not per request.
 *  - lingering close (as the reactor's finish(), nginx's lingering_close): when we close first, shut
 *    the write side, read and discard until the peer's FIN or `lingerMs` of quiet (poll(2) again),
 *    then close, so unread input does not turn close(2) into an RST that destroys the last answer.
 *
 * Two engine-specific hooks keep the loop the same for both engines:
 *  - `tickMs > 0` (prefork): SO_RCVTIMEO/SO_SNDTIMEO are a tick of tickMs instead, so a parked read
 *    or write returns EAGAIN that often; the loop then yields to Node's own loop (IPC, signals),
 *    checks its deadlines against the clock, and parks again. A busy connection also yields every
 *    YIELD_MS. A child process has no other way to hear its parent while it sits in read().
 *  - `tickMs = 0` (threads): the thread parks for as long as its deadline allows; stop() wakes a
 *    thread parked between requests from outside, by shutting the socket's write side (the first step
 *    of a lingering close: the client's FIN in reply ends the read) (see threads/engine.ts).
 *
 * Output is bounded per feed (FeedResult.maxOut = FEED_OUT_BOUND) and written before the rest of the
 * input is fed (FeedResult.more), so a client that pipelines requests for large answers and does not
 * read costs one socket buffer and one bounded OutBuf, not gigabytes. File bodies (FeedResult.file)
 * go out with sendfile(2), or pread(2) + write(2), on the blocking socket.
 *
 * Counters go to a Float64Array row (in a SharedArrayBuffer for threads, so the main thread reads them
 * while this thread sits in read(); a plain array for prefork, sent over IPC on request).
 */
import { readFileSync } from 'node:fs';
import { FEED_OUT_BOUND, type Deferred, type FeedResult, type Service } from '../../apps/service.js';
import { OutBuf } from '../../protocols/outbuf.js';
import { writeError as writeHttpError } from '../../protocols/http/response.js';
import { writeError as writeRespError } from '../../protocols/resp/encode.js';
import {
  EAGAIN, EINTR, MSG_DONTWAIT, MSG_NOSIGNAL, POLLIN, SHUT_WR, SOL_SOCKET, SYSCALLS, bindCounters, ffi,
} from '../../sys/index.js';
import type { FileSend } from '../../sys/file.js';
import { COPY_CHUNK, FILE_BLOCKED, FILE_DONE, pumpFile } from '../filebody.js';
import type { ConnectionLimits } from '../types.js';
import { performance } from 'node:perf_hooks'; // the global is a lazy accessor: a getter call per use

// ---- a stats row: the same layout in every thread and process ----
export const ROW_REQUESTS = 0;
export const ROW_BYTES_IN = 1;
export const ROW_BYTES_OUT = 2;
export const ROW_EAGAIN = 3;
/** Returns from a parked call (read, accept, the idle wait for a connection). */
export const ROW_WAKEUPS = 4;
/** Connections this thread or process has served (prefork: its share of connections.total). */
export const ROW_CONNS = 5;
/** SYSCALLS.length slots follow: the sys layer's per-binding call counts. */
export const ROW_SYSCALLS = 6;
export const ROW_WIDTH = ROW_SYSCALLS + SYSCALLS.length;

/**
 * Count this thread's (or process's) syscalls straight into its row from now on: each thread has its
 * own sys module instance, whose counters move into the row (sys/counters.ts bindCounters), so the
 * main thread reads current counts without asking and nothing is copied per request.
 */
export function countInto(row: Float64Array): void {
  bindCounters(row.subarray(ROW_SYSCALLS, ROW_SYSCALLS + SYSCALLS.length), row.subarray(ROW_EAGAIN, ROW_EAGAIN + 1));
}

/** Add row `src` into `dst` (both ROW_WIDTH long). */
export function addRow(dst: Float64Array, src: ArrayLike<number>): void {
  for (let i = 0; i < ROW_WIDTH; i++) dst[i]! += src[i]!;
}

/** The syscalls part of a row as the name -> count map EngineStats carries. */
export function rowSyscalls(row: Float64Array): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < SYSCALLS.length; i++) {
    const v = row[ROW_SYSCALLS + i]!;
    if (v > 0) out[SYSCALLS[i]!] = v;
  }
  return out;
}

const READ_SIZE = 64 * 1024;
/** prefork: how long a busy connection may go without letting Node's loop run (IPC, signals). */
const YIELD_MS = 50;
/**
 * A lingering close ends after lingerMs of quiet, or this many lingerMs in all (as the reactor:
 * nginx's lingering_timeout and lingering_time).
 */
export const LINGER_TOTAL = 15;
/** poll(2) takes an int of milliseconds. */
const POLL_MAX_MS = 0x7fffffff;

/** How serve() ends a connection: close(2) at once, or a lingering close first (we close first). */
const END_CLOSE = 0;
const END_LINGER = 1;

/** What turn() asks of serve(): read again, end, or wait for something first (slow()). */
const T_READ = 0;
const T_END = 1;
/** The header deadline of a partial request passed: 408 (HTTP), lingering close. */
const T_EXPIRE = 2;
/** prefork: an SO_RCVTIMEO tick passed with nothing read: yield to Node's loop. */
const T_TICK = 3;
/** prefork: a busy connection has not yielded to Node's loop for YIELD_MS. */
const T_YIELD = 4;
/** The answer's write stalled (prefork ticks): `wait`, then the rest of the feed. */
const T_WRITE = 5;
/** The file body's send stalled (prefork ticks): `wait`, then the rest of the feed. */
const T_FILE = 6;
/** The service answers asynchronously (FeedResult.pending). */
const T_PENDING = 7;

/** Where answer() is within one feed: feed and write, the file body, what follows. */
const PH_FEED = 0;
const PH_FILE = 1;
const PH_AFTER = 2;

export interface BlockingConnOptions {
  /** 0: not stopping; 1: draining (answer what is in flight, then close); 2: force (close now). */
  stopLevel: () => number;
  /** threads: about to park in read() between requests (stop() may wake it by shutting our write side). */
  park?: () => void;
  /** threads: back from that read(). True when stop() shut our write side meanwhile: linger, then close. */
  unpark?: () => boolean;
  /** > 0 when the socket has SO_RCVTIMEO/SO_SNDTIMEO of this many ms (prefork); 0 otherwise. */
  tickMs: number;
  /** Header, idle and send timeouts, and the lingering close (engines/types.ts). */
  limits: ConnectionLimits;
}

const tick = (): Promise<void> => new Promise((res) => setImmediate(res));

/** One thread's (or process's) connection server: buffers reused for every connection it serves. */
export class BlockingConn {
  private readonly rbuf = Buffer.allocUnsafe(READ_SIZE);
  private readonly out = new OutBuf(READ_SIZE);
  /** struct pollfd {int fd; short events; short revents;}: the one fd this thread waits on. */
  private readonly pfd = Buffer.alloc(8);
  /** pread() scratch for file bodies sent by copying (--sendfile off); allocated on first use. */
  private copyBuf: Buffer | null = null;
  private readonly sent = { n: 0 };
  private lastYield = performance.now();

  // ---- the connection being served (one at a time), kept here so turn() can return mid-request ----
  /** Input held from an earlier read: the start of a request not complete yet. */
  private held: Buffer | null = null;
  /** When the held partial request began: its header timeout runs from its first byte. */
  private partialSince = 0;
  /** When the connection went idle between requests (prefork checks its ticks against it). */
  private idleSince = 0;
  /** How the connection ends: END_CLOSE, or END_LINGER when we close first. */
  private ending = END_CLOSE;
  /** The input being answered: buf[start, end) (rbuf, or held bytes followed by the new ones). */
  private buf: Buffer = this.rbuf;
  private start = 0;
  private end = 0;
  /** Where answer() goes on within the current feed: PH_FEED, PH_FILE or PH_AFTER. */
  private phase = PH_FEED;
  /** The write or file body serve() awaits for T_WRITE and T_FILE. */
  private wait: Promise<boolean> | null = null;

  constructor(
    private readonly service: Service,
    private readonly fr: FeedResult,
    readonly row: Float64Array,
    private readonly o: BlockingConnOptions,
  ) {
    fr.maxOut = FEED_OUT_BOUND; // one feed's output is bounded; the rest of the input waits (r.more)
    fr.acceptsFile = true; // file bodies are sent here (sendFile), not copied into `out`
    countInto(row); // one connection server per thread or process: its syscalls are the row's
  }

  /**
   * Serve `fd` until EOF, error, a timeout, a close the protocol asks for, or stop. Does not close the
   * fd (the engine does, after its own bookkeeping), but when we are the side that closes first it
   * returns after a lingering close. Synchronous until a request is answered asynchronously (the
   * service's `pending`: awaited right here, the thread has nothing else to do) or, on prefork, until
   * a timeout tick.
   *
   * Why the loop is split in three (serve, turn, slow). Each connection thread is an isolate that
   * compiles its own optimised code, on its own time slice (tiering.ts). A long-running loop is only
   * optimised by on-stack replacement, which V8 throws away when the connection's last turn takes a
   * path the loop had not seen (a reset connection: read() fails, and the errno read had no type
   * feedback): the next connection on the thread ran baseline code again and
   * paid another synchronous OSR compile of the whole loop (~70 ms of CPU, a p99 of 85-150 ms at 16
   * connections). So the per-request work is turn(), a plain function that returns after each read and
   * is compiled once per isolate like any hot function; the rare waits (async answers, stalled sockets,
   * prefork ticks, the header timeout) are slow(); serve() only strings them together.
   */
  async serve(fd: number): Promise<void> {
    this.held = null;
    this.partialSince = 0;
    this.idleSince = performance.now();
    this.ending = END_CLOSE;
    this.row[ROW_CONNS]!++;
    try {
      for (;;) {
        const t = this.turn(fd);
        if (t === T_READ) continue;
        if (t === T_END || !(await this.slow(fd, t))) break;
      }
      if (this.ending === END_LINGER) await this.linger(fd);
    } finally {
      this.out.reset(); // a failed write leaves bytes behind; the next connection must not see them
      this.held = null;
      this.wait = null;
      this.buf = this.rbuf;
      this.o.unpark?.();
    }
  }

  /**
   * One turn, synchronous: wait for input (parked in read(), or first in poll() for a partial request's
   * header deadline), then answer what came. Returns T_READ to go round again, T_END, or what slow()
   * must wait for.
   */
  private turn(fd: number): number {
    const o = this.o;
    if (this.held === null) {
      // Between requests: a stopping engine closes here rather than wait for another request.
      o.park?.();
      const stop = o.stopLevel();
      if (stop !== 0) {
        o.unpark?.();
        this.ending = stop === 1 ? END_LINGER : END_CLOSE; // past the drain deadline: close now
        return T_END;
      }
      // prefork's idle timeout (threads: SO_RCVTIMEO is the idle timeout, see read() below).
      if (o.tickMs > 0 && performance.now() - this.idleSince >= o.limits.idleTimeoutMs) return T_END;
    } else {
      const left = this.partialSince + o.limits.headerTimeoutMs - performance.now();
      if (left <= 0) return T_EXPIRE;
      // threads: wait for the rest no longer than the header deadline (prefork: its ticks check it).
      if (o.tickMs === 0 && this.waitReadable(fd, left) === 0) return T_READ;
    }
    const held = this.held;
    const n = ffi.read(fd, this.rbuf, READ_SIZE);
    if (held === null && o.unpark?.() === true) {
      // stop() began our lingering close while we sat in read(): what came is discarded.
      this.ending = n > 0 ? END_LINGER : END_CLOSE;
      return T_END;
    }
    this.row[ROW_WAKEUPS]!++;
    if (n <= 0) {
      if (n === -EAGAIN) {
        // prefork: an SO_RCVTIMEO tick with nothing read; let IPC and signals in (deadlines are checked
        // above). threads: SO_RCVTIMEO passed with nothing read. Between requests that is the idle
        // timeout (nothing to say: close); with a partial request the header deadline is checked above.
        if (o.tickMs > 0) return T_TICK;
        return held === null ? T_END : T_READ;
      }
      if (n === -EINTR) return T_READ;
      return T_END; // 0: EOF (every request already answered: responses are written before the next read); <0: ECONNRESET ...
    }
    this.row[ROW_BYTES_IN]! += n;
    if (held !== null) {
      const buf = Buffer.allocUnsafe(held.length + n);
      held.copy(buf, 0);
      this.rbuf.copy(buf, held.length, 0, n);
      this.buf = buf;
      this.end = buf.length;
      this.held = null;
    } else {
      this.buf = this.rbuf;
      this.end = n;
    }
    this.start = 0;
    this.phase = PH_FEED;
    return this.answer(fd);
  }

  /**
   * Feed buf[start, end) to the service and send what it answers, from `phase` on: until the input is
   * used up or a partial request is held (then tail()), or something must be waited for.
   */
  private answer(fd: number): number {
    const { service, out, fr: r } = this;
    for (;;) {
      if (this.phase === PH_FEED) {
        r.reset();
        service.draining = this.o.stopLevel() !== 0;
        service.feed(this.buf, this.start, this.end, out, r);
        this.row[ROW_REQUESTS]! += r.requests;
        if (out.len > 0) {
          // writeAll is synchronous unless the socket stalls (prefork ticks).
          const ok = this.writeAll(fd, out.buf, out.len);
          if (ok !== true) {
            if (ok === false) {
              this.drop(r);
              return T_END;
            }
            this.wait = ok;
            return T_WRITE;
          }
          out.reset();
        }
        this.phase = PH_FILE;
      }
      if (this.phase === PH_FILE) {
        this.phase = PH_AFTER;
        if (r.file !== null) {
          // The head is written: the body follows on the same blocking socket (closes the file's fd).
          const ok = this.sendFile(fd, r.file);
          r.file = null;
          if (ok !== true) {
            if (ok === false) return T_END;
            this.wait = ok;
            return T_FILE;
          }
        }
      }
      // PH_AFTER
      if (r.pending !== null) return T_PENDING;
      if (r.close) {
        this.ending = END_LINGER;
        return T_END;
      }
      if (r.more) {
        // feed() stopped at its output bound, which is written now: feed the rest without waiting
        // for input (the client may have sent everything and wait for the answers).
        this.start = r.next;
        this.phase = PH_FEED;
        continue;
      }
      if (r.next < this.end) {
        // A request is only partly here. buf starts with the bytes held before, so if feed()
        // consumed anything, the partial request is a new one: its header timeout starts now.
        if (r.next > 0 || this.partialSince === 0) this.partialSince = performance.now();
        this.held = Buffer.from(this.buf.subarray(r.next, this.end)); // rbuf is reused by the next read
      } else this.partialSince = 0;
      return this.tail();
    }
  }

  /** The end of a turn whose input is answered (or held). */
  private tail(): number {
    if (this.o.tickMs === 0) return T_READ; // threads: no ticks, and SO_RCVTIMEO keeps the idle time
    if (this.held === null) this.idleSince = performance.now();
    if (performance.now() - this.lastYield >= YIELD_MS) return T_YIELD;
    return T_READ;
  }

  /** What turn() could not do synchronously, then the rest of the turn. False: the connection ends. */
  private async slow(fd: number, t: number): Promise<boolean> {
    const r = this.fr;
    for (;;) {
      switch (t) {
        case T_READ:
          return true;
        case T_EXPIRE:
          this.ending = await this.expire(fd);
          return false;
        case T_TICK:
          await this.yieldNow();
          return this.o.stopLevel() !== 2;
        case T_YIELD:
          await this.yieldNow();
          return true;
        case T_WRITE:
          if (!(await this.wait!)) {
            this.drop(r);
            return false;
          }
          this.out.reset();
          this.phase = PH_FILE;
          break;
        case T_FILE:
          if (!(await this.wait!)) return false;
          break; // phase is PH_AFTER
        case T_PENDING: {
          // An async handler: this thread waits for it (nothing else to serve), then goes on with
          // the input it holds. buf is not overwritten meanwhile: no read happens before it is fed.
          let d: Deferred;
          try {
            d = await r.pending!;
          } catch {
            return false;
          }
          this.row[ROW_REQUESTS]!++;
          if (d.bytes.length > 0) {
            const ok = this.writeAll(fd, d.bytes, d.bytes.length);
            if (ok !== true && (ok === false || !(await ok))) return false;
          }
          if (d.close) {
            this.ending = END_LINGER;
            return false;
          }
          if (r.next < this.end) {
            this.start = r.next;
            this.phase = PH_FEED;
            break;
          }
          this.partialSince = 0;
          t = this.tail();
          continue;
        }
        default: // T_END
          return false;
      }
      this.wait = null;
      t = this.answer(fd);
    }
  }

  /** The connection failed before a feed's result was acted on: release what the result holds. */
  private drop(r: FeedResult): void {
    if (r.file !== null) {
      ffi.close(r.file.fd);
      r.file = null;
    }
    r.pending?.catch(() => {});
  }

  /**
   * Header timeout: answer (HTTP 408; RESP and echo say nothing) and close lingering, so the answer is
   * not lost to an RST. A peer that does not take the answer within the send timeout is just closed.
   */
  private async expire(fd: number): Promise<number> {
    this.service.timeout(this.out);
    if (this.out.len > 0) {
      const ok = this.writeAll(fd, this.out.buf, this.out.len);
      this.out.reset();
      if (ok !== true && (ok === false || !(await ok))) return END_CLOSE;
    }
    return END_LINGER;
  }

  /** poll(2) for input on the one fd, up to `ms`: > 0 readable (or EOF/error), 0 timed out, -errno. */
  private waitReadable(fd: number, ms: number): number {
    const p = this.pfd;
    p.writeInt32LE(fd, 0);
    p.writeInt16LE(POLLIN, 4);
    p.writeInt16LE(0, 6);
    return ffi.poll(p, 1, Math.min(POLL_MAX_MS, Math.max(1, Math.ceil(ms))));
  }

  /**
   * Lingering close (reactor.ts finish()): FIN after our last answer, then read and discard until the
   * peer's FIN, `lingerMs` without input, or LINGER_TOTAL lingerMs in all. Closing with input unread
   * would send an RST, and an RST can destroy our answer in the peer's receive buffer before it is read.
   */
  private async linger(fd: number): Promise<void> {
    const { lingerMs } = this.o.limits;
    if (lingerMs <= 0) return;
    ffi.shutdown(fd, SHUT_WR);
    const t0 = performance.now();
    let quietSince = t0;
    for (;;) {
      const left = Math.min(quietSince + lingerMs, t0 + lingerMs * LINGER_TOTAL) - performance.now();
      if (left <= 0 || this.o.stopLevel() === 2) return;
      const p = this.waitReadable(fd, this.o.tickMs > 0 ? Math.min(left, this.o.tickMs) : left);
      if (p === 0 && this.o.tickMs > 0) {
        // prefork: a tick with nothing to read; let IPC and signals in.
        await this.yieldNow();
        if (this.o.stopLevel() === 2) return;
        continue;
      }
      if (p === 0) return; // quiet for lingerMs
      if (p < 0) {
        if (p === -EINTR) continue;
        return;
      }
      const n = ffi.read(fd, this.rbuf, READ_SIZE);
      if (n > 0) quietSince = performance.now();
      else if (n !== -EAGAIN && n !== -EINTR) return; // the peer's FIN (0), or the connection failed
    }
  }

  /** Blocking write of buf[0,len), looping over short writes. False when the connection must close. */
  private writeAll(fd: number, buf: Buffer, len: number): boolean | Promise<boolean> {
    let off = 0;
    for (;;) {
      const w = ffi.write(fd, off === 0 ? buf : buf.subarray(off), len - off);
      if (w > 0) {
        this.row[ROW_BYTES_OUT]! += w;
        off += w;
        if (off === len) return true;
        continue; // a short write: a signal, or SO_SNDTIMEO expired after some progress
      }
      if (w === -EINTR) continue;
      if (w === -EAGAIN) return this.writeSlow(fd, buf, off, len);
      return false; // EPIPE, ECONNRESET: the peer is gone
    }
  }

  /** The socket took nothing for a whole SO_SNDTIMEO: on prefork, yield and retry until the send timeout. */
  private async writeSlow(fd: number, buf: Buffer, off: number, len: number): Promise<boolean> {
    const o = this.o;
    if (o.tickMs === 0) return false; // threads: SO_SNDTIMEO is the send timeout itself
    let stalled = o.tickMs;
    for (;;) {
      if (stalled >= o.limits.sendTimeoutMs) return false;
      await this.yieldNow();
      if (o.stopLevel() === 2) return false;
      const w = ffi.write(fd, buf.subarray(off), len - off);
      if (w > 0) {
        this.row[ROW_BYTES_OUT]! += w;
        off += w;
        if (off === len) return true;
        stalled = 0;
        continue;
      }
      if (w !== -EAGAIN && w !== -EINTR) return false;
      stalled += o.tickMs;
    }
  }

  /**
   * Send a file body after the head: sendfile(2) (or pread + write with --sendfile off) in a loop on
   * the blocking socket until f.off === f.end. Closes f.fd in every case. False when the connection
   * must close (the peer is gone or stopped reading, or the file shrank under us: the framing is lost).
   */
  private sendFile(fd: number, f: FileSend): boolean | Promise<boolean> {
    const st = this.pump(fd, f);
    if (st === FILE_BLOCKED && this.o.tickMs > 0) return this.sendFileSlow(fd, f);
    ffi.close(f.fd);
    return st === FILE_DONE; // threads: FILE_BLOCKED is SO_SNDTIMEO passing with no progress
  }

  private async sendFileSlow(fd: number, f: FileSend): Promise<boolean> {
    const o = this.o;
    try {
      // The blocked call waited a whole tick after the last byte moved.
      let stalled = o.tickMs;
      for (;;) {
        if (stalled >= o.limits.sendTimeoutMs) return false;
        await this.yieldNow();
        if (o.stopLevel() === 2) return false;
        const before = f.off;
        const st = this.pump(fd, f);
        if (st === FILE_DONE) return true;
        if (st !== FILE_BLOCKED) return false;
        stalled = f.off !== before ? o.tickMs : stalled + o.tickMs;
      }
    } finally {
      ffi.close(f.fd);
    }
  }

  private pump(fd: number, f: FileSend): number {
    const st = pumpFile(fd, f, this.service.sendfile, this.copyBuf ??= Buffer.allocUnsafe(COPY_CHUNK), this.sent);
    this.row[ROW_BYTES_OUT]! += this.sent.n;
    this.sent.n = 0;
    return st;
  }

  private async yieldNow(): Promise<void> {
    await tick();
    this.lastYield = performance.now();
  }
}

const refusals = new Map<string, Buffer>();
/**
 * Refuse a connection the engine will not serve (RELIABILITY.md #1): HTTP `503` + `Connection: close`,
 * RESP `-ERR max number of clients reached` (Redis's words, networking.c), echo: just close.
 * Nothing here may block the acceptor: MSG_DONTWAIT on a fresh socket, then FIN, then read what the
 * client already sent so close() sends FIN rather than RST (an RST could discard the 503 in flight).
 */
export function refuse(fd: number, protocol: string): void {
  let msg = refusals.get(protocol);
  if (msg === undefined) {
    const o = new OutBuf(256);
    if (protocol === 'http') writeHttpError(o, 503);
    else if (protocol === 'resp') writeRespError(o, 'ERR max number of clients reached');
    msg = o.take();
    refusals.set(protocol, msg);
  }
  if (msg.length > 0) ffi.send(fd, msg, msg.length, MSG_DONTWAIT | MSG_NOSIGNAL);
  ffi.shutdown(fd, SHUT_WR);
  const scratch = Buffer.allocUnsafe(16 * 1024);
  ffi.recv(fd, scratch, scratch.length, MSG_DONTWAIT);
  ffi.close(fd);
}

/** SO_RCVTIMEO / SO_SNDTIMEO as a struct timeval (structs.ts `timeval`: tv_sec, tv_usec, 64-bit each). */
export function setTimeoutOpt(fd: number, opt: number, ms: number): void {
  const tv = Buffer.alloc(16);
  tv.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), 0);
  tv.writeBigInt64LE(BigInt(Math.round((ms % 1000) * 1000)), 8);
  ffi.setsockopt(fd, SOL_SOCKET, opt, tv, 16);
}

/** /proc/meminfo fields in bytes (MemTotal, MemAvailable), or null where /proc is not readable. */
export function meminfo(): { total: number; available: number } | null {
  try {
    const t = readFileSync('/proc/meminfo', 'latin1');
    const total = /MemTotal:\s+(\d+) kB/.exec(t);
    const avail = /MemAvailable:\s+(\d+) kB/.exec(t);
    if (!total) return null;
    return { total: Number(total[1]) * 1024, available: avail ? Number(avail[1]) * 1024 : Number(total[1]) * 1024 };
  } catch {
    return null;
  }
}

/** Resident set size of a process from /proc/<pid>/status (bytes), or 0. */
export function rssOf(pid: number | 'self'): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** A positive integer from the environment, or undefined. Bad values are a usage error. */
export function envInt(name: string, min = 1): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min} (got ${JSON.stringify(v)})`);
  return n;
}
