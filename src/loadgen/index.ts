/**
 * The load generator as a module: `runLoad(options)` takes the same options as `iolab load`
 * (options.ts) and resolves with the result the CLI prints as JSON (result.ts; schema in
 * docs/load-json.md). Add `signal` to stop it early (the result is then partial, `interrupted`)
 * and `onProgress` for a once-a-second summary.
 *
 *   const r = await runLoad({ targets: 'http://127.0.0.1:8080/', connections: 100, duration: 5 });
 *   console.log(r.requests.perSec, r.latency.p99);
 */
import { resolveOptions, type LoadOptions } from './options.js';
import { runRamp } from './ramp.js';
import { runResolved, type LoadProgress, type RunControl } from './run.js';
import type { LoadResult } from './result.js';

export type { LoadOptions, ResolvedOptions, LoadMode, LoadProtocol, LoadBackend, Target } from './options.js';
export { LoadUsageError, resolveOptions } from './options.js';
export type { LoadResult, RampSummary, RampStep } from './result.js';
export { formatSummary, SCHEMA } from './result.js';
export type { LoadProgress } from './run.js';
export { decodeHistogram, mergeEncoded, summarize } from './histogram.js';

export interface RunLoadControl {
  /** Abort to stop early; the promise still resolves, with a partial result. */
  signal?: AbortSignal;
  onProgress?: (p: LoadProgress) => void;
  progressMs?: number;
  /** Notices (io_uring unavailable: running on epoll). Default: printed on stderr once. */
  onNotice?: (msg: string) => void;
}

export async function runLoad(options: LoadOptions & RunLoadControl): Promise<LoadResult> {
  const o = resolveOptions(options);
  const ctl: RunControl = { signal: options.signal, onProgress: options.onProgress, progressMs: options.progressMs, onNotice: options.onNotice };
  if (o.mode === 'ramp') return runRamp(o, ctl, options.procs ?? 1);
  return runResolved(o, ctl);
}
