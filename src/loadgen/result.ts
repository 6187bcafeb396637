/**
 * The result of a run (schema `iolab.load/1`, documented in docs/load-json.md): per-process results
 * merged exactly (counters summed, HDR histograms added bucket by bucket), and the human summary.
 */
import { ERROR_KINDS, emptyErrors, totalErrors, type ErrorCounts } from './errors.js';
import { encodeHistogram, mergeEncoded, summarize, type LatencySummary } from './histogram.js';
import type { ProcResult } from './loop.js';
import type { LoadMode, LoadProtocol, ResolvedOptions } from './options.js';

export const SCHEMA = 'iolab.load/1';
export const VERSION = '0.1.0';

export interface RampStep {
  /** Connections or requests/s of this step. */
  value: number;
  ok: boolean;
  /** Why the step broke the SLO (null when it held). */
  reason: string | null;
  perSec: number;
  completed: number;
  errors: number;
  errorRate: number;
  /** µs */
  p50: number;
  p99: number;
  max: number;
  established: number;
}

export interface RampSummary {
  by: 'connections' | 'rate';
  slo: { p99Ms: number; errors: number };
  steps: RampStep[];
  /** The last step within the SLO (null: none). */
  lastGood: number | null;
  /** The first step that broke it, and why (null: none broke). */
  breakingPoint: { value: number; reason: string } | null;
}

export interface LoadResult {
  schema: typeof SCHEMA;
  tool: { name: 'iolab load'; version: string };
  mode: LoadMode;
  protocol: LoadProtocol;
  backend: string;
  targets: string[];
  /** ISO time when measuring began. */
  startedAt: string;
  /** Errors within --max-errors, something completed (except idle hold), no deadline hit. */
  ok: boolean;
  interrupted: boolean;
  deadlineHit: boolean;
  settings: {
    connections: number;
    pipeline: number;
    durationMs: number;
    requests: number;
    rate: number;
    connectRate: number;
    intervalMs: number;
    timeoutMs: number;
    connectTimeoutMs: number;
    procs: number;
    cpus: number[];
    sources: string[];
    request: string;
  };
  /** The measured window (ms). */
  durationMs: number;
  /** How long connecting took before it (ms). */
  connectMs: number;
  connections: { target: number; established: number; failed: number; open: number; peak: number; reconnects: number };
  requests: { sent: number; completed: number; perSec: number };
  bytes: { sent: number; received: number; sentPerSec: number; receivedPerSec: number };
  errors: ErrorCounts & { total: number; rate: number; byErrno: Record<string, number>; samples: string[] };
  /** µs. In rate mode (and a hold trickle) measured from each request's intended send time. */
  latency: LatencySummary & { corrected: boolean };
  /** Rate mode: from the actual send time (what a closed-loop tool would report). */
  latencyUncorrected: LatencySummary | null;
  connectLatency: LatencySummary;
  /** HdrHistogram compressed base64 (µs), for exact merging by the lab. */
  histograms: { latency: string; uncorrected: string | null; connect: string };
  rate: { target: number; achieved: number } | null;
  hold: { target: number; held: number; established: number; lost: number; refused: number; reset: number; timeout: number; intervalMs: number } | null;
  ramp: RampSummary | null;
  client: {
    processes: number;
    /** CPU time of the load generator over the run (all processes). */
    userSec: number;
    systemSec: number;
    /** Busiest process's CPU use, % of one core: near 100 means the client may be the bottleneck. */
    maxCpuPercent: number;
    syscalls: Record<string, number>;
    /** The I/O backend's counters, summed over processes (empty for epoll). */
    io: Record<string, number>;
    perProcess: { index: number; pid: number; connections: number; completed: number; errors: number; cpuPercent: number }[];
  };
  notes: string[];
}

function describeRequest(o: ResolvedOptions): string {
  if (o.protocol === 'http') return `${o.method} ${o.targets[0]!.path || '/'}${o.body !== null ? ` (${Buffer.byteLength(o.body)} B body)` : ''}`;
  if (o.protocol === 'resp') return o.commands.join(' | ');
  return `${o.size} B payloads`;
}

