/**
 * libc through koffi. This file and its siblings in sys/ are the only code that touches FFI.
 *
 * Two wrapper shapes, both built by one function each, so errno is read in exactly one place:
 *  - `hot*`: I/O on the fast path (read, write, accept4, epoll_wait ...). Returns the result, or
 *    `-errno` (the kernel's own convention, as io_uring CQEs report it). EAGAIN and ECONNRESET are
 *    ordinary events there, so they come back as values, never as exceptions.
 *  - `cold*`: set-up calls (socket, bind, listen ...). Throws a `SyscallError` naming the call.
 * Both retry EINTR and bump the binding's call counter, except the waits (epoll_wait, poll, select,
 * nanosleep, io_uring_enter), which return -EINTR: retrying with the original timeout restarts it, and
 * under a 1 kHz SIGPROF (node --cpu-prof) such a wait would never expire. Callers treat it as "nothing
 * fired" and recompute their timeout.
 *
 * The exported bindings are `let`s so that `enableTracing()` (end of file, sys/trace.ts) can swap in
 * traced wrappers; call them through the module namespace (`ffi.read`), never keep a copy.
 */
import koffi from 'koffi';
import { counts, eagain, SYS, type SyscallName } from './counters.js';
import { EAGAIN, EINTR, SyscallError, lastErrno } from './errno.js';
import { startRecorder, stopRecorder, traced, tracing, type TraceOptions } from './trace.js';

if (process.platform !== 'linux') {
  throw new Error(`iolab drives Linux syscalls directly; this is ${process.platform}`);
}

export const libc = koffi.load('libc.so.6');

type Fn = (...args: any[]) => number;

function hot<F extends Fn>(name: SyscallName, fn: F, retryEintr = true): F {
  const id = SYS[name];
  if (!retryEintr) {
    return ((a: unknown, b: unknown, c: unknown, d: unknown, e5: unknown, f: unknown) => {
      counts[id]!++;
      const r = fn(a, b, c, d, e5, f);
      return r >= 0 ? r : fail(lastErrno());
    }) as unknown as F;
  }
  // Fixed arities keep the call monomorphic; rest parameters would allocate an array per call.
  switch (fn.length) {
    case 0:
      return (() => {
        counts[id]!++;
        for (;;) {
          const r = fn();
          if (r >= 0) return r;
          const e = lastErrno();
          if (e !== EINTR) return fail(e);
        }
      }) as F;
    case 1:
      return ((a: unknown) => {
        counts[id]!++;
        for (;;) {
          const r = fn(a);
          if (r >= 0) return r;
          const e = lastErrno();
          if (e !== EINTR) return fail(e);
        }
      }) as F;
    case 2:
      return ((a: unknown, b: unknown) => {
        counts[id]!++;
        for (;;) {
          const r = fn(a, b);
          if (r >= 0) return r;
          const e = lastErrno();
          if (e !== EINTR) return fail(e);
        }
      }) as F;
    case 3:
      return ((a: unknown, b: unknown, c: unknown) => {
        counts[id]!++;
        for (;;) {
          const r = fn(a, b, c);
          if (r >= 0) return r;
          const e = lastErrno();
          if (e !== EINTR) return fail(e);
        }
      }) as F;
    case 4:
      return ((a: unknown, b: unknown, c: unknown, d: unknown) => {
        counts[id]!++;
        for (;;) {
          const r = fn(a, b, c, d);
          if (r >= 0) return r;
          const e = lastErrno();
          if (e !== EINTR) return fail(e);
        }
      }) as F;
    case 5:
      return ((a: unknown, b: unknown, c: unknown, d: unknown, e5: unknown) => {
        counts[id]!++;
        for (;;) {
          const r = fn(a, b, c, d, e5);
          if (r >= 0) return r;
          const e = lastErrno();
          if (e !== EINTR) return fail(e);
        }
      }) as F;
    case 6:
      return ((a: unknown, b: unknown, c: unknown, d: unknown, e5: unknown, f: unknown) => {
        counts[id]!++;
        for (;;) {
          const r = fn(a, b, c, d, e5, f);
          if (r >= 0) return r;
          const e = lastErrno();
          if (e !== EINTR) return fail(e);
        }
      }) as F;
    default:
      throw new Error(`hot(): unsupported arity ${fn.length} for ${name}`);
  }
}

