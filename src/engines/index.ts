/** Engines by name. */
import { EpollPoller } from './epoll/poller.js';
import { ReactorEngine, WorkerPoolEngine } from './reactor-engine.js';
import { DEFAULT_ENGINE_OPTIONS, type Engine, type EngineOptions } from './types.js';

export const ENGINES = ['epoll'] as const;

export interface EngineInfo {
  name: string;
  model: 'blocking' | 'non-blocking' | 'multiplexing' | 'async' | 'reference';
  summary: string;
}

export const ENGINE_INFO: Record<string, EngineInfo> = {
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
    case 'epoll':
      return new ReactorEngine(name, (o) => new EpollPoller({ edge: o.edge }), opts, internal.reusePort ?? false);
  }
  throw new Error(`engine ${name} is not built yet`);
}
