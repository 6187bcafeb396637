/**
 * Syscall tracing for the sys layer: off by default, and free when off.
 *
 * How it is switched. Every binding in ffi.ts is an `export let`; `enableTracing()` (in ffi.ts)
 * reassigns each one to a wrapper built here by `traced()`, and `disableTracing()` puts the
 * untraced binding back. Code that calls `ffi.read(...)` through the module namespace (every
 * engine does) sees the current binding, so with tracing off the call path is exactly the untraced
 * one: no flag is tested per call. The io_uring ring (io_uring.ts) and POSIX AIO queue (aio.ts)
 * register `onTracing()` hooks that swap a few of their prototype methods the same way.
 *
 * What is recorded, per thread (each worker thread has its own module instance, so its own buffer):
 * a bounded ring of records in typed arrays (no allocation per record), each with a monotonic
 * timestamp (CLOCK_MONOTONIC ns, comparable across threads and processes), the time spent in the
 * call, the syscall, its key arguments (fd, length, event masks, io_uring opcodes ...) and its
 * result (`-errno` on failure). Sub-records follow some calls: `ready` (one per fd a wait reported:
 * epoll_wait, poll, select), `sqe` (each SQE an io_uring_enter is about to submit), `cqe` (each CQE
 * reaped), `aio_done` (each POSIX AIO request found complete).
 *
 * Calls that make no progress (EAGAIN, a wait that timed out, a back-off sleep) repeat in tight
 * loops (a busy poller makes millions): a repeat of such a call, with nothing but other no-progress
 * calls in between, is merged into the earlier record (`n` counts the calls, `dur` sums their time,
 * `tEnd` is when the last one returned), so the buffer holds the story instead of the noise.
 *
 * Output: `drain()` returns the records not yet taken (oldest first, overwritten ones counted in
 * `dropped`). With `IOLAB_TRACE=<path>` in the environment, tracing starts when ffi.ts loads, in
 * every thread and child process that loads it, and each appends its records to <path> as NDJSON
 * (docs/trace-json.md): after a connection closes or is accepted, when the buffer is half full,
 * every 250 ms of traced activity, on `flushTrace()` (iolab serve: on SIGUSR2 and at stop) and at
 * exit. Appends use O_APPEND, so lines from several processes never interleave mid-line.
 */
import { appendFileSync } from 'node:fs';
import { threadId } from 'node:worker_threads';
import { SYSCALLS, type SyscallName } from './counters.js';
import { EAGAIN, EINTR, SyscallError, errnoName } from './errno.js';
import { EPOLL_EVENT_DATA, EPOLL_EVENT_SIZE, POLLFD_SIZE } from './structs.js';
import { performance } from 'node:perf_hooks'; // the global is a lazy accessor: a getter call per use

/** Names a record can carry: every syscall binding, then the sub-records. */
export const TRACE_NAMES = [...SYSCALLS, 'sqe', 'cqe', 'ready', 'aio_done'] as const;
export type TraceName = (typeof TRACE_NAMES)[number];
const ID: Record<string, number> = Object.fromEntries(TRACE_NAMES.map((n, i) => [n, i]));
const N_SQE = ID.sqe!, N_CQE = ID.cqe!, N_READY = ID.ready!, N_AIO_DONE = ID.aio_done!;

/** ETIME (asm-generic/errno.h): a timed io_uring_enter wait that expired. */
const ETIME = 62;

