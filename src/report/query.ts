/**
 * Lookups over LabResults that the claims and the tables share: "epoll's req/s at 1,000 HTTP
 * connections", "the most connections threads held", "where prefork broke and why".
 *
 * Conventions read from the results (see src/lab/results.ts):
 * - a load point is a `throughput` or `scaling` result with no simulated work and not the static app;
 *   its connection count is `params.connections`;
 * - `params.work` names simulated per-request work (`blocking:1ms`, `async:1ms`; `none` or absent: none);
 * - the static app is `params.app` starting with `static`; `params.sendfile` (or `params.zeroCopy`)
 *   says whether it was served zero-copy (true) or by read+write copies (false).
 */
import type { LabResults, Protocol, Sample, ScenarioName, ScenarioResult, Target } from '../lab/results.js';
import { conns } from './format.js';

/** Protocols in the order a comparison prefers them: HTTP is what the article's servers speak. */
export const PROTOCOL_ORDER: Protocol[] = ['http', 'resp', 'echo'];

/** The baseline the article measures everything against. */
export const BASELINE = 'epoll';

/** Event-loop models (one or a few threads, many connections each); `reference` is Node on libuv (epoll). */
export const EVENT_LOOP_MODELS = new Set(['multiplexing', 'async', 'reference']);
export const BLOCKING_MODEL = 'blocking';

export type Measured = ScenarioResult & { median: Sample };

export function isMeasured(s: ScenarioResult | undefined): s is Measured {
  return !!s && s.status === 'ok' && s.median != null;
}

/** The simulated work of a result, normalised: undefined when none. */
export function workOf(s: ScenarioResult): string | undefined {
  const w = s.params.work;
  if (typeof w !== 'string' || w === '' || w === 'none') return undefined;
  return w;
}

export function isStatic(s: ScenarioResult): boolean {
  return typeof s.params.app === 'string' && s.params.app.startsWith('static');
}

/** true: zero-copy (sendfile), false: copy, undefined: not said. */
export function zeroCopyOf(s: ScenarioResult): boolean | undefined {
  const v = s.params.sendfile ?? s.params.zeroCopy;
  return typeof v === 'boolean' ? v : undefined;
}

/** I/O model by engine or peer name, for results that recorded the model as `unknown` (see DESIGN.md). */
const MODEL_BY_NAME: Record<string, string> = {
  threads: 'blocking', prefork: 'blocking', 'apache2-prefork': 'blocking', 'apache2-worker': 'blocking',
  busypoll: 'non-blocking',
  select: 'multiplexing', poll: 'multiplexing', epoll: 'multiplexing', nginx: 'multiplexing', 'redis-server': 'multiplexing', 'apache2-event': 'multiplexing',
  io_uring: 'async', aio: 'async',
  node: 'reference',
};

/** The target's model, filled in from its name when the results say `unknown` or nothing. */
export function modelOf(t: Target): string {
  if (t.model && t.model !== 'unknown') return t.model;
  return MODEL_BY_NAME[t.name.split(' ')[0]!] ?? MODEL_BY_NAME[t.ran] ?? t.model ?? 'unknown';
}

/** Targets in order of first appearance, one per asked name (model resolved by modelOf). */
export function targets(r: LabResults): Target[] {
  const seen = new Map<string, Target>();
  for (const s of r.results) if (!seen.has(s.target.name)) seen.set(s.target.name, { ...s.target, model: modelOf(s.target) });
  return [...seen.values()];
}

export function target(r: LabResults, name: string): Target | undefined {
  return targets(r).find((t) => t.name === name);
}

/** The engine that actually ran in place of `name` in any measured result (a fallback), or null. */
export function fellBack(r: LabResults, name: string): string | null {
  const s = r.results.find((x) => x.target.name === name && (x.status === 'ok' || x.status === 'broke') && x.target.ran && x.target.ran !== name.split(' ')[0]);
  return s ? s.target.ran : null;
}

