/**
 * Options of `iolab load`, one set for the CLI and the module API (`runLoad`). `resolveOptions`
 * validates them once and turns them into `ResolvedOptions`: plain numbers in fixed units (times in
 * milliseconds), parsed targets, no functions, so the same object can be sent to child processes.
 *
 * Units, for numbers without a suffix: `duration`, `interval`, `stepDuration`, `deadline` are seconds;
 * `timeout`, `connectTimeout`, `sloP99` are milliseconds. Strings may carry a unit: `500ms`, `10s`, `2m`.
 */
import { isIP } from 'node:net';

export type LoadMode = 'closed' | 'rate' | 'hold' | 'ramp';
export const LOAD_MODES: readonly LoadMode[] = ['closed', 'rate', 'hold', 'ramp'];
export type LoadProtocol = 'http' | 'resp' | 'echo';
export const LOAD_PROTOCOLS: readonly LoadProtocol[] = ['http', 'resp', 'echo'];
/** I/O backends the loop can run on (io.ts). `auto`: io_uring when the kernel allows it, else epoll. */
export type LoadBackend = 'auto' | 'io_uring' | 'epoll';
export const LOAD_BACKENDS: readonly LoadBackend[] = ['auto', 'io_uring', 'epoll'];

/** What a user (CLI flag or module caller) may pass. Everything but `targets` has a default. */
export interface LoadOptions {
  /** closed (default), rate (needs `rate`), hold, ramp. */
  mode?: LoadMode;
  /** URLs: http://host:port/path, redis://host:port (resp), tcp://host:port (echo), or host:port. Several spread the connections. */
  targets: string | string[];
  /** Overrides the protocol implied by the URL scheme. */
  protocol?: LoadProtocol;
  /** Connections in total (over all processes). Default 50. */
  connections?: number;
  /** Requests in flight per connection. Default 1. */
  pipeline?: number;
  /** How long to measure (seconds). Default 10, unless `requests` is given. */
  duration?: number | string;
  /** Stop after this many responses in total (instead of a duration). */
  requests?: number;
  /** rate mode: requests per second in total. */
  rate?: number;
  /** New connections per second (all processes). Default: 5000 in hold mode, unpaced otherwise. */
  connectRate?: number;
  /** hold mode: one request per connection every `interval` seconds (default: idle). */
  interval?: number | string;
  /** A request unanswered this long counts as a timeout and its connection is closed. Default 5000 ms. */
  timeout?: number | string;
  /** Connect attempts that take longer count as timeouts. Default 5000 ms. */
  connectTimeout?: number | string;
  /** Hard cap on wall time for the whole run (seconds). Default: everything planned plus a margin. */
  deadline?: number | string;
  /** HTTP method (default GET), extra headers ("Name: value"), body. */
  method?: string;
  headers?: string[];
  body?: string;
  /** HTTP statuses that count as success: 200, "200,204", "2xx" (default "2xx"). */
  expectStatus?: string | number | number[];
  /** RESP command templates, cycled per connection: `SET key:__rand_int__ __data__`, `GET key:__rand_int__`, `PING`. */
  commands?: string[];
  /** RESP: `__rand_int__` takes values in [0, keyspace). Default 100000. */
  keyspace?: number;
  /** RESP: bytes of `__data__`. Default 3 (as redis-benchmark). */
  dataSize?: number;
  /** echo: payload bytes per request. Default 64. */
  size?: number;
  /** Worker processes sharing the connections (the open-file limit is per process). Default 1. */
  procs?: number;
  /** Pin to these CPUs: "1", "0-1", [1]; with several processes, process i takes cpus[i % n]. */
  cpus?: string | number[];
  /** Local source addresses: "127.0.0.1-127.0.0.32", a list, or "auto" (default: auto past 6k connections per target on loopback). */
  sources?: string | string[];
  /** ramp: connection counts or rates per step, e.g. "10,100,1k,10k". */
  steps?: string | number[];
  /** ramp: what the steps count. Default connections. */
  rampBy?: 'connections' | 'rate';
  /** ramp: seconds per step. Default 5. */
  stepDuration?: number | string;
  /** ramp SLO: p99 latency bound (ms). Default 100 ms. */
  sloP99?: number | string;
  /** ramp SLO: error bound as a fraction of requests ("1%" or 0.01). Default 1%. */
  sloErrors?: number | string;
  /** Errors allowed before the run counts as failed (exit 1): a count (5), a fraction below 1 (0.001) or a percentage ("0.1%", "100%"). Default 0. */
  maxErrors?: number | string;
  /** Write an HdrHistogram interval log (one interval per second) here. */
  hdrLog?: string;
  /** auto (default: io_uring when the kernel allows it, else epoll with a notice), io_uring, epoll. */
  backend?: LoadBackend;
}

