/**
 * POSIX AIO through glibc: aio_read / aio_write / aio_error / aio_return / aio_suspend / aio_cancel /
 * aio_init. In libc.so.6 since glibc 2.34 (librt.so.1 before, which we fall back to).
 *
 * What glibc does behind these calls (sysdeps/pthread/aio_misc.c, glibc 2.36 here): there is no
 * kernel AIO for sockets. Each request is queued on a global list under one mutex; a detached helper
 * thread (up to `aio_threads`, default 20) takes it and runs a plain blocking pread()/pwrite(), which
 * a socket answers with ESPIPE, so it falls back to read()/write(). Requests for an fd that already
 * has one in flight queue behind it on that fd. Completion is published in the aiocb itself
 * (__error_code, __return_value), which aio_error()/aio_return() read: nothing tells the caller
 * *which* request finished, so it scans. aio_suspend() walks the list it is given and, for each
 * entry, the global request list sorted by fd (__aio_find_req), so one call costs O(n * fds in
 * flight) under the global mutex (sysdeps/pthread/aio_suspend.c).
 *
 * AioQueue keeps the aiocbs in one Buffer that lives as long as the queue: glibc's helper threads
 * write into an aiocb until its request completes, so the memory must stay alive and in place
 * (V8 never moves an ArrayBuffer's backing store; a Buffer this size is not in the 8 KB pool).
 */
import { koffi, libc } from './ffi.js';
import { counts, SYS } from './counters.js';
import { EAGAIN, EINPROGRESS, ETIMEDOUT, lastErrno } from './errno.js';
import { nanosleep } from './process.js';
import { nowNs, onTracing, push, sub, TRACE_NAMES } from './trace.js';
import {
  AIOCB_BUF, AIOCB_FILDES, AIOCB_LIO_OPCODE, AIOCB_NBYTES, AIOCB_OFFSET, AIOCB_REQPRIO, AIOCB_SIGEV_NOTIFY, AIOCB_SIZE,
  AIOINIT_SIZE,
} from './structs.js';

/** glibc rt/aio.h. */
export const LIO_READ = 0, LIO_WRITE = 1;
export const AIO_CANCELED = 0, AIO_NOTCANCELED = 1, AIO_ALLDONE = 2;
/** bits/sigevent-consts.h: no notification (we scan with aio_error instead). */
export const SIGEV_NONE = 1;

function aioLib(): ReturnType<typeof koffi.load> {
  try {
    libc.func('int aio_error(uintptr_t)');
    return libc;
  } catch {
    return koffi.load('librt.so.1'); // glibc < 2.34
  }
}
const lib = aioLib();
// aiocb pointers travel as numbers (addresses), so a call allocates nothing.
const _aio_read = lib.func('int aio_read(uintptr_t)');
const _aio_write = lib.func('int aio_write(uintptr_t)');
const _aio_error = lib.func('int aio_error(uintptr_t)');
const _aio_return = lib.func('intptr_t aio_return(uintptr_t)');
const _aio_suspend = lib.func('int aio_suspend(const void *, int, const void *)');
const _aio_cancel = lib.func('int aio_cancel(int, uintptr_t)');
const _aio_init = lib.func('void aio_init(const void *)');

// None of these restart on EINTR: aio_read/aio_write only enqueue, aio_suspend is a wait (see ffi.ts).
// aio_error/aio_return are not counted: they read the aiocb in user space, no kernel entry.
export function aioRead(cb: number): number {
  counts[SYS.aio_read]!++;
  return _aio_read(cb) === 0 ? 0 : -lastErrno();
}

export function aioWrite(cb: number): number {
  counts[SYS.aio_write]!++;
  return _aio_write(cb) === 0 ? 0 : -lastErrno();
}

/** 0, EINPROGRESS, ECANCELED, or the errno the operation failed with. */
export function aioError(cb: number): number {
  return _aio_error(cb);
}

export function aioReturn(cb: number): number {
  return _aio_return(cb);
}

/** AIO_CANCELED, AIO_NOTCANCELED (running in a helper: it cannot be stopped), AIO_ALLDONE, or -errno. */
export function aioCancel(fd: number, cb: number): number {
  counts[SYS.aio_cancel]!++;
  const r = _aio_cancel(fd, cb);
  return r >= 0 ? r : -lastErrno();
}

/**
 * glibc's aio_init (a GNU extension): only effective before the first request (it sizes the request
 * pool once), so call it at start. `threads` caps glibc's helper threads (default 20).
 */
