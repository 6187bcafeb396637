/** Engines by name. */
import { EpollPoller } from './epoll/poller.js';
import { PollPoller } from './poll/poller.js';
import { SelectPoller } from './select/poller.js';
import { ReactorEngine, WorkerPoolEngine } from './reactor-engine.js';
import { DEFAULT_ENGINE_OPTIONS, type Engine, type EngineOptions } from './types.js';

export const ENGINES = ['select', 'poll', 'epoll'] as const;

export interface EngineInfo {
  name: string;
  model: 'blocking' | 'non-blocking' | 'multiplexing' | 'async' | 'reference';
  summary: string;
}

export const ENGINE_INFO: Record<string, EngineInfo> = {
  select: { name: 'select', model: 'multiplexing', summary: 'one thread; select(2) over fd bitmaps, O(highest fd) per wait, fds < 1024 only' },
  poll: { name: 'poll', model: 'multiplexing', summary: 'one thread; poll(2) over a pollfd array, O(watched fds) per wait' },
  epoll: { name: 'epoll', model: 'multiplexing', summary: 'one thread; epoll_wait reports ready fds (O(ready)); --edge for EPOLLET' },
};

export function engineOptions(o: Partial<EngineOptions> & { app: string }): EngineOptions {
  return { ...DEFAULT_ENGINE_OPTIONS, ...o, service: { ...DEFAULT_ENGINE_OPTIONS.service, ...o.service } };
}

export async function createEngine(name: string, opts: EngineOptions, internal: { reusePort?: boolean } = {}): Promise<Engine> {
  if (!(name in ENGINE_INFO)) {
    throw new Error(`unknown engine ${JSON.stringify(name)}; available: ${ENGINES.join(', ')}`);
  }
  if (opts.workers > 1) return new WorkerPoolEngine(name, opts);
  switch (name) {
    case 'select':
      return new ReactorEngine(name, () => new SelectPoller(), opts, internal.reusePort ?? false);
    case 'poll':
      return new ReactorEngine(name, () => new PollPoller(), opts, internal.reusePort ?? false);
    case 'epoll':
      return new ReactorEngine(name, (o) => new EpollPoller({ edge: o.edge }), opts, internal.reusePort ?? false);
  }
  throw new Error(`engine ${name} is not built yet`);
}