/** Merge per-process results into one LoadResult. */
export function mergeResults(o: ResolvedOptions, parts: ProcResult[], notes: string[] = []): LoadResult {
  const sum = (f: (p: ProcResult) => number): number => parts.reduce((a, p) => a + f(p), 0);
  const errors = emptyErrors();
  const byErrno: Record<string, number> = {};
  const samples: string[] = [];
  for (const p of parts) {
    for (const k of ERROR_KINDS) errors[k] += p.errors[k];
    for (const [k, v] of Object.entries(p.byErrno)) byErrno[k] = (byErrno[k] ?? 0) + v;
    for (const s of p.samples) if (samples.length < 8 && !samples.includes(s)) samples.push(s);
  }
  const hLat = mergeEncoded(parts.map((p) => p.latency));
  const unc = parts.every((p) => p.uncorrected !== null) && parts.length > 0 ? mergeEncoded(parts.map((p) => p.uncorrected!)) : null;
  const hConn = mergeEncoded(parts.map((p) => p.connect));
  const durationMs = Math.max(0, ...parts.map((p) => p.elapsedMs));
  const secs = durationMs / 1000;
  const completed = sum((p) => p.requests.completed);
  const total = totalErrors(errors);
  const perSec = secs > 0 ? completed / secs : 0;
  const rateMode = o.mode === 'rate';
  const holdMode = o.mode === 'hold';
  const interrupted = parts.some((p) => p.interrupted);
  const deadlineHit = parts.some((p) => p.deadlineHit);
  const errRate = total / Math.max(1, completed + total);
  const allowed = o.maxErrorsFraction ? o.maxErrors * (completed + total) : o.maxErrors;
  const idleHold = holdMode && o.intervalMs === 0;
  const ok = total <= allowed && !deadlineHit && (completed > 0 || idleHold);
  const userSec = sum((p) => p.cpu.userUs) / 1e6;
  const systemSec = sum((p) => p.cpu.systemUs) / 1e6;
  const syscalls: Record<string, number> = {};
  for (const p of parts) for (const [k, v] of Object.entries(p.syscalls)) syscalls[k] = (syscalls[k] ?? 0) + v;
  const io: Record<string, number> = {};
  for (const p of parts) for (const [k, v] of Object.entries(p.io)) io[k] = (io[k] ?? 0) + v;
  const perProcess = parts.map((p) => ({
    index: p.index,
    pid: p.pid,
    connections: p.connections.target,
    completed: p.requests.completed,
    errors: totalErrors(p.errors),
    cpuPercent: p.elapsedMs > 0 ? Math.round(((p.cpu.userUs + p.cpu.systemUs) / 1000 / p.elapsedMs) * 1000) / 10 : 0,
  }));
  const open = sum((p) => p.connections.open);
  const startedAt = parts.length > 0 ? Math.min(...parts.map((p) => p.startedAt)) : Date.now();
  return {
    schema: SCHEMA,
    tool: { name: 'iolab load', version: VERSION },
    mode: o.mode,
    protocol: o.protocol,
    backend: parts[0]?.backend ?? o.backend,
    targets: o.targets.map((t) => t.url),
    startedAt: new Date(startedAt).toISOString(),
    ok,
    interrupted,
    deadlineHit,
    settings: {
      connections: o.connections,
      pipeline: holdMode ? 1 : o.pipeline,
      durationMs: o.durationMs,
      requests: o.requests,
      rate: o.rate,
      connectRate: o.connectRate,
      intervalMs: o.intervalMs,
      timeoutMs: o.timeoutMs,
      connectTimeoutMs: o.connectTimeoutMs,
      procs: o.procs,
      cpus: o.cpus,
      sources: o.sources,
      request: describeRequest(o),
    },
    durationMs: Math.round(durationMs * 1000) / 1000,
    connectMs: Math.round(Math.max(0, ...parts.map((p) => p.connectMs))),
    connections: {
      target: sum((p) => p.connections.target),
      established: sum((p) => p.connections.established),
      failed: sum((p) => p.connections.failed),
      open,
      peak: sum((p) => p.connections.peak),
      reconnects: sum((p) => p.connections.reconnects),
    },
    requests: { sent: sum((p) => p.requests.sent), completed, perSec: Math.round(perSec * 10) / 10 },
    bytes: {
      sent: sum((p) => p.bytes.sent),
      received: sum((p) => p.bytes.received),
      sentPerSec: secs > 0 ? Math.round(sum((p) => p.bytes.sent) / secs) : 0,
      receivedPerSec: secs > 0 ? Math.round(sum((p) => p.bytes.received) / secs) : 0,
    },
    errors: { ...errors, total, rate: errRate, byErrno, samples },
    latency: { ...summarize(hLat), corrected: rateMode || (holdMode && o.intervalMs > 0) },
    latencyUncorrected: unc !== null ? summarize(unc) : null,
    connectLatency: summarize(hConn),
    histograms: { latency: encodeHistogram(hLat), uncorrected: unc !== null ? encodeHistogram(unc) : null, connect: encodeHistogram(hConn) },
    rate: rateMode ? { target: o.rate, achieved: Math.round(perSec * 10) / 10 } : null,
    hold: holdMode
      ? {
          target: o.connections,
          held: open,
          established: sum((p) => p.connections.established),
          lost: sum((p) => p.lost),
          refused: errors.refused,
          reset: errors.reset,
          timeout: errors.timeout,
          intervalMs: o.intervalMs,
        }
      : null,
    ramp: null,
    client: {
      processes: parts.length,
      userSec: Math.round(userSec * 1000) / 1000,
      systemSec: Math.round(systemSec * 1000) / 1000,
      maxCpuPercent: Math.max(0, ...perProcess.map((p) => p.cpuPercent)),
      syscalls,
      io,
      perProcess,
    },
    notes: [...o.notes, ...notes],
  };
}