export interface Target {
  url: string;
  protocol: LoadProtocol;
  host: string;
  port: number;
  /** HTTP request target (path and query). */
  path: string;
  /** HTTP Host header value. */
  authority: string;
}

/** Everything concrete. Times in milliseconds. JSON-serialisable (sent to child processes). */
export interface ResolvedOptions {
  mode: LoadMode;
  protocol: LoadProtocol;
  targets: Target[];
  connections: number;
  pipeline: number;
  /** 0 when the run is bounded by `requests`. */
  durationMs: number;
  /** 0 when the run is bounded by duration. */
  requests: number;
  rate: number;
  /** 0 = unpaced. */
  connectRate: number;
  intervalMs: number;
  timeoutMs: number;
  connectTimeoutMs: number;
  deadlineMs: number;
  method: string;
  headers: [string, string][];
  body: string | null;
  /** Accepted statuses: a 1000-entry table is overkill; ranges [lo, hi] inclusive. */
  expectStatus: [number, number][];
  commands: string[];
  keyspace: number;
  dataSize: number;
  size: number;
  procs: number;
  cpus: number[];
  sources: string[];
  steps: number[];
  rampBy: 'connections' | 'rate';
  stepDurationMs: number;
  sloP99Ms: number;
  sloErrors: number;
  /** Errors allowed: a count, or (maxErrorsFraction) a fraction of replies + errors. */
  maxErrors: number;
  maxErrorsFraction: boolean;
  hdrLog: string | null;
  backend: LoadBackend;
  /** Notices for the user (auto-raised process count, automatic sources). */
  notes: string[];
}

/** A bad option: the CLI prints it and exits 2. */
export class LoadUsageError extends Error {
  override name = 'LoadUsageError';
}

/** Connections one process may hold: the open-file limit here is 20000, less a margin for the runtime's own fds. */
export const MAX_CONNS_PER_PROC = 19_000;
/**
 * Connections per (source address, destination) pair before more source addresses are used. The
 * ephemeral range is ~28k ports (ip_local_port_range 32768-60999), but connect() searches the odd
 * half first (__inet_hash_connect, Linux >= 4.6: even ports are left to bind()), and the search is
 * a linear probe: measured here, 19k connections from one source took 10 s of connect() time
 * (6.5 s in the kernel), 4 sources took 1.9 s. Past ~14k every connect scans the whole odd half.
 * Leftover TIME_WAIT sockets of an earlier run to the same port occupy the range too.
 */
export const CONNS_PER_SOURCE = 6_000;

/** "10s" -> 10000; a bare number is in `unit` ms (1000 for seconds, 1 for ms). */
export function parseTime(name: string, v: number | string, unitMs: number): number {
  if (typeof v === 'number') {
    if (!(v >= 0) || !Number.isFinite(v)) throw new LoadUsageError(`${name} must be a non-negative time (got ${v})`);
    return v * unitMs;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|m|h)?\s*$/.exec(v);
  if (!m) throw new LoadUsageError(`${name} takes a time like 500ms, 10s or 2m (got ${JSON.stringify(v)})`);
  const n = Number(m[1]);
  switch (m[2]) {
    case 'us': return n / 1000;
    case 'ms': return n;
    case 's': return n * 1000;
    case 'm': return n * 60_000;
    case 'h': return n * 3_600_000;
    default: return n * unitMs;
  }
}

