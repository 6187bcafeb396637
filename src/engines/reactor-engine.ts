/**
 * An Engine made of readiness reactors: one loop in this thread, or with `workers > 1` one loop per
 * worker thread, each with its own SO_REUSEPORT listener so the kernel spreads connections.
 */
import { Worker } from 'node:worker_threads';
import { loadApp } from '../apps/index.js';
import { createService, stallWarner } from '../apps/service.js';
import { listenTcp, localAddress } from '../sys/index.js';
import { Reactor } from './reactor/reactor.js';
import type { Poller } from './reactor/poller.js';
import { emptyStats, mergeStats, type Engine, type EngineOptions, type EngineStats, type Listening } from './types.js';

export type PollerFactory = (opts: EngineOptions) => Poller;

/** One loop in the calling thread. */
export class ReactorEngine implements Engine {
  readonly name: string;
  private reactor: Reactor | null = null;
  private resolveDone!: () => void;
  private rejectDone!: (e: unknown) => void;
  readonly done: Promise<void>;

  constructor(name: string, private readonly makePoller: PollerFactory, private readonly opts: EngineOptions, private readonly reusePort = false) {
    this.name = name;
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
    const poller = this.makePoller(o);
    const fd = listenTcp({ host: o.host, port: o.port, backlog: o.backlog, reusePort: this.reusePort, nonBlocking: true });
    const addr = localAddress(fd);
    this.reactor = new Reactor(poller, service, { name: this.name, listenFd: fd, app: app.name, quiet: o.quiet, limits: o.limits });
    this.reactor.done.then(this.resolveDone, this.rejectDone);
    this.reactor.start();
    return { host: addr.host, port: addr.port, engine: poller.name };
  }

  async stop(): Promise<void> {
    if (!this.reactor) return;
    this.reactor.stop(this.opts.drainMs);
    await this.done;
  }

  async stats(): Promise<EngineStats> {
    if (!this.reactor) throw new Error('engine not started');
    return this.reactor.stats();
  }
}

type FromWorker =
  | { type: 'listening'; listening: Listening }
  | { type: 'stats'; id: number; stats: EngineStats }
  | { type: 'error'; message: string }
  | { type: 'final'; stats: EngineStats };

/** N loops on N worker threads, sharing the port with SO_REUSEPORT. */
export class WorkerPoolEngine implements Engine {
  readonly name: string;
  private workers: Worker[] = [];
  private seq = 0;
  private waiting = new Map<number, { n: number; parts: EngineStats[]; resolve: (s: EngineStats[]) => void }>();
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private exited = 0;
  private finals: EngineStats[] = [];

  /** Connections open across all loops, for a server-wide --max-connections (ConnectionLimits.shared). */
  private readonly connCount = new Int32Array(new SharedArrayBuffer(4));

  constructor(name: string, private readonly opts: EngineOptions) {
    this.name = name;
    this.done = new Promise((res) => (this.resolveDone = res));
  }

  private spawn(port: number): Promise<Listening> {
    const w = new Worker(new URL('./worker.js', import.meta.url), {
      workerData: { engine: this.name, opts: { ...this.opts, port, workers: 1, limits: { ...this.opts.limits, shared: this.connCount } } },
    });
    this.workers.push(w);
    return new Promise((resolve, reject) => {
      w.on('message', (m: FromWorker) => {
        if (m.type === 'listening') resolve(m.listening);
        else if (m.type === 'error') reject(new Error(m.message));
        else if (m.type === 'final') this.finals.push(m.stats);
        else if (m.type === 'stats') {
          const wait = this.waiting.get(m.id);
          if (!wait) return;
          wait.parts.push(m.stats);
          if (wait.parts.length === wait.n) {
            this.waiting.delete(m.id);
            wait.resolve(wait.parts);
          }
        }
      });
      w.on('error', reject);
      w.on('exit', () => {
        if (++this.exited === this.workers.length) this.resolveDone();
      });
    });
  }

  async start(): Promise<Listening> {
    // The first loop picks the port (when 0); the rest join it.
    const first = await this.spawn(this.opts.port);
    await Promise.all(Array.from({ length: this.opts.workers - 1 }, () => this.spawn(first.port)));
    return first;
  }

  async stop(): Promise<void> {
    for (const w of this.workers) w.postMessage({ type: 'stop' });
    await this.done;
  }

  async stats(): Promise<EngineStats> {
    if (this.exited > 0) {
      // Loops that have stopped sent their last counters on the way out.
      const s = this.finals.length ? mergeStats(this.finals) : emptyStats(this.name, this.opts.app, 'unknown');
      s.threads = 1;
      return s;
    }
    const id = ++this.seq;
    const parts = await new Promise<EngineStats[]>((resolve) => {
      this.waiting.set(id, { n: this.workers.length, parts: [], resolve });
      for (const w of this.workers) w.postMessage({ type: 'stats', id });
    });
    const s = mergeStats(parts);
    s.threads += 1; // the main thread, which only supervises
    return s;
  }
}