/** "io_uring (ran epoll)" when a fallback happened ("epoll --edge" running epoll is no fallback). */
export function label(t: Target): string {
  return t.ran && t.ran !== t.name.split(' ')[0] ? `${t.name} (ran ${t.ran})` : t.name;
}

export function resultsOf(r: LabResults, name: string, scenario?: ScenarioName): ScenarioResult[] {
  return r.results.filter((s) => s.target.name === name && (!scenario || s.scenario === scenario));
}

function isLoadPoint(s: ScenarioResult): boolean {
  return (s.scenario === 'throughput' || s.scenario === 'scaling') && !workOf(s) && !isStatic(s);
}

/** Prefer a measured result over a non-measured one; among measured, the throughput scenario (longer windows). */
function better(a: ScenarioResult | undefined, b: ScenarioResult): ScenarioResult {
  if (!a) return b;
  if (isMeasured(a) !== isMeasured(b)) return isMeasured(a) ? a : b;
  if (a.scenario !== b.scenario) return a.scenario === 'throughput' ? a : b;
  return a;
}

/**
 * A step of a connection ramp (`breaking.steps`) as a load point, for counts no full result covers.
 * Only what the step recorded is filled: the other percentiles are NaN and per-request figures null,
 * so they print as "-" rather than as a made-up number.
 */
function fromStep(s: ScenarioResult, st: NonNullable<ScenarioResult['breaking']>['steps'][number]): ScenarioResult {
  const ok = st.status === 'ok';
  return {
    scenario: s.scenario,
    target: s.target,
    protocol: s.protocol,
    params: { ...s.params, connections: st.connections, fromStep: true },
    status: ok ? 'ok' : 'broke',
    ...(ok ? {} : { reason: s.breaking?.why ?? st.status }),
    samples: [],
    median: {
      rps: st.rps,
      requests: 0,
      errors: st.errors,
      errorsByKind: {},
      latencyUs: st.p99Us == null ? null : { p50: NaN, p90: NaN, p99: st.p99Us, p999: NaN, max: NaN },
      cpuUsPerReq: null,
      ctxSwitchesPerReq: null,
      syscallsPerReq: null,
      syscallsByNamePerReq: null,
      eagainPerReq: null,
      wakeupsPerReq: null,
      loopStalls: null,
      rssBytes: st.rssBytes,
      vmBytes: null,
      threads: null,
      processes: null,
      connections: st.connections,
    },
    rpsSpread: null,
  };
}

/** Every load point of a target in one protocol, by connection count (any status). */
export function loadPoints(r: LabResults, name: string, protocol: Protocol): Map<number, ScenarioResult> {
  const m = new Map<number, ScenarioResult>();
  const fromSteps: ScenarioResult[] = [];
  for (const s of r.results) {
    if (s.target.name !== name || s.protocol !== protocol) continue;
    if (isLoadPoint(s)) m.set(s.params.connections, better(m.get(s.params.connections), s));
    if (s.breaking && !workOf(s) && !isStatic(s)) for (const st of s.breaking.steps) fromSteps.push(fromStep(s, st));
  }
  // Ramp steps fill only the counts that no full result measured.
  const full = new Set([...m.entries()].filter(([, s]) => isMeasured(s)).map(([c]) => c));
  for (const s of fromSteps) {
    const c = s.params.connections;
    if (!full.has(c)) m.set(c, better(m.get(c), s));
  }
  return new Map([...m.entries()].sort((a, b) => a[0] - b[0]));
}

export function loadAt(r: LabResults, name: string, protocol: Protocol, connections: number): ScenarioResult | undefined {
  return loadPoints(r, name, protocol).get(connections);
}