function fail(e: number): number {
  if (e === EAGAIN) eagain[0]!++;
  return -e;
}

/** Wrap a hot binding so that any error throws a SyscallError (for set-up calls). */
function cold<F extends Fn>(name: SyscallName, fn: F): F {
  const h = hot(name, fn);
  return ((...args: unknown[]) => {
    const r = h(...args);
    if (r < 0) throw new SyscallError(name, -r);
    return r;
  }) as F;
}

/** Throw a SyscallError for a `-errno` result from a hot binding. */
export function check(name: string, r: number, detail?: string): number {
  if (r < 0) throw new SyscallError(name, -r, detail);
  return r;
}

// The declared arity (fn.length) must match the C prototype, so each binding is a named-arity lambda.
const _socket = libc.func('int socket(int, int, int)');
const _setsockopt = libc.func('int setsockopt(int, int, int, const void *, uint32_t)');
const _getsockopt = libc.func('int getsockopt(int, int, int, void *, void *)');
const _bind = libc.func('int bind(int, const void *, uint32_t)');
const _listen = libc.func('int listen(int, int)');
const _accept4 = libc.func('int accept4(int, void *, void *, int)');
const _connect = libc.func('int connect(int, const void *, uint32_t)');
const _read = libc.func('intptr_t read(int, void *, size_t)');
const _write = libc.func('intptr_t write(int, const void *, size_t)');
const _readv = libc.func('intptr_t readv(int, const void *, int)');
const _writev = libc.func('intptr_t writev(int, const void *, int)');
const _recv = libc.func('intptr_t recv(int, void *, size_t, int)');
const _send = libc.func('intptr_t send(int, const void *, size_t, int)');
const _shutdown = libc.func('int shutdown(int, int)');
const _close = libc.func('int close(int)');
// fcntl is variadic in C; on the LP64 ABIs every int/long argument travels in a register, so a
// fixed three-int prototype is call-compatible for F_GETFL/F_SETFL.
const _fcntl = libc.func('fcntl', 'int', ['int', 'int', 'int']);
const _getsockname = libc.func('int getsockname(int, void *, void *)');
const _getpeername = libc.func('int getpeername(int, void *, void *)');
const _epoll_create1 = libc.func('int epoll_create1(int)');
const _epoll_ctl = libc.func('int epoll_ctl(int, int, int, void *)');
const _epoll_wait = libc.func('int epoll_wait(int, void *, int, int)');
const _poll = libc.func('int poll(void *, uint64_t, int)');
const _select = libc.func('int select(int, void *, void *, void *, void *)');
const _eventfd = libc.func('int eventfd(unsigned int, int)');
const _sendfile = libc.func('intptr_t sendfile(int, int, void *, size_t)');
const _mmap = libc.func('void *mmap(void *, size_t, int, int, int, int64_t)');
const _munmap = libc.func('int munmap(void *, size_t)');
const _getrlimit = libc.func('int getrlimit(int, void *)');
const _setrlimit = libc.func('int setrlimit(int, const void *)');
const _sched_setaffinity = libc.func('int sched_setaffinity(int, size_t, const void *)');
const _sched_yield = libc.func('int sched_yield()');
const _nanosleep = libc.func('int nanosleep(const void *, void *)');
const _pipe2 = libc.func('int pipe2(void *, int)');
const _open = libc.func('open', 'int', ['str', 'int', 'int']);
const _openat = libc.func('openat', 'int', ['int', 'str', 'int', 'int']);
const _pread = libc.func('intptr_t pread64(int, void *, size_t, int64_t)');
// statx(2), not fstat: struct statx has one layout on every architecture (struct stat does not).
const _statx = libc.func('int statx(int, const char *, int, unsigned int, void *)');
const _splice = libc.func('intptr_t splice(int, void *, int, void *, size_t, unsigned int)');
const _gettid = libc.func('int gettid()');
const _memfd_create = libc.func('memfd_create', 'int', ['str', 'unsigned int']);
const _ftruncate = libc.func('int ftruncate(int, int64_t)');
const _fallocate = libc.func('int fallocate(int, int, int64_t, int64_t)');
// futex(2) has no libc wrapper: through syscall(2), as io_uring below. Its number is not unified.
const NR_futex = process.arch === 'arm64' ? 98 : 202;
const _futex = libc.func('syscall', 'long', ['long', 'void *', 'int', 'int', 'void *', 'void *', 'int']);
// io_uring has no libc wrapper; syscall(2) is variadic, but its glibc implementation only shuffles
// integer registers, so fixed prototypes per call shape are safe on x86_64 and aarch64 (libuv's
// linux.c calls syscall() the same way). Numbers are the unified ones (425-427) on both.
const _io_uring_setup = libc.func('syscall', 'long', ['long', 'uint32', 'void *']);
const _io_uring_enter = libc.func('syscall', 'long', ['long', 'int', 'uint32', 'uint32', 'uint32', 'void *', 'size_t']);
const _io_uring_register = libc.func('syscall', 'long', ['long', 'int', 'uint32', 'void *', 'uint32']);
export const NR_io_uring_setup = 425;
export const NR_io_uring_enter = 426;
export const NR_io_uring_register = 427;