/** One record as drained and as written to the NDJSON file (docs/trace-json.md). */
export interface TraceRecord {
  pid: number;
  tid: number;
  /** Per-thread sequence number (gaps: records overwritten before they were drained). */
  seq: number;
  /** Start of the (first) call: CLOCK_MONOTONIC nanoseconds, comparable across threads and processes. */
  t: number;
  /** Nanoseconds spent in the call (for merged records: in all of them). 0 for sub-records. */
  dur: number;
  sys: TraceName;
  /** The result: bytes, an fd, a count, 0; `-errno` on failure. */
  res: number;
  /** errno name when res < 0. */
  err?: string;
  /** Identical no-progress calls merged into this record (only when > 1), and when the last returned. */
  n?: number;
  tEnd?: number;
  /** The fd the call is about: the socket read, the listening socket accepted on, the epoll/ring fd waited on. */
  fd?: number;
  /** Bytes asked for (read, write, send, recv, sendfile, sqe, aio_*), iovcnt (readv/writev). */
  len?: number;
  /** epoll_ctl: ADD/MOD/DEL; sqe/cqe: the io_uring opcode (RECV, SEND, ACCEPT ...); aio_done: READ/WRITE. */
  op?: string;
  /** epoll_ctl: the interest; ready: what the wait reported (IN, OUT, HUP, ERR, RDHUP, ET ...). */
  events?: string;
  /** accept4: SOCK_* flags; io_uring_enter: IORING_ENTER_*; sqe: IOSQE_* and multishot; cqe: IORING_CQE_F_*. */
  flags?: string;
  /** Waits: the timeout in ms (-1: none). nanosleep: the sleep asked for, in ms. */
  timeout?: number;
  /** io_uring_enter: SQEs handed over and completions waited for. */
  submit?: number;
  wait?: number;
  /** poll/select: fds watched; epoll_wait: max events; aio_suspend: requests in flight. */
  nfds?: number;
  /** Anything else worth a glance (setsockopt level/option, fcntl command, shutdown how ...). */
  args?: number[];
}

export interface TraceOptions {
  /** Records kept per thread before the oldest are overwritten (default 32768, env IOLAB_TRACE_RECORDS). */
  capacity?: number;
  /** Append NDJSON here (see the file comment). */
  file?: string;
}

// ---------------------------------------------------------------------------------------------
// The per-thread ring of records
// ---------------------------------------------------------------------------------------------

let cap = 0;
let mask = 0;
let tT = new Float64Array(0);
let tDur = new Float64Array(0);
let tEnd = new Float64Array(0);
let tName = new Uint16Array(0);
let tFd = new Int32Array(0);
let tA = new Float64Array(0);
let tB = new Float64Array(0);
let tC = new Float64Array(0);
let tRes = new Float64Array(0);
let tN = new Uint32Array(0);
/** Next sequence number to write; first not yet drained; last record that made progress. */
let seq = 0;
let taken = 0;
let lastProgress = -1;
let dropped = 0;

let on = false;
let pid = 0;
let tid = 0;
let offsetNs = 0;
let sinkPath: string | null = null;
let lastFlushT = 0;
let exitHooked = false;
const FLUSH_EVERY_NS = 250e6;

/** CLOCK_MONOTONIC in ns: performance.now() runs on uv_hrtime (the same clock), shifted once per thread. */
export function nowNs(): number {
  return performance.now() * 1e6 + offsetNs;
}

export function tracing(): boolean {
  return on;
}

export interface TraceInfo {
  pid: number;
  tid: number;
  /** The worker_threads id (0: the main thread). */
  threadId: number;
  recorded: number;
  dropped: number;
  file: string | null;
}

export function traceInfo(): TraceInfo {
  return { pid, tid, threadId, recorded: seq, dropped, file: sinkPath };
}

const hooks: { on: () => void; off: () => void }[] = [];

/**
 * Run `start` now if tracing is on, and whenever it is switched on; `stop` when it is switched off.
 * For sys modules that keep their own references to FFI functions (io_uring.ts, aio.ts).
 */
export function onTracing(start: () => void, stop: () => void): void {
  hooks.push({ on: start, off: stop });
  if (on) start();
}

/** Called by ffi.ts's enableTracing (which swaps the bindings); not for other callers. */
export function startRecorder(o: TraceOptions, gettid: () => number): void {
  if (on) return;
  const want = o.capacity ?? (Number(process.env.IOLAB_TRACE_RECORDS) || 32768);
  cap = 1 << Math.ceil(Math.log2(Math.max(64, Math.min(want, 1 << 22))));
  mask = cap - 1;
  tT = new Float64Array(cap);
  tDur = new Float64Array(cap);
  tEnd = new Float64Array(cap);
  tName = new Uint16Array(cap);
  tFd = new Int32Array(cap);
  tA = new Float64Array(cap);
  tB = new Float64Array(cap);
  tC = new Float64Array(cap);
  tRes = new Float64Array(cap);
  tN = new Uint32Array(cap);
  seq = taken = dropped = 0;
  lastProgress = -1;
  pid = process.pid;
  tid = gettid();
  offsetNs = Number(process.hrtime.bigint()) - performance.now() * 1e6;
  sinkPath = o.file ?? null;
  lastFlushT = nowNs();
  if (sinkPath !== null && !exitHooked) {
    exitHooked = true;
    // A worker thread that ends normally runs its own 'exit' listeners; one that is terminate()d does not
    // (its records up to the last flush point are already in the file).
    process.on('exit', () => flushTrace());
  }
  on = true;
  for (const h of hooks) h.on();
}

