/** Engines by name. */
import { EpollPoller } from './epoll/poller.js';
import { PollPoller } from './poll/poller.js';
import { SelectPoller } from './select/poller.js';
import { ReactorEngine, WorkerPoolEngine } from './reactor-engine.js';
import { DEFAULT_ENGINE_OPTIONS, type Engine, type EngineOptions } from './types.js';
import { shareKeyspace } from '../apps/kv-shm.js';

export const ENGINES = ['select', 'poll', 'epoll', 'busypoll', 'aio', 'node', 'io_uring', 'threads', 'prefork'] as const;

export interface EngineInfo {
  name: string;
  model: 'blocking' | 'non-blocking' | 'multiplexing' | 'async' | 'reference';
  summary: string;
}

export const ENGINE_INFO: Record<string, EngineInfo> = {
  select: { name: 'select', model: 'multiplexing', summary: 'one thread; select(2) over fd bitmaps, O(highest fd) per wait, fds < 1024 only' },
  poll: { name: 'poll', model: 'multiplexing', summary: 'one thread; poll(2) over a pollfd array, O(watched fds) per wait' },
  epoll: { name: 'epoll', model: 'multiplexing', summary: 'one thread; epoll_wait reports ready fds (O(ready)); --edge for EPOLLET' },
  busypoll: {
    name: 'busypoll',
    model: 'non-blocking',
    summary: 'one thread; no readiness API: each pass tries accept4/read on every O_NONBLOCK fd, counting EAGAIN; IOLAB_BACKOFF=none|yield|sleep:<us> between idle passes',
  },
  aio: {
    name: 'aio',
    model: 'async',
    summary: 'one thread submits glibc POSIX AIO (aio_read/aio_write); each runs as a blocking read/write on a glibc helper thread (one per connection); aio_suspend + an aio_error scan, O(n) per wake; accept4 polled every 2 ms; at most --max-connections (default 256) per loop',
  },
  io_uring: {
    name: 'io_uring',
    model: 'async',
    summary: 'one thread; io_uring: multishot accept and recv into a provided-buffer ring, send SQEs, one io_uring_enter per turn; falls back to epoll when the kernel refuses (IOLAB_SQPOLL=1 for SQPOLL)',
  },
  threads: {
    name: 'threads',
    model: 'blocking',
    summary: 'one thread per connection (a Node worker_thread, ~10 MB RSS each): blocking accept/read/write; threads pooled and reused; IOLAB_MAX_THREADS=N (or --workers N) bounds the pool, the excess waits in the backlog; unbounded refuses (503 / -ERR) past half of RAM or 2000 threads',
  },
  prefork: {
    name: 'prefork',
    model: 'blocking',
    summary: 'N child processes (IOLAB_PROCS or --workers N; default 4) share the listening socket, each blocks in accept() and serves one connection at a time (Apache prefork); dead children replaced',
  },
  node: {
    name: 'node',
    model: 'reference',
    summary: "Node's own net (echo, RESP) and http (llhttp) on libuv/epoll; libuv's syscalls are not visible, so stats.syscalls is empty",
  },
};

export function engineOptions(o: Partial<EngineOptions> & { app: string }): EngineOptions {
  return { ...DEFAULT_ENGINE_OPTIONS, ...o, service: { ...DEFAULT_ENGINE_OPTIONS.service, ...o.service }, limits: { ...DEFAULT_ENGINE_OPTIONS.limits, ...o.limits } };
}

export async function createEngine(name: string, opts: EngineOptions, internal: { reusePort?: boolean } = {}): Promise<Engine> {
  if (!(name in ENGINE_INFO)) {
    throw new Error(`unknown engine ${JSON.stringify(name)}; available: ${ENGINES.join(', ')}`);
  }
  // kv in more than one isolate (a thread per connection, a process per child, a loop per worker):
  // one keyspace for all of them, in shared memory made before the first of them starts.
  if (opts.app === 'kv' && (name === 'threads' || name === 'prefork' || opts.workers > 1)) shareKeyspace();
  // io_uring probes first (and may fall back to epoll), before any worker pool is built.
  if (name === 'io_uring') return (await import('./io_uring/index.js')).createIoUringEngine(opts, internal);
  // Blocking engines read --workers themselves (pool bound / process count): no SO_REUSEPORT loops.
  if (name === 'threads') return new (await import('./threads/engine.js')).ThreadsEngine(opts);
  if (name === 'prefork') return new (await import('./prefork/engine.js')).PreforkEngine(opts);
  if (opts.workers > 1) return new WorkerPoolEngine(name, opts);
  switch (name) {
    case 'select':
      return new ReactorEngine(name, () => new SelectPoller(), opts, internal.reusePort ?? false);
    case 'poll':
      return new ReactorEngine(name, () => new PollPoller(), opts, internal.reusePort ?? false);
    case 'epoll':
      return new ReactorEngine(name, (o) => new EpollPoller({ edge: o.edge }), opts, internal.reusePort ?? false);
    case 'busypoll':
      return (await import('./busypoll/index.js')).createBusypollEngine(opts, internal.reusePort ?? false);
    case 'aio':
      return new (await import('./aio/engine.js')).AioEngine(opts, internal.reusePort ?? false);
    case 'node':
      return new (await import('./node/engine.js')).NodeEngine(opts, internal.reusePort ?? false);
  }
  throw new Error(`engine ${name} is not built yet`);
}
