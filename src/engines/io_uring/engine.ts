/**
 * The io_uring Engine, and its fallback: `createIoUringEngine` probes the kernel first and, when it
 * refuses (ENOSYS, EPERM, EINVAL, ENOMEM, kernel.io_uring_disabled, a kernel too old for the
 * features used), says so in one line and returns the epoll engine instead, so stats and results
 * name what actually ran (RELIABILITY.md, fault 6).
 *
 * Try it: iolab serve --engine io_uring --app hello --port 8080   # then: curl localhost:8080/
 *         IOLAB_IO_URING=off iolab serve --engine io_uring ...     # the fallback, with its notice
 *         IOLAB_SQPOLL=1 iolab serve --engine io_uring ...         # a kernel thread polls the SQ
 */
import { isMainThread } from 'node:worker_threads';
import { loadApp } from '../../apps/index.js';
import { createService, stallWarner } from '../../apps/service.js';
import { listenTcp, localAddress, setNoDelay } from '../../sys/index.js';
import { probeIoUring, type IoUringSupport } from '../../sys/io_uring.js';
import { EpollPoller } from '../epoll/poller.js';
import { ReactorEngine, WorkerPoolEngine } from '../reactor-engine.js';
import type { Engine, EngineOptions, EngineStats, Listening } from '../types.js';
import { UringLoop, type UringStats } from './loop.js';

/** `IOLAB_SQPOLL=1` asks for IORING_SETUP_SQPOLL until EngineOptions carries a `sqpoll` flag. */
export function sqpollRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.IOLAB_SQPOLL;
  return v !== undefined && v !== '' && v !== '0' && v !== 'off';
}

/** One completion loop in the calling thread. */
export class IoUringEngine implements Engine {
  readonly name = 'io_uring';
  private loop: UringLoop | null = null;
  private resolveDone!: () => void;
  private rejectDone!: (e: unknown) => void;
  readonly done: Promise<void>;

  constructor(
    private readonly opts: EngineOptions,
    private readonly support: IoUringSupport,
    private readonly reusePort = false,
  ) {
    this.done = new Promise((res, rej) => {
      this.resolveDone = res;
      this.rejectDone = rej;
    });
  }

  async start(): Promise<Listening> {
    const o = this.opts;
    const app = await loadApp(o.app);
    const service = createService(app, {
      ...o.service,
      onStall: stallWarner(this.name, o.quiet, () => service.stalls.count),
    });
    const fd = listenTcp({ host: o.host, port: o.port, backlog: o.backlog, reusePort: this.reusePort, nonBlocking: true });
    try {
      // Accepted sockets inherit TCP_NODELAY from the listener on Linux (the child socket is cloned
      // from it: sk_clone_lock), so no setsockopt per connection: steady state makes no syscall
      // but io_uring_enter.
      setNoDelay(fd);
      const addr = localAddress(fd);
      this.loop = new UringLoop(service, {
        name: this.name,
        listenFd: fd,
        app: app.name,
        quiet: o.quiet,
        setupFlags: this.support.setupFlags,
        multishotRecv: this.support.multishotRecv,
        sqpoll: sqpollRequested(),
        limits: o.limits,
      });
      this.loop.done.then(this.resolveDone, this.rejectDone);
      this.loop.start();
      return { host: addr.host, port: addr.port, engine: this.loop.engineName };
    } catch (e) {
      if (!this.loop) {
        const { ffi } = await import('../../sys/index.js');
        ffi.close(fd);
      }
      throw e;
    }
  }

  async stop(): Promise<void> {
    if (!this.loop) return;
    this.loop.stop(this.opts.drainMs);
    await this.done;
  }

  async stats(): Promise<EngineStats> {
    if (!this.loop) throw new Error('engine not started');
    return this.loop.stats() satisfies UringStats;
  }
}

/**
 * `createEngine('io_uring', ...)`: probe, then io_uring (one loop, or N worker threads each with
 * its own ring and SO_REUSEPORT listener), or epoll with one notice when the kernel refuses.
 */
export function createIoUringEngine(opts: EngineOptions, internal: { reusePort?: boolean } = {}): Engine {
  const p = probeIoUring();
  if (!p.ok) {
    // Worker threads of a pool only get here if the main thread's probe passed; stay quiet there
    // so the notice is printed once per server.
    if (!opts.quiet && isMainThread) process.stderr.write(`iolab: io_uring unavailable (${p.reason}); falling back to epoll\n`);
    if (opts.workers > 1) return new WorkerPoolEngine('epoll', opts);
    return new ReactorEngine('epoll', (o) => new EpollPoller({ edge: o.edge }), opts, internal.reusePort ?? false);
  }
  if (opts.workers > 1) return new WorkerPoolEngine('io_uring', opts);
  return new IoUringEngine(opts, p, internal.reusePort ?? false);
}