export function stopRecorder(): void {
  if (!on) return;
  flushTrace();
  for (const h of hooks) h.off();
  on = false;
}

function noProgress(id: number, r: number): boolean {
  if (r === -EAGAIN) return true;
  switch (TRACE_NAMES[id]) {
    case 'epoll_wait': case 'epoll_pwait2': case 'poll': case 'select': case 'io_uring_enter': case 'aio_suspend':
      return r === 0 || r === -ETIME || r === -EINTR;
    case 'nanosleep': case 'sched_yield':
      return true;
    default:
      return false;
  }
}

/** Append (or merge) one record. Returns its sequence number. */
export function push(id: number, t0: number, t1: number, fd: number, a: number, b: number, c: number, r: number): number {
  if (!on) return -1;
  if (noProgress(id, r)) {
    // Merge into an identical call made since the last record that did something (at most 16 back).
    const floor = Math.max(lastProgress, taken - 1, seq - cap - 1);
    for (let s = seq - 1, k = 0; s > floor && k < 16; s--, k++) {
      const i = s & mask;
      if (tName[i] === id && tFd[i] === fd && tRes[i] === r && tA[i] === a) {
        tN[i]!++;
        tDur[i]! += t1 - t0;
        tEnd[i] = t1;
        maybeFlush(id, r, t1);
        return s;
      }
    }
  } else lastProgress = seq;
  if (seq - taken >= cap) {
    taken++;
    dropped++;
  }
  const i = seq & mask;
  tT[i] = t0;
  tDur[i] = t1 - t0;
  tEnd[i] = t1;
  tName[i] = id;
  tFd[i] = fd;
  tA[i] = a;
  tB[i] = b;
  tC[i] = c;
  tRes[i] = r;
  tN[i] = 1;
  const s = seq++;
  maybeFlush(id, r, t1);
  return s;
}

const ID_CLOSE = ID.close!, ID_ACCEPT4 = ID.accept4!;

function maybeFlush(id: number, r: number, t: number): void {
  if (sinkPath === null) return;
  if ((id === ID_CLOSE && r >= 0) || (id === ID_ACCEPT4 && r >= 0) || seq - taken >= cap >>> 1 || t - lastFlushT > FLUSH_EVERY_NS) flushTrace();
}

/** A sub-record at time t (no duration). */
export function sub(name: 'sqe' | 'cqe' | 'ready' | 'aio_done', t: number, fd: number, a: number, b: number, c: number, r: number): void {
  push(ID[name]!, t, t, fd, a, b, c, r);
}

/** The records not yet taken, oldest first; they are not returned again. */
export function drain(): TraceRecord[] {
  const out: TraceRecord[] = [];
  for (let s = Math.max(taken, seq - cap); s < seq; s++) out.push(decode(s));
  taken = seq;
  return out;
}

/** Append what is not yet taken to the trace file (no-op without one). */
export function flushTrace(): void {
  if (!on || sinkPath === null) return;
  lastFlushT = nowNs();
  if (taken === seq) return;
  const recs = drain();
  let text = '';
  for (const r of recs) text += JSON.stringify(r) + '\n';
  try {
    appendFileSync(sinkPath, text);
  } catch (e) {
    process.stderr.write(`iolab trace: cannot append to ${sinkPath}: ${(e as Error).message}; tracing to the file stops\n`);
    sinkPath = null;
  }
}

// ---------------------------------------------------------------------------------------------
// Wrapping a binding
// ---------------------------------------------------------------------------------------------

type Fn = (...args: any[]) => any;

