/**
 * One measured window against a running server: probe the server's process tree and (for iolab
 * engines) its own counters at both edges, run the load in between, and turn the deltas into
 * per-request figures. Medians over repeats, field by field.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { sampleTree, delta } from '../probe/index.js';
import { cacheProbe } from './cacheprobe.js';
import type { EngineStats } from '../engines/types.js';
import type { LoadBackend } from '../loadgen/index.js';
import type { Protocol, Sample } from './results.js';
import type { Running } from './targets.js';

export interface LoadRequest {
  url: string;
  protocol: Protocol;
  connections: number;
  pipeline: number;
  durationS: number;
  /** CPU the load generator runs on (null: not pinned). */
  cpu: number | null;
  /** closed loop (default), or hold idle connections for durationS. */
  mode?: 'closed' | 'hold';
  /** echo payload bytes. */
  size?: number;
  /**
   * Load processes (default 1: in this process). A hold beside a measured closed loop needs 2 or more:
   * both loops in one process would take turns, an idle hold blocking the busy loop's turns in its wait.
   */
  procs?: number;
  /** Abort to end the load early (a hold kept until the measurement beside it is done). */
  signal?: AbortSignal;
  /** The load generator's I/O backend (default: its own choice, io_uring where the kernel allows). */
  backend?: LoadBackend;
}

export interface LoadOutcome {
  rps: number;
  requests: number;
  errors: number;
  errorsByKind: Record<string, number>;
  latencyUs: { p50: number; p90: number; p99: number; p999: number; max: number } | null;
  /** Connections established (hold mode: how many were held). */
  connected: number;
  /** Bytes received per second, and in all (null or absent: the load function cannot say). */
  bytesPerSec?: number | null;
  bytes?: number | null;
}

export type LoadFn = (r: LoadRequest) => Promise<LoadOutcome>;

function perReq(n: number | undefined | null, requests: number): number | null {
  return n === undefined || n === null || requests <= 0 ? null : n / requests;
}

/** null when the engine cannot see its syscalls (node: libuv makes them, not iolab's sys layer). */
function sumSyscalls(s: EngineStats | null): number | null {
  if (!s || Object.keys(s.syscalls).length === 0) return null;
  return Object.values(s.syscalls).reduce((a, b) => a + b, 0);
}

/**
 * Pause before the cache probe: the load before a window (warm-up, the last window) has just ended,
 * and the server is still closing its connections on the other core; probed at once, the reading took
 * in our own server's cache traffic.
 */
const PROBE_SETTLE_MS = 200;

export interface WindowOptions {
  /** Read the L3 cache probe before the window (Sample.cacheNs); costs ~0.2-0.3 s a window. */
  cacheProbe?: boolean;
}

/** The L3 probe read once the load before it has settled (ns per load; cacheprobe.ts). */
export async function settledCacheProbe(): Promise<number> {
  await sleep(PROBE_SETTLE_MS);
  return cacheProbe();
}

/** Measure one window of load against `srv`. */
export async function measureWindow(srv: Running, load: LoadFn, req: LoadRequest, opts: WindowOptions = {}): Promise<Sample> {
  const cacheNs = opts.cacheProbe ? await settledCacheProbe() : null;
  const e0 = await srv.engineStats();
  const p0 = sampleTree(srv.pid);
  const out = await load(req);
  const p1 = sampleTree(srv.pid);
  const e1 = await srv.engineStats();
  const d = delta(p0, p1);
  // The server's own count of requests is exact where available; the client's otherwise.
  const requests = e0 && e1 ? e1.requests - e0.requests : out.requests;
  const byName: Record<string, number> | null = e0 && e1 && sumSyscalls(e1) !== null ? {} : null;
  if (byName && e0 && e1) {
    for (const [k, v] of Object.entries(e1.syscalls)) {
      const n = v - (e0.syscalls[k] ?? 0);
      if (n > 0 && requests > 0) byName[k] = n / requests;
    }
  }
  const sys0 = sumSyscalls(e0), sys1 = sumSyscalls(e1);
  return {
    rps: out.rps,
    requests: out.requests,
    errors: out.errors,
    errorsByKind: out.errorsByKind,
    latencyUs: out.latencyUs,
    bytesPerSec: out.bytesPerSec ?? null,
    cpuUsPerReq: perReq((d.cpuUserS + d.cpuSysS) * 1e6, requests),
    ctxSwitchesPerReq: perReq(d.voluntaryCtx + d.involuntaryCtx, requests),
    syscallsPerReq: sys0 !== null && sys1 !== null ? perReq(sys1 - sys0, requests) : null,
    syscallsByNamePerReq: byName,
    eagainPerReq: e0 && e1 ? perReq(e1.eagain - e0.eagain, requests) : null,
    wakeupsPerReq: e0 && e1 ? perReq(e1.wakeups - e0.wakeups, requests) : null,
    loopStalls: e0 && e1 ? e1.loopStalls.count - e0.loopStalls.count : null,
    rssBytes: p1.rssBytes,
    vmBytes: p1.vmBytes,
    threads: p1.threads,
    processes: p1.pids.length,
    connections: out.connected,
    cacheNs,
  };
}