type Ptr = Uint8Array | null;

// ---- hot: return -errno ----
export let read = hot('read', (fd: number, buf: Uint8Array, len: number): number => _read(fd, buf, len));
export let write = hot('write', (fd: number, buf: Uint8Array, len: number): number => _write(fd, buf, len));
export let readv = hot('readv', (fd: number, iov: Uint8Array, n: number): number => _readv(fd, iov, n));
export let writev = hot('writev', (fd: number, iov: Uint8Array, n: number): number => _writev(fd, iov, n));
export let recv = hot('recv', (fd: number, buf: Uint8Array, len: number, flags: number): number => _recv(fd, buf, len, flags));
export let send = hot('send', (fd: number, buf: Uint8Array, len: number, flags: number): number => _send(fd, buf, len, flags));
export let accept4 = hot('accept4', (fd: number, addr: Ptr, addrlen: Ptr, flags: number): number => _accept4(fd, addr, addrlen, flags));
export let connect = hot('connect', (fd: number, addr: Uint8Array, len: number): number => _connect(fd, addr, len));
export let close = hot('close', (fd: number): number => _close(fd));
export let shutdown = hot('shutdown', (fd: number, how: number): number => _shutdown(fd, how));
export let epollCtl = hot('epoll_ctl', (epfd: number, op: number, fd: number, ev: Ptr): number => _epoll_ctl(epfd, op, fd, ev));
export let epollWait = hot('epoll_wait', (epfd: number, events: Uint8Array, max: number, timeout: number): number => _epoll_wait(epfd, events, max, timeout), false);
export let poll = hot('poll', (fds: Uint8Array, n: number, timeout: number): number => _poll(fds, n, timeout), false);
export let select = hot('select', (nfds: number, r: Ptr, w: Ptr, e: Ptr, tv: Ptr): number => _select(nfds, r, w, e, tv), false);
export let sendfile = hot('sendfile', (out: number, inp: number, off: Ptr, count: number): number => _sendfile(out, inp, off, count));
export let sched_yield = hot('sched_yield', (): number => _sched_yield());
export let nanosleepRaw = hot('nanosleep', (req: Uint8Array, rem: Ptr): number => _nanosleep(req, rem), false);
export let io_uring_enter = hot('io_uring_enter', (fd: number, toSubmit: number, minComplete: number, flags: number, arg: Ptr, argsz: number): number =>
  _io_uring_enter(NR_io_uring_enter, fd, toSubmit, minComplete, flags, arg, argsz), false);