/** Extract (fd, a, b, c) from a call's arguments, before the call (buffers may change after). */
type Pre = (x: any[]) => void;
/** After the call: sub-records (readiness a wait reported). */
type Post = (x: any[], r: number, t: number) => void;

let pFd = -1, pA = 0, pB = 0, pC = 0;
const set = (fd: number, a = 0, b = 0, c = 0): void => {
  pFd = fd;
  pA = a;
  pB = b;
  pC = c;
};
const num = (v: unknown): number => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : 0);

/** timespec / timeval in a Buffer -> ms; null -> -1. */
function tsMs(b: unknown, nsUnit: boolean): number {
  if (!(b instanceof Uint8Array)) return -1;
  const dv = new DataView(b.buffer, b.byteOffset, 16);
  const sec = Number(dv.getBigInt64(0, true));
  const frac = Number(dv.getBigInt64(8, true));
  return sec * 1000 + (nsUnit ? frac / 1e6 : frac / 1e3);
}

const PRE: Partial<Record<SyscallName, Pre>> = {
  read: (x) => set(x[0], x[2]),
  write: (x) => set(x[0], x[2]),
  readv: (x) => set(x[0], x[2]),
  writev: (x) => set(x[0], x[2]),
  recv: (x) => set(x[0], x[2], x[3]),
  send: (x) => set(x[0], x[2], x[3]),
  accept4: (x) => set(x[0], 0, x[3]),
  connect: (x) => set(x[0]),
  close: (x) => set(x[0]),
  shutdown: (x) => set(x[0], x[1]),
  bind: (x) => set(x[0]),
  listen: (x) => set(x[0], x[1]),
  getsockname: (x) => set(x[0]),
  getpeername: (x) => set(x[0]),
  setsockopt: (x) => set(x[0], x[1], x[2]),
  getsockopt: (x) => set(x[0], x[1], x[2]),
  fcntl: (x) => set(x[0], x[1], x[2]),
  socket: (x) => set(-1, x[0], x[1]),
  epoll_create1: (x) => set(-1, x[0]),
  // epoll_ctl(epfd, op, fd, ev): the record is about the watched fd; the interest is read from the event.
  epoll_ctl: (x) => set(x[2], x[1], x[3] instanceof Uint8Array ? new DataView(x[3].buffer, x[3].byteOffset, 4).getUint32(0, true) : 0, x[0]),
  epoll_wait: (x) => set(x[0], x[2], 0, x[3]),
  epoll_pwait2: (x) => set(x[0], x[2], 0, tsMs(x[3], true)),
  poll: (x) => set(-1, x[1], 0, x[2]),
  select: (x) => set(-1, x[0], 0, tsMs(x[4], false)),
  sendfile: (x) => set(x[0], x[3], x[1]),
  io_uring_enter: (x) => set(x[0], x[1], x[2], x[3]),
  io_uring_setup: (x) => set(-1, x[0]),
  io_uring_register: (x) => set(x[0], x[1]),
  nanosleep: (x) => set(-1, 0, 0, tsMs(x[0], true)),
  mmap: (x) => set(num(x[4]), num(x[1])),
  munmap: (x) => set(-1, num(x[1])),
  eventfd: (x) => set(-1, x[0], x[1]),
  open: (x) => set(-1, x[1]),
  openat: (x) => set(-1, x[2]),
  statx: (x) => set(x[0], x[3]),
  pread64: (x) => set(x[0], x[2], x[3]),
  splice: (x) => set(x[0], x[4], x[2]),
  prctl: (x) => set(-1, x[0], x[1]),
};