/** The protocol in which the given targets have the most measured load points in common (HTTP first on ties). */
export function commonProtocol(r: LabResults, names: string[]): Protocol | undefined {
  let best: Protocol | undefined;
  let bestScore = 0;
  for (const p of PROTOCOL_ORDER) {
    const sets = names.map((n) => new Set([...loadPoints(r, n, p).entries()].filter(([, s]) => isMeasured(s)).map(([c]) => c)));
    if (sets.some((s) => s.size === 0)) continue;
    const common = [...sets[0]!].filter((c) => sets.every((s) => s.has(c))).length;
    if (common > bestScore) {
      best = p;
      bestScore = common;
    }
  }
  return best;
}

/** Measured load points two targets share: [connections, a, b] in ascending connections. */
export function pairs(r: LabResults, a: string, b: string, protocol: Protocol): [number, Measured, Measured][] {
  const pa = loadPoints(r, a, protocol);
  const pb = loadPoints(r, b, protocol);
  const out: [number, Measured, Measured][] = [];
  for (const [c, sa] of pa) {
    const sb = pb.get(c);
    if (isMeasured(sa) && isMeasured(sb)) out.push([c, sa, sb]);
  }
  return out;
}

/** A target's representative load point: the throughput scenario at `prefer` connections if any, else nearest. */
export function representative(r: LabResults, name: string, prefer = 100): Measured | undefined {
  let best: Measured | undefined;
  let bestKey = Infinity;
  for (const [i, p] of PROTOCOL_ORDER.entries()) {
    for (const [c, s] of loadPoints(r, name, p)) {
      if (!isMeasured(s)) continue;
      // Protocol order dominates, then closeness to `prefer` (log distance: 64 is nearer 100 than 1,000 is).
      const key = i * 1000 + Math.abs(Math.log10(c / prefer));
      if (key < bestKey) {
        best = s;
        bestKey = key;
      }
    }
  }
  return best;
}

export interface Held {
  /** Largest connection count held within the SLO and the guard (null: none measured). */
  maxOk: number | null;
  /** Smallest count where it broke above maxOk: its limit in this run (null: it never broke there). */
  brokeAt: number | null;
  why: string | null;
  /** Where maxOk comes from, in words. */
  source: string | null;
  /** Breaks at or below maxOk (it held that many elsewhere): a flaky step, not the limit. */
  lapses: { connections: number; why: string | null }[];
}

/**
 * The most connections a target held, from every scenario that says so: the breaking-point ramp,
 * measured load points, and idle holds. A break at a count it also held (say an idle hold that got
 * 790 of 1,000 while the 1,000-connection load step passed) is a lapse, not its limit.
 */
export function held(r: LabResults, name: string): Held {
  const h: Held = { maxOk: null, brokeAt: null, why: null, source: null, lapses: [] };
  const broken: { connections: number; why: string | null }[] = [];
  const ok = (n: number | null | undefined, source: string): void => {
    if (n != null && n > 0 && (h.maxOk == null || n > h.maxOk)) {
      h.maxOk = n;
      h.source = source;
    }
  };
  const broke = (n: number | null | undefined, why: string | null | undefined): void => {
    if (n != null) broken.push({ connections: n, why: why ?? null });
  };
  for (const s of resultsOf(r, name)) {
    if (s.breaking) {
      ok(s.breaking.maxOk, 'breaking-point ramp');
      broke(s.breaking.brokeAt, s.breaking.why ?? s.reason);
    }
    if (s.scenario === 'idle') {
      if (s.status === 'ok' && s.idle) ok(s.idle.held, 'idle hold');
      if (s.status === 'broke') broke(s.idle?.connections ?? s.params.connections, s.reason);
      continue;
    }
    if (s.scenario === 'idle-active') {
      // Connections held while serving: the idle ones it held plus the busy ones measured beside them.
      const ia = idleActiveParams(s);
      if (s.status === 'ok') ok(ia.held + ia.active, `idle-active at ${conns(ia.held)} idle + ${conns(ia.active)} busy`);
      if (s.status === 'broke') broke(s.params.connections, s.reason);
      continue;
    }
    if (isLoadPoint(s) || s.scenario === 'blocking-handler') {
      if (s.status === 'ok') ok(s.params.connections, `${s.scenario} at ${conns(s.params.connections)}`);
      if (s.status === 'broke') broke(s.params.connections, s.reason);
    }
  }
  for (const b of broken.sort((a, c) => a.connections - c.connections)) {
    if (h.maxOk != null && b.connections <= h.maxOk) h.lapses.push(b);
    else if (h.brokeAt == null) {
      h.brokeAt = b.connections;
      h.why = b.why;
    }
  }
  return h;
}

