/**
 * Synthetic LabResults with plausible figures for every scenario and target (shaped on a 2-vCPU VM:
 * epoll ~48k HTTP req/s at 100 connections, client-bound; Node worker threads ~8.6 MB each; nginx
 * ~0.8 KB per idle connection), and small helpers the tests use to push one figure the other way.
 */
import { RESULTS_SCHEMA, type LabResults, type Protocol, type Sample, type ScenarioName, type ScenarioResult, type Target } from '../../src/lab/results.js';

const KB = 1024;
const MB = 1024 * 1024;

export const TARGETS: Record<string, Target> = {
  threads: { kind: 'engine', name: 'threads', ran: 'threads', model: 'blocking' },
  prefork: { kind: 'engine', name: 'prefork', ran: 'prefork', model: 'blocking' },
  busypoll: { kind: 'engine', name: 'busypoll', ran: 'busypoll', model: 'non-blocking' },
  select: { kind: 'engine', name: 'select', ran: 'select', model: 'multiplexing' },
  poll: { kind: 'engine', name: 'poll', ran: 'poll', model: 'multiplexing' },
  epoll: { kind: 'engine', name: 'epoll', ran: 'epoll', model: 'multiplexing' },
  io_uring: { kind: 'engine', name: 'io_uring', ran: 'io_uring', model: 'async' },
  node: { kind: 'engine', name: 'node', ran: 'node', model: 'reference' },
  nginx: { kind: 'peer', name: 'nginx', ran: 'nginx', model: 'multiplexing' },
  'apache2-prefork': { kind: 'peer', name: 'apache2-prefork', ran: 'apache2-prefork', model: 'blocking' },
  'apache2-worker': { kind: 'peer', name: 'apache2-worker', ran: 'apache2-worker', model: 'blocking' },
  'apache2-event': { kind: 'peer', name: 'apache2-event', ran: 'apache2-event', model: 'multiplexing' },
  'redis-server': { kind: 'peer', name: 'redis-server', ran: 'redis-server', model: 'multiplexing' },
};

export interface Fig {
  rps: number;
  p99Us?: number;
  cpuUs?: number | null;
  ctx?: number | null;
  sys?: number | null;
  eagain?: number | null;
  stalls?: number | null;
  rss?: number | null;
  vm?: number | null;
  threads?: number | null;
  processes?: number | null;
  errors?: number;
}

/** A Sample from the few figures a test cares about; the rest derived plausibly. */
export function sample(f: Fig, connections: number, engine: boolean): Sample {
  const p99 = f.p99Us ?? 1000;
  return {
    rps: f.rps,
    requests: Math.round(f.rps * 5),
    errors: f.errors ?? 0,
    errorsByKind: f.errors ? { timeout: f.errors } : {},
    latencyUs: { p50: p99 * 0.4, p90: p99 * 0.7, p99, p999: p99 * 1.6, max: p99 * 3 },
    cpuUsPerReq: f.cpuUs === undefined ? 10 : f.cpuUs,
    ctxSwitchesPerReq: f.ctx === undefined ? 0.02 : f.ctx,
    syscallsPerReq: engine ? (f.sys === undefined ? 2.1 : f.sys) : null,
    syscallsByNamePerReq: engine && f.sys !== null ? { read: 1, write: 1, epoll_wait: Math.max(0, (f.sys ?? 2.1) - 2) } : null,
    eagainPerReq: engine ? (f.eagain === undefined ? 0.01 : f.eagain) : null,
    wakeupsPerReq: engine ? 0.1 : null,
    loopStalls: engine ? (f.stalls === undefined ? 0 : f.stalls) : null,
    rssBytes: f.rss === undefined ? 60 * MB : f.rss,
    vmBytes: f.vm === undefined ? 1200 * MB : f.vm,
    threads: f.threads === undefined ? 11 : f.threads,
    processes: f.processes === undefined ? 1 : f.processes,
    connections,
  };
}