export let io_uring_setup = hot('io_uring_setup', (entries: number, params: Uint8Array): number => _io_uring_setup(NR_io_uring_setup, entries, params));
export let io_uring_register = hot('io_uring_register', (fd: number, op: number, arg: Ptr, nr: number): number =>
  _io_uring_register(NR_io_uring_register, fd, op, arg, nr));
export let fcntl = hot('fcntl', (fd: number, cmd: number, arg: number): number => _fcntl(fd, cmd, arg));
export let getsockopt = hot('getsockopt', (fd: number, level: number, opt: number, val: Uint8Array, len: Uint32Array): number =>
  _getsockopt(fd, level, opt, val, len));

// ---- cold: throw SyscallError ----
export let socket = cold('socket', (domain: number, type: number, proto: number): number => _socket(domain, type, proto));
export let setsockopt = cold('setsockopt', (fd: number, level: number, opt: number, val: Uint8Array, len: number): number =>
  _setsockopt(fd, level, opt, val, len));
export let bind = cold('bind', (fd: number, addr: Uint8Array, len: number): number => _bind(fd, addr, len));
export let listen = cold('listen', (fd: number, backlog: number): number => _listen(fd, backlog));
export let getsockname = cold('getsockname', (fd: number, addr: Uint8Array, len: Uint32Array): number => _getsockname(fd, addr, len));
export let getpeername = hot('getpeername', (fd: number, addr: Uint8Array, len: Uint32Array): number => _getpeername(fd, addr, len));
export let epollCreate1 = cold('epoll_create1', (flags: number): number => _epoll_create1(flags));
export let eventfd = cold('eventfd', (init: number, flags: number): number => _eventfd(init, flags));
export let getrlimitRaw = cold('getrlimit', (res: number, out: Uint8Array): number => _getrlimit(res, out));
export let setrlimitRaw = cold('setrlimit', (res: number, val: Uint8Array): number => _setrlimit(res, val));
export let schedSetaffinityRaw = cold('sched_setaffinity', (pid: number, size: number, mask: Uint8Array): number =>
  _sched_setaffinity(pid, size, mask));
export let pipe2Raw = cold('pipe2', (fds: Int32Array, flags: number): number => _pipe2(fds, flags));
/** openat(2) returning -errno (a missing file is an answer, not an exception). */
export let openat = hot('openat', (dirfd: number, path: string, flags: number, mode: number): number => _openat(dirfd, path, flags, mode));
export let pread = hot('pread64', (fd: number, buf: Uint8Array, len: number, off: number): number => _pread(fd, buf, len, off));
export let statx = hot('statx', (dirfd: number, path: string, flags: number, mask: number, out: Uint8Array): number =>
  _statx(dirfd, path, flags, mask, out));
export let splice = hot('splice', (fdIn: number, offIn: Ptr, fdOut: number, offOut: Ptr, len: number, flags: number): number =>
  _splice(fdIn, offIn, fdOut, offOut, len, flags));
export let open = cold('open', (path: string, flags: number, mode: number): number => _open(path, flags, mode));
export let gettid = cold('gettid', (): number => _gettid());
export let munmapRaw = cold('munmap', (addr: unknown, len: number): number => _munmap(addr, len));
export let memfdCreate = cold('memfd_create', (name: string, flags: number): number => _memfd_create(name, flags));
export let ftruncate = cold('ftruncate', (fd: number, len: number): number => _ftruncate(fd, len));
export let fallocate = cold('fallocate', (fd: number, mode: number, off: number, len: number): number => _fallocate(fd, mode, off, len));
/**
 * futex(2) on the int32 at the start of `word` (a typed array: koffi passes its data pointer).
 * A wait returns -EINTR rather than retrying (as the other waits), -EAGAIN when the word had changed.
 */
