/**
 * Ramp: run steps of growing load (connections 10, 100, 1k, 10k ... in closed mode, or rates in
 * rate mode) until one breaks the SLO, and report the breaking point and why. Each step is a run of
 * its own (fresh connections, its own processes when it needs them), so one step's wreckage does
 * not leak into the next.
 */
import { MAX_CONNS_PER_PROC, type ResolvedOptions } from './options.js';
import { runResolved, type RunControl } from './run.js';
import type { LoadResult, RampStep, RampSummary } from './result.js';

/** Why a step's result breaks the SLO (null: it holds). */
export function sloVerdict(o: ResolvedOptions, r: LoadResult, by: 'connections' | 'rate', value: number): string | null {
  const c = r.connections;
  if (by === 'connections' && c.established < c.target) {
    return `only ${c.established} of ${c.target} connections established (${describeErrors(r)})`;
  }
  if (r.requests.completed === 0) return `no replies (${describeErrors(r)})`;
  if (r.errors.rate > o.sloErrors) return `errors ${(r.errors.rate * 100).toFixed(2)}% > ${(o.sloErrors * 100).toFixed(2)}% (${describeErrors(r)})`;
  const p99ms = r.latency.p99 / 1000;
  if (p99ms > o.sloP99Ms) return `p99 ${p99ms.toFixed(1)} ms > ${o.sloP99Ms} ms`;
  if (by === 'rate' && r.requests.perSec < 0.9 * value) {
    return `achieved ${Math.round(r.requests.perSec)} req/s, under 90% of ${value} (server or client saturated)`;
  }
  return null;
}

function describeErrors(r: LoadResult): string {
  const e = r.errors;
  const parts = (['refused', 'reset', 'timeout', 'protocol', 'wrong-reply', 'other'] as const).filter((k) => e[k] > 0).map((k) => `${k} ${e[k]}`);
  return parts.length > 0 ? parts.join(', ') : 'no errors';
}

export async function runRamp(o: ResolvedOptions, ctl: RunControl, requestedProcs: number): Promise<LoadResult> {
  const by = o.rampBy;
  const steps: RampStep[] = [];
  let last: LoadResult | null = null;
  let lastGood: number | null = null;
  let breakingPoint: RampSummary['breakingPoint'] = null;
  for (const value of o.steps) {
    if (ctl.signal?.aborted) break;
    const connections = by === 'connections' ? value : o.connections;
    const procs = Math.min(connections, Math.max(Math.ceil(connections / MAX_CONNS_PER_PROC), requestedProcs));
    const sub: ResolvedOptions = {
      ...o,
      mode: by === 'rate' ? 'rate' : 'closed',
      connections,
      rate: by === 'rate' ? value : 0,
      durationMs: o.stepDurationMs,
      requests: 0,
      procs,
      deadlineMs: o.stepDurationMs + o.connectTimeoutMs + o.timeoutMs + 10_000 + (o.connectRate > 0 ? (connections / o.connectRate) * 1000 : 0),
      notes: [],
    };
    const r = await runResolved(sub, ctl);
    last = r;
    const reason = r.interrupted ? null : sloVerdict(o, r, by, value);
    steps.push({
      value,
      ok: reason === null && !r.interrupted,
      reason,
      perSec: r.requests.perSec,
      completed: r.requests.completed,
      errors: r.errors.total,
      errorRate: r.errors.rate,
      p50: r.latency.p50,
      p99: r.latency.p99,
      max: r.latency.max,
      established: r.connections.established,
    });
    if (r.interrupted) break;
    if (reason !== null) {
      breakingPoint = { value, reason };
      break;
    }
    lastGood = value;
  }
  if (last === null) throw new Error('ramp: no step ran');
  const ramp: RampSummary = { by, slo: { p99Ms: o.sloP99Ms, errors: o.sloErrors }, steps, lastGood, breakingPoint };
  // A ramp that found its breaking point did its job: ok unless it was cut short.
  return { ...last, mode: 'ramp', ok: !last.interrupted && !last.deadlineHit, ramp, notes: [...o.notes, ...last.notes] };
}
