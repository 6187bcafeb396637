/** The `busypoll` engine: the shared reactor over a Poller that asks the kernel nothing (see poller.ts). */
import { ReactorEngine } from '../reactor-engine.js';
import type { EngineOptions } from '../types.js';
import { BusyPoller, parseBackoff } from './poller.js';

export { BusyPoller, parseBackoff, formatBackoff, type Backoff } from './poller.js';

/**
 * Back-off between idle passes: `opts.backoff` once the CLI passes a --backoff flag into EngineOptions,
 * else the environment variable IOLAB_BACKOFF (none | yield | sleep:<us>); default none.
 */
export function backoffFor(opts: EngineOptions): ReturnType<typeof parseBackoff> {
  return parseBackoff(opts.backoff ?? process.env.IOLAB_BACKOFF);
}

export function createBusypollEngine(opts: EngineOptions, reusePort: boolean): ReactorEngine {
  const backoff = backoffFor(opts); // parsed up front: a bad value fails before anything listens
  return new ReactorEngine('busypoll', () => new BusyPoller(backoff), opts, reusePort);
}