export interface Idle {
  result: ScenarioResult;
  /** Asked for. */
  connections: number;
  held: number;
  /** The hold broke (held fewer than asked, or a guard): the figures are per connection actually held. */
  partial: boolean;
  userPerConn: number;
  /** Slab + queued buffers per connection; null when the kernel figure was not read. */
  kernelPerConn: number | null;
  /** User + kernel. */
  totalPerConn: number;
  threadsPerConn: number;
  cpuPercent: number | null;
}

/** Fewest connections a broken idle hold must have held for its per-connection figures to count. */
const MIN_PARTIAL_HOLD = 100;

/** The idle-hold measurement of a target: the largest complete hold, else the largest partial one. */
export function idleOf(r: LabResults, name: string): Idle | undefined {
  let best: Idle | undefined;
  for (const s of resultsOf(r, name, 'idle')) {
    const i = s.idle;
    if (!i || !(s.status === 'ok' || (s.status === 'broke' && i.held >= MIN_PARTIAL_HOLD))) continue;
    const k = i.kernelSlabPerConnBytes == null && i.kernelBufferPerConnBytes == null ? null : (i.kernelSlabPerConnBytes ?? 0) + (i.kernelBufferPerConnBytes ?? 0);
    const v: Idle = {
      result: s,
      connections: i.connections,
      held: i.held,
      partial: s.status !== 'ok',
      userPerConn: i.rssPerConnBytes,
      kernelPerConn: k,
      totalPerConn: i.rssPerConnBytes + (k ?? 0),
      threadsPerConn: i.threadsPerConn,
      cpuPercent: i.cpuPercent ?? null,
    };
    if (!best || (best.partial && !v.partial) || (best.partial === v.partial && v.held > best.held)) best = v;
  }
  return best;
}

/** An idle-active result's counts: idle connections asked for and held, busy ones measured (see results.ts ScenarioName). */
export function idleActiveParams(s: ScenarioResult): { idle: number; held: number; active: number } {
  const n = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const active = n(s.params.active) ?? 0;
  const idle = n(s.params.idle) ?? Math.max(0, s.params.connections - active);
  return { idle, held: n(s.params.idleHeld) ?? idle, active };
}

export interface IdleActivePoint {
  idle: number;
  held: number;
  active: number;
  result: Measured;
}

/** A target's measured idle-active points, fewest idle first (one per idle count). */
export function idleActiveOf(r: LabResults, name: string): IdleActivePoint[] {
  const by = new Map<number, IdleActivePoint>();
  for (const s of resultsOf(r, name, 'idle-active')) {
    if (!isMeasured(s) || s.protocol !== 'http') continue;
    const p = idleActiveParams(s);
    if (!by.has(p.idle)) by.set(p.idle, { ...p, result: s });
  }
  return [...by.values()].sort((a, b) => a.idle - b.idle);
}

/** Results of a scenario that were not measured, with their reasons, e.g. for "scaling skipped: budget". */
export function notMeasured(r: LabResults, scenario?: ScenarioName): ScenarioResult[] {
  return r.results.filter((s) => (!scenario || s.scenario === scenario) && s.status !== 'ok');
}

/** Server CPU as % of one core under load: CPU µs per request x requests per second. */
export function cpuPercent(s: Sample): number | null {
  return s.cpuUsPerReq == null ? null : (s.cpuUsPerReq * s.rps) / 1e4;
}
