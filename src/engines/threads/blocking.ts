/**
 * The blocking connection loop shared by the `threads` and `prefork` engines: one thread of control
 * owns one connection and parks in the kernel on each call, as Apache's worker and prefork MPMs do:
 *
 *     for (;;) { n = read(fd);  service.feed(buf, out);  write(fd, out); }   // read and write park
 *
 * There is no readiness wait and no O_NONBLOCK: a slow client holds its thread, never the others.
 *
 * Two engine-specific hooks keep the loop the same for both engines:
 *  - `tickMs > 0` (prefork): the socket carries SO_RCVTIMEO/SO_SNDTIMEO of tickMs, so a parked read or
 *    write returns EAGAIN that often; the loop then yields to Node's own loop (IPC, signals) and parks
 *    again. A busy connection also yields every YIELD_MS. A child process has no other way to hear its
 *    parent while it sits in read().
 *  - `tickMs = 0` (threads): the thread parks for as long as it takes; the main thread wakes it from
 *    outside with shutdown(2) on the fd when it must (see threads/engine.ts). SO_SNDTIMEO, when set, is
 *    the slow-reader limit itself.
 *
 * Counters go to a Float64Array row (in a SharedArrayBuffer for threads, so the main thread reads them
 * while this thread sits in read(); a plain array for prefork, sent over IPC on request).
 */
import { readFileSync } from 'node:fs';
import type { Deferred, FeedResult, Service } from '../../apps/service.js';
import { OutBuf } from '../../protocols/outbuf.js';
import { writeError as writeHttpError } from '../../protocols/http/response.js';
import { writeError as writeRespError } from '../../protocols/resp/encode.js';
import {
  EAGAIN, MSG_DONTWAIT, MSG_NOSIGNAL, SHUT_WR, SOL_SOCKET, SYSCALLS, counts, eagain, ffi,
} from '../../sys/index.js';

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

/** Copy this thread's sys-layer counters into its row (each thread has its own sys module instance). */
export function publishSyscalls(row: Float64Array): void {
  row.set(counts, ROW_SYSCALLS);
  row[ROW_EAGAIN] = eagain[0]!;
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

export interface BlockingConnOptions {
  /** 0: not stopping; 1: draining (answer what is in flight, then close); 2: force (close now). */
  stopLevel: () => number;
  /** threads: mark the connection as parked between requests, so stop() may wake it with shutdown(). */
  setIdle?: (idle: boolean) => void;
  /** > 0 when the socket has SO_RCVTIMEO/SO_SNDTIMEO of this many ms (prefork); 0 otherwise. */
  tickMs: number;
  /** A write that makes no progress this long is a slow reader: close (RELIABILITY.md #3). */
  slowReaderMs: number;
}

const tick = (): Promise<void> => new Promise((res) => setImmediate(res));

/** One thread's (or process's) connection server: buffers reused for every connection it serves. */
export class BlockingConn {
  private readonly rbuf = Buffer.allocUnsafe(READ_SIZE);
  private readonly out = new OutBuf(READ_SIZE);
  private lastYield = performance.now();

  constructor(
    private readonly service: Service,
    private readonly fr: FeedResult,
    readonly row: Float64Array,
    private readonly o: BlockingConnOptions,
  ) {}

  /**
   * Serve `fd` until EOF, error, a close the protocol asks for, or stop. Does not close the fd (the
   * engine does, after its own bookkeeping). Synchronous until a request is answered asynchronously
   * (the service's `pending`: awaited right here, the thread has nothing else to do) or, on prefork,
   * until a timeout tick.
   */
  async serve(fd: number): Promise<void> {
    const { service, rbuf, out, fr: r, row, o } = this;
    let held: Buffer | null = null;
    row[ROW_CONNS]!++;
    try {
      outer: for (;;) {
        if (held === null) {
          // Between requests: a stopping engine closes here rather than wait for another request.
          o.setIdle?.(true);
          if (o.stopLevel() !== 0) break;
        }
        const n = ffi.read(fd, rbuf, READ_SIZE);
        if (held === null) o.setIdle?.(false);
        row[ROW_WAKEUPS]!++;
        if (n <= 0) {
          if (n === -EAGAIN && o.tickMs > 0) {
            // SO_RCVTIMEO tick: nothing arrived. Let IPC and signals in, then park again.
            await this.yieldNow();
            if (o.stopLevel() === 2) break;
            continue;
          }
          break; // 0: EOF (every request already answered: responses are written before the next read); <0: ECONNRESET ...
        }
        row[ROW_BYTES_IN]! += n;
        let buf = rbuf;
        let start = 0;
        let end = n;
        if (held !== null) {
          buf = Buffer.allocUnsafe(held.length + n);
          held.copy(buf, 0);
          rbuf.copy(buf, held.length, 0, n);
          end = buf.length;
          held = null;
        }
        for (;;) {
          r.reset();
          service.draining = o.stopLevel() !== 0;
          service.feed(buf, start, end, out, r);
          row[ROW_REQUESTS]! += r.requests;
          if (out.len > 0) {
            // writeAll is synchronous unless the socket stalls (prefork ticks): no await, and so no
            // microtask turn, per request on the fast path.
            const ok = this.writeAll(fd, out.buf, out.len);
            if (ok !== true && (ok === false || !(await ok))) break outer;
            out.reset();
          }
          if (r.pending !== null) {
            // An async handler: this thread waits for it (nothing else to serve), then goes on with
            // the input it holds. buf is not overwritten meanwhile: no read happens before it is fed.
            let d: Deferred;
            try {
              d = await r.pending;
            } catch {
              break outer;
            }
            row[ROW_REQUESTS]!++;
            if (d.bytes.length > 0) {
              const ok = this.writeAll(fd, d.bytes, d.bytes.length);
              if (ok !== true && (ok === false || !(await ok))) break outer;
            }
            if (d.close) break outer;
            if (r.next < end) {
              start = r.next;
              continue;
            }
            break;
          }
          if (r.close) break outer;
          if (r.next < end) held = Buffer.from(buf.subarray(r.next, end)); // rbuf is reused by the next read
          break;
        }
        if (o.tickMs > 0 && performance.now() - this.lastYield >= YIELD_MS) await this.yieldNow();
        publishSyscalls(row);
      }
    } finally {
      out.reset(); // a failed write leaves bytes behind; the next connection must not see them
      o.setIdle?.(false);
      publishSyscalls(row);
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
      if (w === -EAGAIN) return this.writeSlow(fd, buf, off, len);
      return false; // EPIPE, ECONNRESET: the peer is gone
    }
  }

  /** The socket took nothing for a whole SO_SNDTIMEO: on prefork, yield and retry until slowReaderMs. */
  private async writeSlow(fd: number, buf: Buffer, off: number, len: number): Promise<boolean> {
    const o = this.o;
    if (o.tickMs === 0) return false; // threads: SO_SNDTIMEO is the slow-reader limit itself
    let stalled = o.tickMs;
    for (;;) {
      if (stalled >= o.slowReaderMs) return false;
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
      if (w !== -EAGAIN) return false;
      stalled += o.tickMs;
    }
  }

  private async yieldNow(): Promise<void> {
    publishSyscalls(this.row);
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