export let futex = hot('futex', (word: Int32Array, op: number, val: number, timeout: Ptr): number =>
  _futex(NR_futex, word, op, val, timeout, null, 0), false);

/** mmap returns a pointer; MAP_FAILED is (void *)-1. Returns the koffi pointer. */
export let mmap = function mmap(addr: unknown, len: number, prot: number, flags: number, fd: number, off: number): unknown {
  counts[SYS.mmap]!++;
  const p = _mmap(addr, len, prot, flags, fd, off);
  if (p === null || koffi.address(p) === 0xffffffffffffffffn) throw new SyscallError('mmap', lastErrno());
  return p;
};

// ---- blocking engines (engines/prefork) ----
// prctl is variadic in C (`int prctl(int, ...)`); glibc reads the four arguments as unsigned long with
// va_arg, and on the LP64 ABIs each travels in an integer register, so a fixed prototype is
// call-compatible (the same reasoning as fcntl above).
const _prctl = libc.func('prctl', 'int', ['int', 'unsigned long', 'unsigned long', 'unsigned long', 'unsigned long']);
export let prctl = cold('prctl', (option: number, a2: number, a3: number, a4: number, a5: number): number => _prctl(option, a2, a3, a4, a5));

export { koffi };

// ---- load generator (loadgen/epoll-io.ts) ----
// epoll_pwait2 (Linux 5.11, glibc 2.35) takes a struct timespec timeout, so rate mode can wake at a
// request's intended send time instead of up to 1 ms late (epoll_wait counts whole milliseconds).
// Older glibc lacks the symbol: then `epollPwait2` is null and callers use epollWait.
let _epoll_pwait2: ((epfd: number, ev: Uint8Array, max: number, ts: Uint8Array | null, sigmask: null) => number) | null = null;
try {
  _epoll_pwait2 = libc.func('int epoll_pwait2(int, void *, int, const void *, const void *)');
} catch {
  _epoll_pwait2 = null;
}
const _pw2 = _epoll_pwait2;
/** Wait with a timespec timeout (null = forever). Returns -EINTR like the other waits. */
export let epollPwait2 = _pw2 === null
  ? null
  : hot('epoll_pwait2', (epfd: number, events: Uint8Array, max: number, ts: Uint8Array | null): number => _pw2(epfd, events, max, ts, null), false);

// ---- tracing (sys/trace.ts) ----
// Every binding above is an `export let`, so switching tracing on reassigns it to a traced wrapper, and
// switching it off puts back the very function object built above: with tracing off, a call through
// the module namespace (`ffi.read(...)`) runs exactly the untraced code, with no flag tested per call.

/** The bindings as built above (untraced), by export name, with the syscall each one records. */
const BINDINGS = {
  read, write, readv, writev, recv, send, accept4, connect, close, shutdown, epollCtl, epollWait, poll, select, sendfile,
  sched_yield, nanosleepRaw, io_uring_enter, io_uring_setup, io_uring_register, fcntl, getsockopt, socket, setsockopt,
  bind, listen, getsockname, getpeername, epollCreate1, eventfd, getrlimitRaw, setrlimitRaw, schedSetaffinityRaw,
  pipe2Raw, open, gettid, munmapRaw, mmap, prctl, epollPwait2, openat, pread, statx, splice, memfdCreate, ftruncate, futex, fallocate,
};
type Bindings = typeof BINDINGS;
/** The untraced bindings: what every export above is whenever tracing is off (tests compare against it). */
export const untraced: Readonly<Bindings> = Object.freeze({ ...BINDINGS });