export function aioInit(threads: number, num: number, idleSeconds = 1): void {
  const b = Buffer.alloc(AIOINIT_SIZE);
  b.writeInt32LE(threads, 0);
  b.writeInt32LE(num, 4);
  b.writeInt32LE(idleSeconds, 24);
  _aio_init(b);
}

/** The address of a Buffer's first byte (stable: see the file comment). */
export function bufferAddress(b: Uint8Array): number {
  return Number(koffi.address(b));
}

const TWO32 = 4294967296;

/**
 * A fixed table of `size` aiocbs (one per slot) plus the dense list of the slots with a request in
 * flight, kept as the `const struct aiocb *list[]` aio_suspend() takes.
 */
export class AioQueue {
  readonly size: number;
  private readonly mem: Buffer;
  private readonly u32: Uint32Array;
  private readonly i32: Int32Array;
  private readonly base: number;
  /** aio_suspend's list: pointers to the aiocbs of the in-flight slots, entries [0, live). */
  private readonly list: Buffer;
  private readonly listU32: Uint32Array;
  /** Dense in-flight slots (same order as `list`) and each slot's index in it (-1: idle). */
  private readonly inflight: Int32Array;
  private readonly pos: Int32Array;
  live = 0;
  private readonly ts = Buffer.alloc(16);

  constructor(size: number) {
    this.size = size;
    this.mem = Buffer.alloc(size * AIOCB_SIZE);
    this.u32 = new Uint32Array(this.mem.buffer, this.mem.byteOffset, this.mem.length >> 2);
    this.i32 = new Int32Array(this.mem.buffer, this.mem.byteOffset, this.mem.length >> 2);
    this.base = bufferAddress(this.mem);
    this.list = Buffer.alloc(Math.max(1, size) * 8);
    this.listU32 = new Uint32Array(this.list.buffer, this.list.byteOffset, this.list.length >> 2);
    this.inflight = new Int32Array(size);
    this.pos = new Int32Array(size).fill(-1);
  }

  /** The aiocb's address, for aio_error & co. */
  cb(slot: number): number {
    return this.base + slot * AIOCB_SIZE;
  }

  busy(slot: number): boolean {
    return this.pos[slot]! >= 0;
  }

  /**
   * Fill the slot's aiocb and submit it (LIO_READ or LIO_WRITE of `len` bytes at address `addr`).
   * Returns 0 or -errno (EAGAIN: glibc could not queue it). The memory at addr must stay alive until
   * the slot is reaped.
   */
  submit(slot: number, op: number, fd: number, addr: number, len: number): number {
    if (this.pos[slot]! >= 0) throw new Error(`aio: slot ${slot} already has a request in flight`);
    const w = (slot * AIOCB_SIZE) >> 2;
    this.i32[w + (AIOCB_FILDES >> 2)] = fd;
    this.i32[w + (AIOCB_LIO_OPCODE >> 2)] = op;
    this.i32[w + (AIOCB_REQPRIO >> 2)] = 0;
    this.u32[w + (AIOCB_BUF >> 2)] = addr % TWO32;
    this.u32[w + (AIOCB_BUF >> 2) + 1] = Math.floor(addr / TWO32);
    this.u32[w + (AIOCB_NBYTES >> 2)] = len % TWO32;
    this.u32[w + (AIOCB_NBYTES >> 2) + 1] = Math.floor(len / TWO32);
    this.i32[w + (AIOCB_SIGEV_NOTIFY >> 2)] = SIGEV_NONE;
    this.u32[w + (AIOCB_OFFSET >> 2)] = 0; // ignored for sockets (pread fails with ESPIPE; glibc then read()s)
    this.u32[w + (AIOCB_OFFSET >> 2) + 1] = 0;
    const cb = this.cb(slot);
    const r = op === LIO_READ ? aioRead(cb) : aioWrite(cb);
    if (r < 0) return r;
    const i = this.live++;
    this.inflight[i] = slot;
    this.pos[slot] = i;
    this.listU32[i * 2] = cb % TWO32;
    this.listU32[i * 2 + 1] = Math.floor(cb / TWO32);
    return 0;
  }

  private drop(i: number): void {
    const slot = this.inflight[i]!;
    const last = --this.live;
    if (i !== last) {
      const moved = this.inflight[last]!;
      this.inflight[i] = moved;
      this.pos[moved] = i;
      this.listU32[i * 2] = this.listU32[last * 2]!;
      this.listU32[i * 2 + 1] = this.listU32[last * 2 + 1]!;
    }
    this.pos[slot] = -1;
  }