// ---------------------------------------------------------------------------------------- human

function ms(us: number): string {
  const m = us / 1000;
  if (m >= 100) return `${m.toFixed(0)} ms`;
  if (m >= 10) return `${m.toFixed(1)} ms`;
  return `${m.toFixed(2)} ms`;
}

function count(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function bytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

function latencyLine(l: LatencySummary): string {
  if (l.count === 0) return 'no replies';
  return `p50 ${ms(l.p50)}  p90 ${ms(l.p90)}  p99 ${ms(l.p99)}  p99.9 ${ms(l['p99.9'])}  max ${ms(l.max)}  (mean ${ms(l.mean)})`;
}

export function errorsLine(e: LoadResult['errors']): string {
  return ERROR_KINDS.map((k) => `${k} ${count(e[k])}`).join(', ');
}

/** The summary printed on stdout. */
export function formatSummary(r: LoadResult): string {
  const s = r.settings;
  const L: string[] = [];
  const procs = r.client.processes > 1 ? ` in ${r.client.processes} processes` : '';
  const what =
    r.mode === 'rate'
      ? `${count(s.rate)} req/s over ${count(s.connections)} connections${procs}`
      : r.mode === 'hold'
        ? `${count(s.connections)} connections${procs} at ${count(s.connectRate)}/s${s.intervalMs > 0 ? `, a request each every ${s.intervalMs / 1000} s` : ', idle'}`
        : `${count(s.connections)} connections${procs}, pipeline ${s.pipeline}`;
  L.push(`iolab load ${r.mode}: ${r.protocol} ${s.request} -> ${r.targets.join(', ')}`);
  L.push(`  ${what}; ${(r.durationMs / 1000).toFixed(2)} s measured after ${(r.connectMs / 1000).toFixed(2)} s connecting (${r.backend})`);
  if (r.mode === 'hold' && r.hold) {
    const h = r.hold;
    L.push(`  held         ${count(h.held)} of ${count(h.target)} at the end; established ${count(h.established)}, lost ${count(h.lost)} (refused ${count(h.refused)}, reset ${count(h.reset)}, timeout ${count(h.timeout)})`);
    L.push(`  connect      ${latencyLine(r.connectLatency)}`);
    if (s.intervalMs > 0) {
      L.push(`  trickle      ${count(r.requests.completed)} replies, ${count(r.requests.perSec)} req/s`);
      L.push(`  latency      ${latencyLine(r.latency)}`);
    }
  } else {
    L.push(`  requests     ${count(r.requests.completed)} in ${(r.durationMs / 1000).toFixed(2)} s = ${count(r.requests.perSec)} req/s${r.rate ? ` (target ${count(r.rate.target)})` : ''}`);
    if (r.latencyUncorrected) {
      L.push(`  latency      ${latencyLine(r.latency)}   [from intended send: corrected]`);
      L.push(`  uncorrected  ${latencyLine(r.latencyUncorrected)}   [from actual send]`);
    } else L.push(`  latency      ${latencyLine(r.latency)}`);
  }
  L.push(`  errors       ${count(r.errors.total)}${r.errors.total > 0 ? ` (${(r.errors.rate * 100).toFixed(2)}%)` : ''}: ${errorsLine(r.errors)}`);
  for (const x of r.errors.samples.slice(0, 3)) L.push(`               e.g. ${x}`);
  L.push(`  bytes        sent ${bytes(r.bytes.sent)} (${bytes(r.bytes.sentPerSec)}/s), received ${bytes(r.bytes.received)} (${bytes(r.bytes.receivedPerSec)}/s)`);
  L.push(
    `  connections  ${count(r.connections.established)} of ${count(r.connections.target)} established, ${count(r.connections.failed)} never, ${count(r.connections.reconnects)} reconnects; client CPU ${r.client.maxCpuPercent.toFixed(0)}% of a core (busiest process)`,
  );
  if (r.ramp) L.push(...formatRamp(r.ramp));
  if (r.client.maxCpuPercent >= 95 && r.mode !== 'hold') L.push('  note: the load generator used a full core: it may be the bottleneck (try --procs)');
  if (r.interrupted) L.push('  interrupted: partial result');
  if (r.deadlineHit) L.push('  stopped by the hard deadline (--deadline)');
  for (const n of r.notes) L.push(`  note: ${n}`);
  return L.join('\n') + '\n';
}

export function formatRamp(r: RampSummary): string[] {
  const L: string[] = [];
  L.push(`  ramp by ${r.by}; SLO p99 <= ${r.slo.p99Ms} ms, errors <= ${(r.slo.errors * 100).toFixed(2)}%`);
  L.push(`    ${(r.by === 'rate' ? 'target/s' : 'conns').padStart(9)} ${'req/s'.padStart(10)} ${'p50'.padStart(9)} ${'p99'.padStart(9)} ${'errors'.padStart(8)}  verdict`);
  for (const st of r.steps) {
    L.push(
      `    ${count(st.value).padStart(9)} ${count(st.perSec).padStart(10)} ${ms(st.p50).padStart(9)} ${ms(st.p99).padStart(9)} ${`${(st.errorRate * 100).toFixed(2)}%`.padStart(8)}  ${st.ok ? 'ok' : `BREAKS: ${st.reason}`}`,
    );
  }
  if (r.breakingPoint) L.push(`  breaking point: ${count(r.breakingPoint.value)} ${r.by === 'rate' ? 'req/s' : 'connections'} (${r.breakingPoint.reason}); last good: ${r.lastGood === null ? 'none' : count(r.lastGood)}`);
  else L.push(`  no step broke the SLO (up to ${count(r.steps[r.steps.length - 1]?.value ?? 0)})`);
  return L;
}

/** One line for live progress on a terminal. */
export function formatProgress(p: { phase: string; elapsedMs: number; completed: number; perSec: number; errors: number; open: number }): string {
  if (p.phase === 'connect' || p.phase === 'ready') return `  connecting: ${count(p.open)} open, ${count(p.errors)} errors`;
  return `  ${(p.elapsedMs / 1000).toFixed(0).padStart(4)} s  ${count(p.completed).padStart(12)} replies  ${count(p.perSec).padStart(10)} req/s  ${count(p.errors)} errors  ${count(p.open)} open`;
}