const SYSNAME: { readonly [K in keyof Bindings]: SyscallName } = {
  read: 'read', write: 'write', readv: 'readv', writev: 'writev', recv: 'recv', send: 'send', accept4: 'accept4',
  connect: 'connect', close: 'close', shutdown: 'shutdown', epollCtl: 'epoll_ctl', epollWait: 'epoll_wait', poll: 'poll',
  select: 'select', sendfile: 'sendfile', sched_yield: 'sched_yield', nanosleepRaw: 'nanosleep', io_uring_enter: 'io_uring_enter',
  io_uring_setup: 'io_uring_setup', io_uring_register: 'io_uring_register', fcntl: 'fcntl', getsockopt: 'getsockopt',
  socket: 'socket', setsockopt: 'setsockopt', bind: 'bind', listen: 'listen', getsockname: 'getsockname',
  getpeername: 'getpeername', epollCreate1: 'epoll_create1', eventfd: 'eventfd', getrlimitRaw: 'getrlimit',
  setrlimitRaw: 'setrlimit', schedSetaffinityRaw: 'sched_setaffinity', pipe2Raw: 'pipe2', open: 'open', gettid: 'gettid',
  munmapRaw: 'munmap', mmap: 'mmap', prctl: 'prctl', epollPwait2: 'epoll_pwait2', openat: 'openat', pread: 'pread64',
  statx: 'statx', splice: 'splice', memfdCreate: 'memfd_create', ftruncate: 'ftruncate', futex: 'futex', fallocate: 'fallocate',
};

function assign(b: Bindings): void {
  read = b.read; write = b.write; readv = b.readv; writev = b.writev; recv = b.recv; send = b.send; accept4 = b.accept4;
  connect = b.connect; close = b.close; shutdown = b.shutdown; epollCtl = b.epollCtl; epollWait = b.epollWait; poll = b.poll;
  select = b.select; sendfile = b.sendfile; sched_yield = b.sched_yield; nanosleepRaw = b.nanosleepRaw;
  io_uring_enter = b.io_uring_enter; io_uring_setup = b.io_uring_setup; io_uring_register = b.io_uring_register;
  fcntl = b.fcntl; getsockopt = b.getsockopt; socket = b.socket; setsockopt = b.setsockopt; bind = b.bind; listen = b.listen;
  getsockname = b.getsockname; getpeername = b.getpeername; epollCreate1 = b.epollCreate1; eventfd = b.eventfd;
  getrlimitRaw = b.getrlimitRaw; setrlimitRaw = b.setrlimitRaw; schedSetaffinityRaw = b.schedSetaffinityRaw;
  pipe2Raw = b.pipe2Raw; open = b.open; gettid = b.gettid; munmapRaw = b.munmapRaw; mmap = b.mmap; prctl = b.prctl;
  epollPwait2 = b.epollPwait2; openat = b.openat; pread = b.pread; statx = b.statx; splice = b.splice;
  memfdCreate = b.memfdCreate; ftruncate = b.ftruncate; futex = b.futex; fallocate = b.fallocate;
}

/**
 * Record every call of this thread (see sys/trace.ts). Each worker thread and child process has its
 * own module instance: call it there too (IOLAB_TRACE does, at load, everywhere).
 */
export function enableTracing(o: TraceOptions = {}): void {
  if (tracing()) return;
  const t = {} as Record<string, unknown>;
  for (const k of Object.keys(BINDINGS) as (keyof Bindings)[]) {
    const fn = untraced[k];
    t[k] = fn === null ? null : traced(SYSNAME[k], fn as (...a: any[]) => any, k === 'mmap');
  }
  // The recorder starts first (it asks for this thread's id through the untraced gettid).
  startRecorder(o, untraced.gettid);
  assign(t as unknown as Bindings);
}

/** Stop recording in this thread (flushing to the trace file, if any) and restore the untraced bindings. */
export function disableTracing(): void {
  if (!tracing()) return;
  assign(untraced);
  stopRecorder();
}

// IOLAB_TRACE=<path>: trace from the start, in every thread and child process that loads the sys layer.
if (process.env.IOLAB_TRACE) enableTracing({ file: process.env.IOLAB_TRACE });