/** "10k" -> 10000, "1.5m" -> 1500000 (counts, not times). */
export function parseCount(name: string, v: number | string, min = 0): number {
  let n: number;
  if (typeof v === 'number') n = v;
  else {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmM])?\s*$/.exec(v);
    if (!m) throw new LoadUsageError(`${name} must be a number like 100, 10k or 1m (got ${JSON.stringify(v)})`);
    n = Number(m[1]) * (m[2] === 'k' || m[2] === 'K' ? 1e3 : m[2] === 'm' || m[2] === 'M' ? 1e6 : 1);
  }
  if (!Number.isFinite(n) || n < min || Math.round(n) !== n) throw new LoadUsageError(`${name} must be an integer >= ${min} (got ${JSON.stringify(v)})`);
  return n;
}

/** "1%" -> 0.01, "0.01" -> 0.01, 5 -> 5 (counts stay counts). */
export function parseFraction(name: string, v: number | string): number {
  if (typeof v === 'number') {
    if (!(v >= 0)) throw new LoadUsageError(`${name} must be >= 0 (got ${v})`);
    return v;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(%)?\s*$/.exec(v);
  if (!m) throw new LoadUsageError(`${name} takes a fraction like 0.01 or 1% (got ${JSON.stringify(v)})`);
  return m[2] ? Number(m[1]) / 100 : Number(m[1]);
}

export function parseCpuList(v: string | number[]): number[] {
  if (Array.isArray(v)) return v;
  const out: number[] = [];
  for (const part of v.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new LoadUsageError(`--cpus takes a list like 1 or 0,1 or 0-1 (got ${JSON.stringify(v)})`);
    for (let c = Number(m[1]); c <= Number(m[2] ?? m[1]); c++) out.push(c);
  }
  return out;
}

function ipv4ToInt(s: string): number {
  const p = s.split('.').map(Number);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}
function intToIpv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** "127.0.0.1-127.0.0.32" or "127.0.0.1,127.0.0.2" -> addresses. */
export function parseSources(v: string | string[]): string[] {
  const parts = Array.isArray(v) ? v : v.split(',');
  const out: string[] = [];
  for (const raw of parts) {
    const p = raw.trim();
    if (!p) continue;
    const dash = p.indexOf('-', p.indexOf('.') > 0 ? 0 : 1);
    if (dash > 0 && isIP(p.slice(0, dash)) === 4) {
      const a = p.slice(0, dash), b = p.slice(dash + 1);
      if (isIP(b) !== 4) throw new LoadUsageError(`--sources: ${JSON.stringify(b)} is not an IPv4 address`);
      const lo = ipv4ToInt(a), hi = ipv4ToInt(b);
      if (hi < lo || hi - lo > 65535) throw new LoadUsageError(`--sources: bad range ${p}`);
      for (let i = lo; i <= hi; i++) out.push(intToIpv4(i));
    } else if (isIP(p)) out.push(p);
    else throw new LoadUsageError(`--sources takes addresses or a range like 127.0.0.1-127.0.0.32 (got ${JSON.stringify(p)})`);
  }
  if (out.length === 0) throw new LoadUsageError('--sources: no addresses');
  return out;
}

const SCHEMES: Record<string, LoadProtocol> = { http: 'http', redis: 'resp', resp: 'resp', tcp: 'echo', echo: 'echo' };
const DEFAULT_PORT: Record<LoadProtocol, number> = { http: 80, resp: 6379, echo: 7 };

/** Parse one target: a URL, or host:port (then `protocol` decides, default http). */
export function parseTarget(spec: string, protocol?: LoadProtocol): Target {
  let s = spec.trim();
  if (!/^[a-z]+:\/\//i.test(s)) {
    const scheme = protocol === 'resp' ? 'redis' : protocol === 'echo' ? 'tcp' : 'http';
    s = `${scheme}://${s}`;
  }
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new LoadUsageError(`not a target URL: ${JSON.stringify(spec)} (e.g. http://127.0.0.1:8080/, redis://127.0.0.1:6379, tcp://127.0.0.1:7000)`);
  }
  const scheme = u.protocol.slice(0, -1).toLowerCase();
  const implied = SCHEMES[scheme];
  if (!implied) throw new LoadUsageError(`unknown scheme ${scheme}:// in ${JSON.stringify(spec)}: use http://, redis:// or tcp:// (echo)`);
  const proto = protocol ?? implied;
  let host = u.hostname;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host === 'localhost') host = '127.0.0.1';
  if (!isIP(host)) throw new LoadUsageError(`target host must be a numeric address (e.g. 127.0.0.1 or [::1]), got ${JSON.stringify(u.hostname)}`);
  const port = u.port ? Number(u.port) : DEFAULT_PORT[proto];
  const path = proto === 'http' ? `${u.pathname || '/'}${u.search}` : '';
  const authority = u.host;
  return { url: `${scheme}://${u.host}${path}`, protocol: proto, host, port, path, authority };
}

