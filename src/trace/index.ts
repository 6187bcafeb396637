/**
 * `iolab trace`: one request's syscalls under each model. Runs a server with tracing on (sys/trace.ts),
 * drives a small scripted client, and turns the server's records into one connection's life by phase.
 * A layer above engines, loadgen and lab (it starts servers with lab/targets.ts), below cli.
 */
import { ENGINES } from '../engines/index.js';
import type { TraceSummary } from '../lab/results.js';
import { runTrace, type TraceRunOptions } from './run.js';

export { analyze, callText, ordered, PHASES, PHASE_TITLE } from './analyze.js';
export { runClient, type TraceApp } from './client.js';
export { renderAll, renderTrace } from './render.js';
export { runTrace, type TraceRun, type TraceRunOptions } from './run.js';

/** Trace each engine in turn (never two servers at once), reporting progress per engine. */
export async function traceEngines(
  engines: readonly string[] = ENGINES,
  o: Omit<TraceRunOptions, 'engine'>,
  progress: (line: string) => void = () => {},
): Promise<TraceSummary[]> {
  const out: TraceSummary[] = [];
  for (const engine of engines) {
    const t0 = Date.now();
    const { summary } = await runTrace({ ...o, engine });
    progress(`traced ${engine} in ${Date.now() - t0} ms: ${summary.status}${summary.reason ? ` (${summary.reason})` : ''}`);
    out.push(summary);
  }
  return out;
}