/** Readiness the wait reported, one `ready` sub-record per fd (events in the poll(2) bit values). */
const POST: Partial<Record<SyscallName, Post>> = {
  epoll_wait: (x, r, t) => epollReady(x[1], r, t),
  epoll_pwait2: (x, r, t) => epollReady(x[1], r, t),
  poll: (x, r, t) => {
    if (r <= 0 || !(x[0] instanceof Uint8Array)) return;
    const b: Uint8Array = x[0];
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let i = 0, found = 0; i < x[1] && found < r; i++) {
      const rev = dv.getUint16(i * POLLFD_SIZE + 6, true);
      if (rev === 0) continue;
      found++;
      sub('ready', t, dv.getInt32(i * POLLFD_SIZE, true), rev, 0, 0, 0);
    }
  },
  select: (x, r, t) => {
    // select() leaves only the ready fds in the sets: IN from the read set, OUT from the write set.
    if (r <= 0) return;
    const rs: Uint8Array | null = x[1] instanceof Uint8Array ? x[1] : null;
    const ws: Uint8Array | null = x[2] instanceof Uint8Array ? x[2] : null;
    for (let fd = 0; fd < x[0]; fd++) {
      const bit = 1 << (fd & 7), byte = fd >> 3;
      const m = (rs && rs[byte]! & bit ? 0x1 : 0) | (ws && ws[byte]! & bit ? 0x4 : 0);
      if (m) sub('ready', t, fd, m, 0, 0, 0);
    }
  },
};

function epollReady(events: unknown, r: number, t: number): void {
  if (r <= 0 || !(events instanceof Uint8Array)) return;
  const dv = new DataView(events.buffer, events.byteOffset, events.byteLength);
  // Every iolab poller stores the fd in the low half of epoll_event.data (sys/epoll.ts).
  for (let i = 0; i < r; i++) sub('ready', t, dv.getInt32(i * EPOLL_EVENT_SIZE + EPOLL_EVENT_DATA, true), dv.getUint32(i * EPOLL_EVENT_SIZE, true), 0, 0, 0);
}

/**
 * A traced wrapper around an (untraced) binding. A cold binding's SyscallError is recorded with its
 * errno and rethrown. `ptr`: the result is a pointer (mmap), recorded as 0.
 */