function med(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function medOrNull(xs: (number | null)[]): number | null {
  const v = xs.filter((x): x is number => x !== null && Number.isFinite(x));
  return v.length ? med(v) : null;
}

/** Median of each field over the repeats. */
export function medianSample(samples: Sample[]): Sample | null {
  if (samples.length === 0) return null;
  if (samples.length === 1) return samples[0]!;
  const lat = samples.every((s) => s.latencyUs !== null)
    ? {
        p50: med(samples.map((s) => s.latencyUs!.p50)),
        p90: med(samples.map((s) => s.latencyUs!.p90)),
        p99: med(samples.map((s) => s.latencyUs!.p99)),
        p999: med(samples.map((s) => s.latencyUs!.p999)),
        max: med(samples.map((s) => s.latencyUs!.max)),
      }
    : null;
  const kinds = new Set(samples.flatMap((s) => Object.keys(s.errorsByKind)));
  const byKind: Record<string, number> = {};
  for (const k of kinds) byKind[k] = med(samples.map((s) => s.errorsByKind[k] ?? 0));
  const names = new Set(samples.flatMap((s) => Object.keys(s.syscallsByNamePerReq ?? {})));
  const byName: Record<string, number> | null = samples[0]!.syscallsByNamePerReq ? {} : null;
  if (byName) for (const k of names) byName[k] = med(samples.map((s) => s.syscallsByNamePerReq?.[k] ?? 0));
  return {
    rps: med(samples.map((s) => s.rps)),
    requests: med(samples.map((s) => s.requests)),
    errors: med(samples.map((s) => s.errors)),
    errorsByKind: byKind,
    latencyUs: lat,
    bytesPerSec: medOrNull(samples.map((s) => s.bytesPerSec ?? null)),
    cpuUsPerReq: medOrNull(samples.map((s) => s.cpuUsPerReq)),
    ctxSwitchesPerReq: medOrNull(samples.map((s) => s.ctxSwitchesPerReq)),
    syscallsPerReq: medOrNull(samples.map((s) => s.syscallsPerReq)),
    syscallsByNamePerReq: byName,
    eagainPerReq: medOrNull(samples.map((s) => s.eagainPerReq)),
    wakeupsPerReq: medOrNull(samples.map((s) => s.wakeupsPerReq)),
    loopStalls: medOrNull(samples.map((s) => s.loopStalls)),
    rssBytes: medOrNull(samples.map((s) => s.rssBytes)),
    vmBytes: medOrNull(samples.map((s) => s.vmBytes)),
    threads: medOrNull(samples.map((s) => s.threads)),
    processes: medOrNull(samples.map((s) => s.processes)),
    connections: med(samples.map((s) => s.connections)),
    cacheNs: medOrNull(samples.map((s) => s.cacheNs ?? null)),
  };
}

export function rpsSpread(samples: Sample[]): number | null {
  if (samples.length < 2) return null;
  const r = samples.map((s) => s.rps);
  const m = med(r);
  return m > 0 ? (Math.max(...r) - Math.min(...r)) / m : null;
}