export function result(
  scenario: ScenarioName,
  name: string,
  protocol: Protocol,
  connections: number,
  f: Fig | null,
  extra: Omit<Partial<ScenarioResult>, 'params'> & { params?: Record<string, unknown> } = {},
): ScenarioResult {
  const t = TARGETS[name] ?? { kind: 'engine', name, ran: name, model: 'multiplexing' };
  const s = f ? sample(f, connections, t.kind === 'engine') : null;
  const { params, ...rest } = extra;
  return {
    scenario,
    target: t,
    protocol,
    params: { connections, durationS: 5, pipeline: 1, ...params },
    status: f ? 'ok' : 'skipped',
    samples: s ? [s, { ...s, rps: s.rps * 0.98 }, { ...s, rps: s.rps * 1.01 }] : [],
    median: s,
    rpsSpread: s ? 0.03 : null,
    ...rest,
  };
}

/** Idle hold: per-connection user RSS, kernel memory, threads per connection. */
function idle(name: string, n: number, user: number, kernel: number, threadsPerConn: number, cpuPercent: number, f: Partial<Fig> = {}): ScenarioResult {
  const threads = Math.round(n * threadsPerConn) + 11;
  return result('idle', name, name === 'redis-server' ? 'resp' : 'http', n, { rps: 0, cpuUs: null, ctx: null, sys: null, eagain: null, rss: 50 * MB + n * user, threads, ...f }, {
    idle: {
      connections: n,
      held: n,
      rssPerConnBytes: user,
      kernelSlabPerConnBytes: kernel * 0.6,
      kernelBufferPerConnBytes: kernel * 0.4,
      threadsPerConn,
      cpuPercent,
    },
  });
}

/** HTTP req/s, p99 (µs) and CPU µs/request at 10 / 100 / 1,000 / 10,000 connections. */
const RAMP: Record<string, [number, number, number][]> = {
  epoll: [[31_000, 400, 9.5], [48_000, 3_200, 9.0], [46_000, 28_000, 9.4], [41_000, 290_000, 10.1]],
  io_uring: [[32_000, 380, 7.8], [52_000, 2_900, 7.5], [50_000, 26_000, 7.7], [45_000, 260_000, 8.2]],
  poll: [[30_000, 420, 9.8], [46_000, 3_400, 10.2], [38_000, 35_000, 13.5], [19_000, 700_000, 24.0]],
  select: [[30_000, 420, 9.9], [45_000, 3_500, 10.4], [36_000, 36_000, 14.0]],
  busypoll: [[25_000, 600, 28.0], [40_000, 4_000, 25.0], [30_000, 45_000, 33.0], [12_000, 1_100_000, 80.0]],
  node: [[15_000, 1_100, 48.0], [21_000, 7_000, 45.0], [19_000, 70_000, 47.0], [16_000, 800_000, 55.0]],
  threads: [[20_000, 900, 28.0], [30_000, 5_500, 30.0], [24_000, 60_000, 38.0]],
  prefork: [[16_000, 1_200, 35.0], [25_000, 6_500, 36.0], [18_000, 85_000, 45.0]],
};
const COUNTS = [10, 100, 1000, 10_000];

export interface BuildOptions {
  /** Include the static-file sendfile vs copy comparison (C9). Default true. */
  static?: boolean;
  /** Include the idle-active scenario (C3 is judged on it when present). Default true. */
  idleActive?: boolean;
}

/**
 * idle-active: 100 busy HTTP connections beside N idle ones; [idle, req/s, CPU µs/request, syscalls/request].
 * poll and select scan every watched fd per wait, so their cost per request grows with N; epoll's and io_uring's do not.
 * select stops at 850 idle: 850 + 100 busy + the server's own fds stay below FD_SETSIZE.
 */