export function parseExpectStatus(v: string | number | number[]): [number, number][] {
  const items = Array.isArray(v) ? v.map(String) : String(v).split(',');
  const out: [number, number][] = [];
  for (const raw of items) {
    const p = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^([1-5])xx$/i.exec(p))) out.push([Number(m[1]) * 100, Number(m[1]) * 100 + 99]);
    else if ((m = /^(\d{3})-(\d{3})$/.exec(p))) out.push([Number(m[1]), Number(m[2])]);
    else if (/^\d{3}$/.test(p)) out.push([Number(p), Number(p)]);
    else throw new LoadUsageError(`--expect-status takes statuses like 200, 200,204, 2xx or 200-299 (got ${JSON.stringify(p)})`);
  }
  return out;
}

function parseHeader(h: string): [string, string] {
  const i = h.indexOf(':');
  if (i <= 0) throw new LoadUsageError(`--header takes "Name: value" (got ${JSON.stringify(h)})`);
  return [h.slice(0, i).trim(), h.slice(i + 1).trim()];
}

export function parseSteps(v: string | number[]): number[] {
  const items = Array.isArray(v) ? v : v.split(',').filter((s) => s.trim() !== '');
  const out = items.map((s) => parseCount('--steps', s, 1));
  if (out.length === 0) throw new LoadUsageError('--steps: give at least one step, e.g. 10,100,1k');
  return out;
}

function int(name: string, v: number | undefined, def: number, min: number): number {
  if (v === undefined) return def;
  return parseCount(name, v, min);
}