  /**
   * Block until a request in flight completes or `ms` passes. With nothing in flight aio_suspend would
   * return at once, so sleep instead. Returns true if something may have completed.
   */
  wait(ms: number): boolean {
    if (this.live === 0) {
      if (ms > 0) nanosleep(ms);
      return false;
    }
    const ns = Math.max(0, Math.round(ms * 1e6));
    this.ts.writeUInt32LE(Math.floor(ns / 1e9), 0);
    this.ts.writeUInt32LE(0, 4);
    this.ts.writeUInt32LE(ns % 1e9, 8);
    this.ts.writeUInt32LE(0, 12);
    counts[SYS.aio_suspend]!++;
    if (_aio_suspend(this.list, this.live, this.ts) === 0) return true;
    // A timeout is EAGAIN (glibc translates ETIMEDOUT); not counted as a would-block EAGAIN. EINTR: a
    // signal arrived; the caller recomputes its timeout.
    const e = lastErrno();
    if (e === EAGAIN || e === ETIMEDOUT) return false;
    return true;
  }

  /**
   * Find every completed request with aio_error() over the whole in-flight list (POSIX offers no
   * "which one finished"), and hand each to `done(slot, result)`: bytes transferred, or -errno.
   * `done` may submit again; new submissions are not visited in this pass.
   */
  reap(done: (slot: number, result: number) => void): number {
    let n = 0;
    for (let i = this.live - 1; i >= 0; i--) {
      if (i >= this.live) continue; // the list shrank under a callback
      const slot = this.inflight[i]!;
      const cb = this.cb(slot);
      const e = aioError(cb);
      if (e === EINPROGRESS) continue;
      const r = aioReturn(cb);
      this.drop(i);
      n++;
      done(slot, e === 0 ? r : -e);
    }
    return n;
  }

  /** aio_cancel() the slot's request; see aioCancel. */
  cancel(slot: number, fd: number): number {
    return aioCancel(fd, this.cb(slot));
  }

  /** Tracing only (sys/trace.ts): the fd and LIO opcode in a slot's aiocb. */
  traceSlot(slot: number): [number, number] {
    const w = (slot * AIOCB_SIZE) >> 2;
    return [this.i32[w + (AIOCB_FILDES >> 2)]!, this.i32[w + (AIOCB_LIO_OPCODE >> 2)]!];
  }
}

/*
 * The aio library calls are bound here, not in ffi.ts, so tracing swaps AioQueue's methods instead:
 * submit records aio_read/aio_write (fd, length, result), wait records aio_suspend (requests in flight,
 * timeout, 1 when woken), reap records an `aio_done` per completion (fd, READ/WRITE, result). With
 * tracing off the prototype holds the methods above, unchanged.
 */
const plainAio = { submit: AioQueue.prototype.submit, wait: AioQueue.prototype.wait, reap: AioQueue.prototype.reap };
const ID_AIO_READ = TRACE_NAMES.indexOf('aio_read'), ID_AIO_WRITE = TRACE_NAMES.indexOf('aio_write');
const ID_AIO_SUSPEND = TRACE_NAMES.indexOf('aio_suspend');
onTracing(
  () => {
    AioQueue.prototype.submit = function (this: AioQueue, slot: number, op: number, fd: number, addr: number, len: number): number {
      const t0 = nowNs();
      const r = plainAio.submit.call(this, slot, op, fd, addr, len);
      push(op === LIO_READ ? ID_AIO_READ : ID_AIO_WRITE, t0, nowNs(), fd, len, 0, 0, r);
      return r;
    };
    AioQueue.prototype.wait = function (this: AioQueue, ms: number): boolean {
      const n = this.live;
      const t0 = nowNs();
      const r = plainAio.wait.call(this, ms);
      if (n > 0) push(ID_AIO_SUSPEND, t0, nowNs(), -1, n, 0, ms, r ? 1 : 0);
      return r;
    };
    AioQueue.prototype.reap = function (this: AioQueue, done: (slot: number, result: number) => void): number {
      return plainAio.reap.call(this, (slot, result) => {
        const [fd, op] = this.traceSlot(slot);
        sub('aio_done', nowNs(), fd, op, 0, 0, result);
        done(slot, result);
      });
    };
  },
  () => Object.assign(AioQueue.prototype, plainAio),
);