export const IDLE_ACTIVE_FIXTURE: Record<string, [number, number, number, number][]> = {
  select: [[0, 44_000, 9.2, 2.2], [850, 31_000, 14.5, 2.2]],
  poll: [[0, 45_000, 9.0, 2.2], [1000, 32_000, 13.8, 2.2], [10_000, 9_000, 40.0, 2.2]],
  epoll: [[0, 47_000, 8.8, 2.1], [1000, 46_500, 9.0, 2.1], [10_000, 45_000, 9.6, 2.1]],
  io_uring: [[0, 51_000, 7.3, 0.35], [1000, 50_500, 7.4, 0.35], [10_000, 49_000, 7.9, 0.36]],
};

/** One idle-active result: `idle` idle connections (all held) beside 100 busy ones. */
export function idleActiveResult(name: string, idle: number, f: Fig | null, extra: Omit<Partial<ScenarioResult>, 'params'> = {}): ScenarioResult {
  return result('idle-active', name, 'http', idle + 100, f, { ...extra, params: { idle, active: 100, idleHeld: idle } });
}

export function buildResults(o: BuildOptions = {}): LabResults {
  const rs: ScenarioResult[] = [];
  const perConnThreadRss = 8.6 * MB;

  // throughput: HTTP at 100 connections for everyone; RESP at 50 and echo at 100 for a few.
  for (const [name, ramp] of Object.entries(RAMP)) {
    const [rps, p99, cpu] = ramp[1]!;
    const blocking = name === 'threads' || name === 'prefork';
    rs.push(
      result('throughput', name, 'http', 100, {
        rps,
        p99Us: p99,
        cpuUs: cpu,
        sys: name === 'io_uring' ? 0.35 : name === 'busypoll' ? 5.2 : name === 'poll' || name === 'select' ? 2.2 : name === 'node' ? null : blocking ? 2.0 : 2.1,
        ctx: blocking ? 2.1 : name === 'node' ? 0.05 : 0.02,
        eagain: name === 'busypoll' ? 3.4 : 0.01,
        rss: blocking ? 40 * MB + 100 * perConnThreadRss : 60 * MB,
        vm: blocking ? 1200 * MB + 100 * 72 * MB : 1200 * MB,
        threads: blocking ? 111 : 11,
        processes: name === 'prefork' ? 101 : 1,
      }),
    );
  }
  const peers: [string, number, number][] = [['nginx', 50_000, 7.0], ['apache2-prefork', 18_000, 40.0], ['apache2-worker', 22_000, 33.0], ['apache2-event', 24_000, 30.0]];
  for (const [name, rps, cpu] of peers) rs.push(result('throughput', name, 'http', 100, { rps, p99Us: 3_000, cpuUs: cpu, ctx: name.includes('event') ? 0.1 : 1.5 }));
  rs.push(result('throughput', 'redis-server', 'resp', 50, { rps: 62_000, p99Us: 1_400, cpuUs: 6.0 }));
  for (const name of ['epoll', 'io_uring', 'threads']) {
    rs.push(result('throughput', name, 'resp', 50, { rps: name === 'threads' ? 28_000 : 55_000, p99Us: 1_600, cpuUs: 8, sys: name === 'io_uring' ? 0.3 : 2.1 }));
    rs.push(result('throughput', name, 'echo', 100, { rps: name === 'threads' ? 33_000 : 60_000, p99Us: 2_500, cpuUs: 7, sys: name === 'io_uring' ? 0.3 : 2.0 }));
  }
  if (o.static !== false) {
    rs.push(result('throughput', 'epoll', 'http', 100, { rps: 30_000, p99Us: 4_000, cpuUs: 12 }, { params: { app: 'static', sendfile: true, fileBytes: 65_536 } }));
    rs.push(result('throughput', 'epoll', 'http', 100, { rps: 24_000, p99Us: 5_000, cpuUs: 16 }, { params: { app: 'static', sendfile: false, fileBytes: 65_536 } }));
  }

  // scaling: the ramp; 100 comes from the throughput step. select stops at FD_SETSIZE, threads at the guard.
  for (const [name, ramp] of Object.entries(RAMP)) {
    const blocking = name === 'threads' || name === 'prefork';
    COUNTS.forEach((c, i) => {
      if (c === 100) return;
      const v = ramp[i];
      if (!v) {
        const why = name === 'select' ? 'fd 1024 >= FD_SETSIZE: refused 8,980 connections' : 'memory guard at 3.0 GB (RSS 2.9 GB, 341 threads)';
        rs.push(result('scaling', name, 'http', c, null, { status: 'broke', reason: why }));
        return;
      }
      rs.push(
        result('scaling', name, 'http', c, {
          rps: v[0],
          p99Us: v[1],
          cpuUs: v[2],
          ctx: blocking ? 2.1 + c / 2000 : 0.02,
          rss: blocking ? 40 * MB + c * perConnThreadRss : 60 * MB + c * 3 * KB,
          vm: blocking ? 1200 * MB + c * 72 * MB : 1200 * MB,
          threads: blocking ? c + 11 : 11,
          sys: name === 'io_uring' ? 0.35 : 2.1,
        }),
      );
    });
  }
  rs.push(result('scaling', 'nginx', 'http', 10_000, { rps: 44_000, p99Us: 250_000, cpuUs: 7.5 }));

  if (o.idleActive !== false) {
    for (const [name, points] of Object.entries(IDLE_ACTIVE_FIXTURE)) {
      for (const [idle, rps, cpuUs, sys] of points) rs.push(idleActiveResult(name, idle, { rps, p99Us: 3_000 + idle / 5, cpuUs, sys }));
    }
  }
  rs.push(result('scaling', 'apache2-prefork', 'http', 10_000, null, { status: 'broke', reason: 'refused 7,400 connections (MaxRequestWorkers 150)' }));

  // idle: cost per idle connection.
  rs.push(idle('epoll', 10_000, 1.1 * KB, 2.3 * KB, 0, 0.1));
  rs.push(idle('io_uring', 10_000, 1.3 * KB, 2.3 * KB, 0, 0.1));
  rs.push(idle('poll', 10_000, 1.2 * KB, 2.3 * KB, 0, 0.4));
  rs.push(idle('select', 1000, 1.2 * KB, 2.3 * KB, 0, 0.1));
  rs.push(idle('busypoll', 10_000, 1.2 * KB, 2.3 * KB, 0, 99.6));
  rs.push(idle('node', 10_000, 5.4 * KB, 2.3 * KB, 0, 0.2));
  rs.push(idle('threads', 1000, perConnThreadRss, 2.3 * KB, 1, 0.3, { vm: 1200 * MB + 1000 * 72 * MB }));
  rs.push(idle('nginx', 10_000, 0.8 * KB, 2.3 * KB, 0, 0.0));
  rs.push(idle('redis-server', 10_000, 2.1 * KB, 2.3 * KB, 0, 0.1));
  rs.push(result('idle', 'apache2-prefork', 'http', 10_000, null, { status: 'skipped', reason: 'budget: the quick run holds 10k idle on event loops only' }));

  // blocking-handler: 1 ms of blocking work vs 1 ms of async waiting, 50 connections.
  const bh = (name: string, work: string, rps: number, p99: number, stalls: number | null): void =>
    void rs.push(result('blocking-handler', name, 'http', 50, { rps, p99Us: p99, stalls, cpuUs: 15, ctx: name === 'threads' ? 2.5 : 0.05 }, { params: { work, app: 'hello' } }));
  bh('epoll', 'blocking:1ms', 950, 54_000, 1_900);
  bh('epoll', 'async:1ms', 31_000, 2_600, 0);
  bh('io_uring', 'blocking:1ms', 960, 53_000, 1_920);
  bh('io_uring', 'async:1ms', 33_000, 2_400, 0);
  bh('threads', 'blocking:1ms', 22_000, 4_100, 0);
  bh('threads', 'async:1ms', 24_000, 3_800, 0);

  // breaking-point: ramps until the SLO or the guard stops them.
  const bp = (name: string, maxOk: number | null, brokeAt: number | null, why: string | null, steps: [number, number, string][]): void =>
    void rs.push(
      result('breaking-point', name, 'http', brokeAt ?? maxOk ?? 0, null, {
        status: brokeAt ? 'broke' : 'ok',
        ...(why ? { reason: why } : {}),
        breaking: { maxOk, brokeAt, why, steps: steps.map(([c, rps, status]) => ({ connections: c, rps, p99Us: status === 'ok' ? 2_000 + c * 20 : null, errors: status === 'ok' ? 0 : 400, rssBytes: null, status })) },
      }),
    );
  bp('threads', 2_000, 4_000, 'memory guard at 3.0 GB (RSS 2.9 GB, 341 threads)', [[1_000, 24_000, 'ok'], [2_000, 21_000, 'ok'], [4_000, 0, 'broke']]);
  bp('prefork', 2_000, 4_000, 'memory guard at 3.0 GB (341 processes)', [[1_000, 18_000, 'ok'], [2_000, 15_000, 'ok'], [4_000, 0, 'broke']]);
  bp('epoll', 19_000, null, null, [[5_000, 43_000, 'ok'], [10_000, 41_000, 'ok'], [19_000, 38_000, 'ok']]);
  bp('io_uring', 19_000, null, null, [[5_000, 47_000, 'ok'], [10_000, 45_000, 'ok'], [19_000, 42_000, 'ok']]);
  // nginx with 8 worker processes holds more than one process's 20,000 fds.
  rs.push(idle('nginx', 150_000, 0.8 * KB, 2.3 * KB, 0, 0.0, { processes: 9 }));

  return {
    schema: RESULTS_SCHEMA,
    startedAt: '2025-11-26T02:00:00.000Z',
    finishedAt: '2025-11-26T02:14:31.000Z',
    mode: 'full',
    budgetS: 900,
    machine: {
      kernel: '6.18.0',
      arch: 'x64',
      cpus: 2,
      cpuModel: 'Intel(R) Xeon(R) Platinum 8488C',
      memBytes: 4 * 1024 * MB,
      node: 'v20.20.2',
      iolab: '0.1.0',
      ioUring: { available: true, features: 0x3ffff },
      nofile: { soft: 20_000, hard: 20_000 },
      serverCpu: 0,
      clientCpu: 1,
    },
    results: rs,
    notes: ['apache2-worker: idle scenario not run (budget)'],
  };
}

// --- helpers for the tests: find a result and change a figure --------------------------------

export interface Where {
  scenario?: ScenarioName;
  name: string;
  protocol?: Protocol;
  connections?: number;
  work?: string;
}

export function findAll(r: LabResults, w: Where): ScenarioResult[] {
  return r.results.filter(
    (s) =>
      s.target.name === w.name &&
      (!w.scenario || s.scenario === w.scenario) &&
      (!w.protocol || s.protocol === w.protocol) &&
      (w.connections == null || s.params.connections === w.connections) &&
      (w.work == null || s.params.work === w.work),
  );
}

/** Patch the median (and every sample) of the matching results. */
export function patch(r: LabResults, w: Where, p: Partial<Sample>): void {
  const found = findAll(r, w);
  if (found.length === 0) throw new Error(`fixture: nothing matches ${JSON.stringify(w)}`);
  for (const s of found) {
    if (s.median) Object.assign(s.median, p);
    for (const x of s.samples) Object.assign(x, p);
  }
}

export function remove(r: LabResults, pred: (s: ScenarioResult) => boolean): void {
  r.results = r.results.filter((s) => !pred(s));
}

export const clone = (r: LabResults): LabResults => structuredClone(r);
