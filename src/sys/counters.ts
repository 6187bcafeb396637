/**
 * Always-on call counters, one slot per binding. An increment of a Float64Array slot costs about
 * a nanosecond, against ~100 ns for the FFI call itself, so counting is never switched off.
 * Each thread (worker) has its own module instance and therefore its own counts.
 */
export const SYSCALLS = [
  'socket', 'setsockopt', 'getsockopt', 'bind', 'listen', 'accept4', 'connect', 'read', 'write',
  'readv', 'writev', 'recv', 'send', 'shutdown', 'close', 'fcntl', 'getsockname', 'getpeername',
  'epoll_create1', 'epoll_ctl', 'epoll_wait', 'poll', 'select', 'eventfd', 'sendfile', 'mmap', 'munmap',
  'io_uring_setup', 'io_uring_enter', 'io_uring_register', 'getrlimit', 'setrlimit', 'sched_setaffinity',
  'sched_yield', 'nanosleep', 'pipe2', 'open', 'fstat', 'gettid',
  // glibc POSIX AIO (sys/aio.ts): library calls, not syscalls; the I/O itself runs in glibc's helper threads.
  'aio_read', 'aio_write', 'aio_suspend', 'aio_cancel',
  // prefork children (engines/prefork): die with the parent.
  'prctl',
  // the load generator (loadgen/epoll-io.ts): a wait with a nanosecond timeout, for rate mode's schedule.
  'epoll_pwait2',
  // files (apps/static.ts and engines' file bodies): open, size, and the copy or zero-copy send.
  'openat', 'statx', 'pread64', 'splice',
  // shared memory between isolates (sys/shm.ts): kv's keyspace on thread- and process-per-connection engines.
  'memfd_create', 'ftruncate', 'futex', 'fallocate',
] as const;
export type SyscallName = (typeof SYSCALLS)[number];

export const SYS: { readonly [K in SyscallName]: number } = Object.freeze(
  Object.fromEntries(SYSCALLS.map((n, i) => [n, i])) as { [K in SyscallName]: number },
);

/** Calls per binding, by SYS index. A live binding: bindCounters() may move it (read it, never keep it). */
export let counts: Float64Array = new Float64Array(SYSCALLS.length);
/** Calls that returned EAGAIN (would block), across all bindings. A live binding, as `counts`. */
export let eagain: Float64Array = new Float64Array(1);

/**
 * Count into `c` (SYSCALLS.length slots) and `e` (one slot) from now on, starting from the counts so
 * far. The blocking engines point them into their thread's stats row (a SharedArrayBuffer the main
 * thread reads while the thread sits in read()), so the row is always current and nothing is copied
 * per request: copying the row after each request (TypedArray.prototype.set) was 2% of the core with
 * 100 connection threads.
 */
export function bindCounters(c: Float64Array, e: Float64Array): void {
  if (c.length !== SYSCALLS.length || e.length !== 1) throw new Error('bindCounters: wrong lengths');
  if (c === counts && e === eagain) return;
  c.set(counts);
  e[0] = eagain[0]!;
  counts = c;
  eagain = e;
}

/** A snapshot as a plain object of the non-zero counters. */
export function syscallCounts(): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < counts.length; i++) if (counts[i]! > 0) out[SYSCALLS[i]!] = counts[i]!;
  return out;
}

export function totalSyscalls(): number {
  let t = 0;
  for (let i = 0; i < counts.length; i++) t += counts[i]!;
  return t;
}

export function resetCounts(): void {
  counts.fill(0);
  eagain[0] = 0;
}