/** Validate and fill in defaults. Throws LoadUsageError with a message that says what to do. */
export function resolveOptions(o: LoadOptions): ResolvedOptions {
  const notes: string[] = [];
  const mode = o.mode ?? (o.rate !== undefined ? 'rate' : 'closed');
  if (!LOAD_MODES.includes(mode)) throw new LoadUsageError(`unknown mode ${JSON.stringify(mode)}: use ${LOAD_MODES.join(', ')}`);
  if (o.backend !== undefined && !LOAD_BACKENDS.includes(o.backend)) {
    throw new LoadUsageError(`unknown backend ${JSON.stringify(o.backend)}: use ${LOAD_BACKENDS.join(', ')}`);
  }
  if (o.protocol !== undefined && !LOAD_PROTOCOLS.includes(o.protocol)) {
    throw new LoadUsageError(`unknown protocol ${JSON.stringify(o.protocol)}: use ${LOAD_PROTOCOLS.join(', ')}`);
  }
  const specs = (Array.isArray(o.targets) ? o.targets : [o.targets]).flatMap((t) => t.split(',')).filter((t) => t.trim() !== '');
  if (specs.length === 0) throw new LoadUsageError('give a target, e.g. http://127.0.0.1:8080/');
  const targets = specs.map((t) => parseTarget(t, o.protocol));
  const protocol = targets[0]!.protocol;
  if (targets.some((t) => t.protocol !== protocol)) throw new LoadUsageError('all targets must speak the same protocol');

  const connections = int('--connections', o.connections, 50, 1);
  const pipeline = int('--pipeline', o.pipeline, 1, 1);
  if (pipeline > 4096) throw new LoadUsageError('--pipeline is at most 4096');
  const requests = int('--requests', o.requests, 0, 1);
  let durationMs = o.duration !== undefined ? parseTime('--duration', o.duration, 1000) : requests > 0 ? 0 : 10_000;
  if (requests > 0 && o.duration !== undefined) throw new LoadUsageError('give either --duration or --requests, not both');
  if (mode === 'hold' && requests > 0) throw new LoadUsageError('hold runs for a --duration, not a request count');
  if (mode === 'ramp' && requests > 0) throw new LoadUsageError('ramp runs each step for --step-duration, not a request count');
  if (durationMs === 0 && requests === 0) throw new LoadUsageError('--duration must be > 0');

  const rate = o.rate === undefined ? 0 : Number(o.rate);
  if (o.rate !== undefined && !(rate > 0 && Number.isFinite(rate))) throw new LoadUsageError(`--rate must be > 0 requests per second (got ${o.rate})`);
  if (mode === 'rate' && rate === 0) throw new LoadUsageError('rate mode needs --rate <requests per second>');
  if (mode === 'closed' && rate > 0) throw new LoadUsageError('--rate applies to rate (and ramp) mode; closed mode sends as fast as responses come back');
  const connectRate = o.connectRate !== undefined ? parseCount('--connect-rate', o.connectRate, 1) : mode === 'hold' ? 5000 : 0;
  const intervalMs = o.interval !== undefined ? parseTime('--interval', o.interval, 1000) : 0;
  if (intervalMs > 0 && mode !== 'hold') throw new LoadUsageError('--interval applies to hold mode (one request per connection every interval)');
  if (o.interval !== undefined && intervalMs < 1) throw new LoadUsageError('--interval must be at least 1 ms');
  const timeoutMs = o.timeout !== undefined ? parseTime('--timeout', o.timeout, 1) : 5000;
  const connectTimeoutMs = o.connectTimeout !== undefined ? parseTime('--connect-timeout', o.connectTimeout, 1) : 5000;
  if (timeoutMs < 1 || connectTimeoutMs < 1) throw new LoadUsageError('timeouts must be at least 1 ms');

  const method = (o.method ?? 'GET').toUpperCase();
  if (!/^[A-Z]+$/.test(method)) throw new LoadUsageError(`--method: ${JSON.stringify(o.method)} is not a method`);
  const headers = (o.headers ?? []).map(parseHeader);
  const body = o.body ?? null;
  const expectStatus = parseExpectStatus(o.expectStatus ?? '2xx');
  const commands = o.commands && o.commands.length > 0 ? o.commands : ['PING'];
  for (const c of commands) if (c.trim() === '') throw new LoadUsageError('--command: empty command');
  const keyspace = int('--keyspace', o.keyspace, 100_000, 1);
  if (keyspace > 2 ** 31 - 1) throw new LoadUsageError('--keyspace is at most 2^31 - 1');
  const dataSize = int('--data-size', o.dataSize, 3, 0);
  const size = int('--size', o.size, 64, 1);
  if (size > 64 * 1024 * 1024) throw new LoadUsageError('--size is at most 64 MB');

  if (protocol !== 'http' && (o.method !== undefined || o.headers?.length || o.body !== undefined || o.expectStatus !== undefined)) {
    throw new LoadUsageError('--method, --header, --body and --expect-status apply to HTTP targets');
  }
  if (protocol !== 'resp' && (o.commands?.length || o.keyspace !== undefined || o.dataSize !== undefined)) {
    throw new LoadUsageError('--command, --keyspace and --data-size apply to RESP targets (redis://)');
  }
  if (protocol !== 'echo' && o.size !== undefined) throw new LoadUsageError('--size applies to echo targets (tcp://)');

  const steps = o.steps !== undefined ? parseSteps(o.steps) : [10, 100, 1000, 10_000];
  const rampBy = o.rampBy ?? 'connections';
  if (rampBy !== 'connections' && rampBy !== 'rate') throw new LoadUsageError('--ramp-by takes connections or rate');
  if (mode === 'ramp' && rampBy === 'rate' && o.steps === undefined) throw new LoadUsageError('a rate ramp needs --steps, e.g. --steps 1k,10k,50k');
  if (mode !== 'ramp' && (o.steps !== undefined || o.rampBy !== undefined)) throw new LoadUsageError('--steps and --ramp-by apply to ramp mode');
  const stepDurationMs = o.stepDuration !== undefined ? parseTime('--step-duration', o.stepDuration, 1000) : 5000;
  if (mode === 'ramp' && stepDurationMs < 100) throw new LoadUsageError('--step-duration must be at least 100 ms');
  const sloP99Ms = o.sloP99 !== undefined ? parseTime('--slo-p99', o.sloP99, 1) : 100;
  const sloErrors = o.sloErrors !== undefined ? parseFraction('--slo-errors', o.sloErrors) : 0.01;
  const maxErrors = o.maxErrors !== undefined ? parseFraction('--max-errors', o.maxErrors) : 0;
  // "100%" is a fraction (everything); a bare 1 or more is a count; below 1, a fraction.
  const maxErrorsFraction = (typeof o.maxErrors === 'string' && o.maxErrors.includes('%')) || maxErrors < 1;

  const maxConns = mode === 'ramp' && rampBy === 'connections' ? Math.max(...steps) : connections;
  let procs = int('--procs', o.procs, 1, 1);
  if (procs > 64) throw new LoadUsageError('--procs is at most 64');
  const needed = Math.ceil(maxConns / MAX_CONNS_PER_PROC);
  if (needed > procs) {
    notes.push(`${maxConns} connections need ${needed} processes (open-file limit ~20000 each): using --procs ${needed}`);
    procs = needed;
  }
  if (procs > maxConns && mode !== 'ramp') procs = maxConns;
  const cpus = o.cpus !== undefined ? parseCpuList(o.cpus) : [];

  let sources: string[] = [];
  if (o.sources !== undefined && o.sources !== 'auto') sources = parseSources(o.sources);
  const perTarget = Math.ceil(maxConns / targets.length);
  if (sources.length === 0 && perTarget > CONNS_PER_SOURCE) {
    const loopback = targets.every((t) => t.host.startsWith('127.'));
    if (!loopback && o.sources === undefined) {
      notes.push(`${perTarget} connections per target: connect() slows down past ~14k per source address, and fails past ~28k: give --sources`);
    } else if (loopback) {
      // Every 127.0.0.0/8 address is local on Linux: spread the connections over as many as needed.
      const n = Math.ceil(perTarget / CONNS_PER_SOURCE);
      sources = Array.from({ length: n }, (_, i) => `127.0.0.${i + 1}`);
      notes.push(`${perTarget} connections per target: spreading source addresses over ${sources[0]}-${sources[n - 1]}`);
    }
  }
  if (sources.length > 0) {
    const fam = isIP(targets[0]!.host);
    if (sources.some((s) => isIP(s) !== fam)) throw new LoadUsageError('--sources must be the same address family as the targets');
  }

  const stepCount = mode === 'ramp' ? steps.length : 1;
  const planned = mode === 'ramp' ? stepCount * (stepDurationMs + connectTimeoutMs) : durationMs;
  const connectPhase = connectRate > 0 ? (maxConns / connectRate) * 1000 : 0;
  const deadlineMs = o.deadline !== undefined
    ? parseTime('--deadline', o.deadline, 1000)
    : requests > 0
      ? 300_000
      : planned + connectPhase + connectTimeoutMs + timeoutMs + 5000;

  return {
    mode, protocol, targets, connections, pipeline, durationMs, requests, rate, connectRate, intervalMs, timeoutMs,
    connectTimeoutMs, deadlineMs, method, headers, body, expectStatus, commands, keyspace, dataSize, size, procs, cpus,
    sources, steps, rampBy, stepDurationMs, sloP99Ms, sloErrors, maxErrors, maxErrorsFraction, hdrLog: o.hdrLog ?? null,
    backend: o.backend ?? 'auto', notes,
  };
}