export function traced<F extends Fn>(name: SyscallName, fn: F, ptr = false): F {
  const id = ID[name]!;
  const pre = PRE[name];
  const post = POST[name];
  return ((...x: any[]) => {
    if (pre) pre(x);
    else set(-1);
    const fd = pFd, a = pA, b = pB, c = pC;
    const t0 = nowNs();
    let r: any;
    try {
      r = fn(...x);
    } catch (e) {
      if (e instanceof SyscallError) push(id, t0, nowNs(), fd, a, b, c, -e.errno);
      throw e;
    }
    const t1 = nowNs();
    push(id, t0, t1, fd, a, b, c, ptr ? 0 : num(r));
    if (post) post(x, num(r), t1);
    return r;
  }) as F;
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

const EV_NAMES: [number, string][] = [
  [0x1, 'IN'], [0x2, 'PRI'], [0x4, 'OUT'], [0x8, 'ERR'], [0x10, 'HUP'], [0x20, 'NVAL'], [0x2000, 'RDHUP'],
  [1 << 28, 'EXCLUSIVE'], [1 << 30, 'ONESHOT'], [0x80000000, 'ET'],
];
/** epoll/poll event bits by name (EPOLLIN = POLLIN ... as include/uapi/linux/eventpoll.h defines them). */
export function eventNames(m: number): string {
  const out: string[] = [];
  for (const [bit, n] of EV_NAMES) if ((m >>> 0) & bit) out.push(n);
  return out.join('|') || '0';
}

/** enum io_uring_op (include/uapi/linux/io_uring.h), up to the ones iolab or a reader may meet. */
export const IORING_OP_NAMES = [
  'NOP', 'READV', 'WRITEV', 'FSYNC', 'READ_FIXED', 'WRITE_FIXED', 'POLL_ADD', 'POLL_REMOVE', 'SYNC_FILE_RANGE',
  'SENDMSG', 'RECVMSG', 'TIMEOUT', 'TIMEOUT_REMOVE', 'ACCEPT', 'ASYNC_CANCEL', 'LINK_TIMEOUT', 'CONNECT',
  'FALLOCATE', 'OPENAT', 'CLOSE', 'FILES_UPDATE', 'STATX', 'READ', 'WRITE', 'FADVISE', 'MADVISE', 'SEND', 'RECV',
  'OPENAT2', 'EPOLL_CTL', 'SPLICE', 'PROVIDE_BUFFERS', 'REMOVE_BUFFERS', 'TEE', 'SHUTDOWN',
];

function bits(m: number, names: [number, string][]): string {
  const out: string[] = [];
  for (const [bit, n] of names) if (m & bit) out.push(n);
  return out.join('|');
}
const ACCEPT_FLAGS: [number, string][] = [[0o4000, 'SOCK_NONBLOCK'], [0o2000000, 'SOCK_CLOEXEC']];
const ENTER_FLAGS: [number, string][] = [[1, 'GETEVENTS'], [2, 'SQ_WAKEUP'], [4, 'SQ_WAIT'], [8, 'EXT_ARG']];
/** sqe flags (IOSQE_*) in the low byte; the multishot bit of ioprio shifted to bit 8. */
const SQE_FLAGS: [number, string][] = [
  [1, 'FIXED_FILE'], [2, 'IO_DRAIN'], [4, 'IO_LINK'], [8, 'IO_HARDLINK'], [16, 'ASYNC'], [32, 'BUFFER_SELECT'],
  [64, 'CQE_SKIP_SUCCESS'], [256, 'MULTISHOT'],
];
const CQE_FLAGS: [number, string][] = [[1, 'BUFFER'], [2, 'MORE'], [4, 'SOCK_NONEMPTY']];
const CTL_OPS: Record<number, string> = { 1: 'ADD', 2: 'DEL', 3: 'MOD' };
const SHUT_HOW: Record<number, string> = { 0: 'SHUT_RD', 1: 'SHUT_WR', 2: 'SHUT_RDWR' };

function decode(s: number): TraceRecord {
  const i = s & mask;
  const id = tName[i]!;
  const sys = TRACE_NAMES[id]!;
  const r = tRes[i]!;
  const fd = tFd[i]!, a = tA[i]!, b = tB[i]!, c = tC[i]!;
  const rec: TraceRecord = { pid, tid, seq: s, t: Math.round(tT[i]!), dur: Math.round(tDur[i]!), sys, res: r };
  if (r < 0) rec.err = errnoName(-r);
  if (tN[i]! > 1) {
    rec.n = tN[i]!;
    rec.tEnd = Math.round(tEnd[i]!);
  }
  if (fd >= 0) rec.fd = fd;
  switch (sys) {
    case 'read': case 'write': case 'recv': case 'send': case 'sendfile': case 'aio_read': case 'aio_write':
      rec.len = a;
      break;
    case 'readv': case 'writev':
      rec.len = a;
      break;
    case 'accept4':
      rec.flags = bits(b, ACCEPT_FLAGS) || '0';
      break;
    case 'epoll_ctl':
      rec.op = CTL_OPS[a] ?? String(a);
      if (rec.op !== 'DEL') rec.events = eventNames(b);
      rec.args = [c];
      break;
    case 'epoll_wait': case 'epoll_pwait2':
      rec.nfds = a;
      rec.timeout = c;
      break;
    case 'poll': case 'select': case 'aio_suspend':
      rec.nfds = a;
      rec.timeout = c;
      break;
    case 'nanosleep':
      rec.timeout = c;
      break;
    case 'io_uring_enter':
      rec.submit = a;
      rec.wait = b;
      rec.flags = bits(c, ENTER_FLAGS) || '0';
      break;
    case 'ready':
      rec.events = eventNames(a);
      break;
    case 'sqe':
      rec.op = IORING_OP_NAMES[a] ?? `OP_${a}`;
      rec.len = b;
      rec.flags = bits(c, SQE_FLAGS) || '0';
      break;
    case 'cqe':
      rec.op = a >= 0 ? (IORING_OP_NAMES[a] ?? `OP_${a}`) : 'unknown';
      rec.flags = bits(b, CQE_FLAGS) || '0';
      break;
    case 'aio_done':
      rec.op = a === 0 ? 'READ' : 'WRITE';
      break;
    case 'shutdown':
      rec.op = SHUT_HOW[a] ?? String(a);
      break;
    default:
      if (a || b) rec.args = [a, b];
  }
  return rec;
}

/** Parse an NDJSON trace file's text (lines that are not records are skipped). */
export function parseTrace(text: string): TraceRecord[] {
  const out: TraceRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as TraceRecord;
      if (typeof r.t === 'number' && typeof r.sys === 'string') out.push(r);
    } catch {
      // a torn last line (a process killed mid-write): skip it
    }
  }
  return out;
}
