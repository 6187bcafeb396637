/**
 * What `iolab bench` runs: the matrix of scenarios x targets, sized by mode. `quick` fits the
 * 3-minute budget of `npm start` on a 2-core machine (one repeat of short windows; the connection
 * ramp stops at 1,000); `full` repeats 3 times with longer windows and ramps to 10k (and 100k idle).
 */
import { FD_SETSIZE } from '../sys/constants.js';
import type { Protocol, ScenarioName } from './results.js';

export interface TargetSpec {
  kind: 'engine' | 'peer';
  name: string;
  /** Label when the same engine runs with different flags, e.g. `epoll --edge`. */
  label?: string;
  extra?: string[];
  env?: Record<string, string>;
}

export interface Step {
  scenario: ScenarioName;
  target: TargetSpec;
  protocol: Protocol;
  connections: number[];
  work?: string;
  pipeline?: number;
  /** zero-copy: the static app (or nginx) serving one file of `bytes`, sent with sendfile or copied. */
  file?: { bytes: number; sendfile: boolean };
  /** idle-active: busy connections measured beside each idle count in `connections`. */
  active?: number;
  /** Not run, for this reason (recorded as skipped): e.g. select cannot watch that many fds. */
  skip?: string;
  /** Rough seconds this step takes, for progress and the budget. */
  estimateS: number;
}

export interface PlanOptions {
  mode: 'quick' | 'full';
  engines: string[];
  peers: string[];
  scenarios: ScenarioName[];
  durationS: number;
  warmupS: number;
  repeats: number;
  /** idle-active: other idle counts (ascending, 0 first) and busy connections than the mode's (IDLE_ACTIVE). */
  idleActive?: { idle: number[]; active?: number };
}

export const EVENT_LOOP_ENGINES = ['select', 'poll', 'epoll', 'io_uring', 'busypoll', 'aio', 'node'];
export const BLOCKING_ENGINES = ['threads', 'prefork'];
/**
 * The most threads (or processes) a blocking engine starts, whatever is asked: their hard cap
 * (threads/engine.ts, prefork/engine.ts HARD_CAP); memory stops them sooner on most machines.
 */
const BLOCKING_CAP: Record<string, number> = { threads: 2000, prefork: 1000 };

/**
 * The warm-up before a load step's windows, as run lengths in seconds. An event loop is one isolate,
 * warm within the usual warm-up. threads and prefork run an isolate per connection, and each compiles
 * its own copy of the request path, on its own time slice (engines/tiering.ts): at 100 connections
 * that took ~20 s of the one core here, and a connection's first EOF sends each isolate's code back
 * to be recompiled once; the rate levels off after ~40 s (threads) and ~30 s (prefork) at 100
 * connections (3 s windows, each a new wrk). So --full gives them 0.4 s per connection (at most 120
 * connections' worth), in two runs so the second's new connections take that recompile before the
 * windows. The quick tour cannot afford it: its blocking rows are measured cold, and the report says so.
 */
export function warmupRuns(target: string, connections: number, mode: string, warmupS: number): number[] {
  if (mode === 'full' && BLOCKING_ENGINES.includes(target)) {
    const perConn = 0.4;
    const total = Math.max(warmupS, Math.min(perConn * 120, connections * perConn));
    return [total * 0.7, total * 0.3];
  }
  return warmupS > 0 ? [warmupS] : [];
}

/** The seconds of warmupRuns() beyond the usual `warmupS` (0 for an event loop): what a step's estimate adds. */
function extraWarmupS(target: string, connections: number, mode: string, warmupS: number): number {
  return warmupRuns(target, connections, mode, warmupS).reduce((a, b) => a + b, 0) - warmupS;
}


/** The quick tour's time budget (`iolab bench --quick`, what `npm start` runs): about three minutes here. */
export const QUICK_BUDGET_S = 180;

export const ALL_SCENARIOS: ScenarioName[] = ['throughput', 'scaling', 'idle', 'idle-active', 'blocking-handler', 'breaking-point', 'zero-copy'];

export function defaultPlanOptions(mode: 'quick' | 'full'): Omit<PlanOptions, 'engines' | 'peers'> {
  return mode === 'quick'
    ? { mode, scenarios: [...ALL_SCENARIOS], durationS: 1.5, warmupS: 0.5, repeats: 1 }
    : { mode, scenarios: [...ALL_SCENARIOS], durationS: 5, warmupS: 2, repeats: 3 };
}

/**
 * zero-copy: closed-loop connections per step. Each keeps one request outstanding, so 16 keep the
 * server's one core busy (the server, not the client, sets the rate from here on), while bytes in
 * flight stay within the socket buffers (16 x 1 MB); at 100, as the hello throughput step uses,
 * 1 MB files would only queue more in the kernel, and every connection's reply would wait longer.
 */
export const ZERO_COPY_CONNECTIONS = 16;
/** zero-copy file sizes: 64 KB (a typical page asset: copying it is a few memcpy calls), and 1 MB in --full (copy cost dominates). */
export const ZERO_COPY_SIZES = { quick: [64 << 10], full: [64 << 10, 1 << 20] };

/**
 * idle-active: N idle connections held open beside a fixed closed loop of busy ones, the load C3 is
 * about (most of a server's sockets idle). poll and select hand the kernel every watched fd on each
 * wait and scan them all again for the ready few; epoll returns only the ready ones. With every
 * connection busy (the scaling ramp) that scan is shared by ~n ready fds and the difference hides.
 * 0 vs 10,000 idle beside 100 busy is a 101x span of watched fds. The quick tour measures 10,000: at
 * 1,000 a busy loop finds ~55-90 requests per wait, its scan of 1,100 fds is shared by them, and poll's
 * growth came out at 1.12-1.91x over 7 runs (median ~1.26x), either side of the rule's 1.5x; at 10,000
 * it was 5.7-6.0x (epoll 0.81-0.92x).
 */
export const IDLE_ACTIVE = {
  active: 100,
  idle: { quick: [0, 10_000], full: [0, 1000, 10_000] },
  quick: ['poll', 'epoll'],
  full: ['select', 'poll', 'epoll', 'io_uring'],
} as const;
/**
 * fds a server process has open besides its connections: stdio, the listening socket, Node's own
 * epoll fds, eventfds and pipes (about 20 measured in an idle \`iolab serve\`), with room to spare.
 */
const SERVER_FDS = 64;
/** select: the most idle connections (a multiple of 50) whose fds, with the busy ones, stay below FD_SETSIZE. */
export const SELECT_MAX_IDLE = Math.floor((FD_SETSIZE - IDLE_ACTIVE.active - SERVER_FDS) / 50) * 50;

/** prefork serves one connection per process, so N connections need N processes (Apache's MaxRequestWorkers; the engine caps it by memory). */
function withProcs(t: TargetSpec, n: number): TargetSpec {
  return t.name === 'prefork' ? { ...t, extra: [...(t.extra ?? []), '--procs', String(n)] } : t;
}

/**
 * A fixed-load step (throughput): the blocking engines configured for the load as Apache would be:
 * prefork with N processes, threads with N threads started before the window (StartServers x
 * ThreadsPerChild), so the window measures serving rather than ~65 ms of CPU per thread start.
 */
function sizedFor(t: TargetSpec, n: number): TargetSpec {
  if (t.name === 'threads') return { ...t, extra: [...(t.extra ?? []), '--spare-threads', String(n)] };
  return withProcs(t, n);
}

export function buildPlan(o: PlanOptions): Step[] {
  const steps: Step[] = [];
  const win = o.warmupS + o.durationS * o.repeats + 1; // + start/stop
  const engines = o.engines.map((name): TargetSpec => ({ kind: 'engine', name }));
  const peersHttp = o.peers.filter((p) => p === 'nginx' || p.startsWith('apache2')).map((name): TargetSpec => ({ kind: 'peer', name }));
  const peersResp = o.peers.filter((p) => p === 'redis-server').map((name): TargetSpec => ({ kind: 'peer', name }));
  const has = (s: ScenarioName): boolean => o.scenarios.includes(s);
  const quick = o.mode === 'quick';

  if (has('throughput')) {
    // Blocking engines start a thread or process per connection first (an isolate each, ~65-100 ms of CPU,
    // a few at once). Measured in the quick tour: a 100-connection step took 8-11 s for threads and 17 s for
    // prefork, against a 3.5 s window.
    const startS = (t: TargetSpec, n: number): number => (t.name === 'threads' ? n / 15 : BLOCKING_ENGINES.includes(t.name) ? n / 7 : 0);
    // win counts the usual warm-up; blocking engines get more under --full.
    const warmS = (t: TargetSpec, n: number): number => extraWarmupS(t.name, n, o.mode, o.warmupS);
    for (const t of [...engines, ...peersHttp]) {
      steps.push({ scenario: 'throughput', target: sizedFor(t, 100), protocol: 'http', connections: [100], estimateS: win + startS(t, 100) + warmS(t, 100) });
    }
    const respEngines = engines.filter((t) => !quick || ['epoll', 'io_uring', 'threads', 'node'].includes(t.name));
    for (const t of [...respEngines, ...peersResp]) steps.push({ scenario: 'throughput', target: sizedFor(t, 50), protocol: 'resp', connections: [50], estimateS: win + startS(t, 50) + warmS(t, 50) });
    const echoEngines = engines.filter((t) => !quick || ['epoll', 'io_uring', 'threads'].includes(t.name));
    for (const t of echoEngines) steps.push({ scenario: 'throughput', target: sizedFor(t, 100), protocol: 'echo', connections: [100], estimateS: win + startS(t, 100) + warmS(t, 100) });
  }
  if (has('scaling') || has('breaking-point')) {
    // The ramp: the same server, step by step, until it breaks. 100 comes from the throughput step.
    // quick: one step past the throughput point (100), for the engines whose scaling the claims are about.
    const ramp = quick ? [1000] : [10, 100, 1000, 10_000];
    // Thread- and process-per-connection in Node cost a V8 isolate each (~11 MB and ~65 ms of CPU to start
    // a thread; ~50 MB and ~100 ms a process), so ramping them to 1,000 takes minutes: only --full does,
    // until the memory guard stops them. The quick tour shows their cost in the idle scenario instead.
    const rampEngines = quick ? engines.filter((t) => ['select', 'poll', 'epoll', 'io_uring'].includes(t.name)) : engines;
    for (const t of [...rampEngines, ...(quick ? [] : peersHttp)]) {
      const blocking = BLOCKING_ENGINES.includes(t.name);
      // prefork serves one connection per process: give it as many as the ramp's largest step (the engine caps it by memory).
      const target = withProcs(t, ramp.at(-1)!);
      steps.push({ scenario: 'scaling', target, protocol: 'http', connections: ramp, estimateS: ramp.length * (o.durationS * o.repeats + 1) + (blocking ? ramp.at(-1)! / 10 : 0) + ramp.reduce((a, n) => a + extraWarmupS(t.name, n, o.mode, o.warmupS), 0) });
    }
  }
  if (has('idle-active')) {
    const active = o.idleActive?.active ?? IDLE_ACTIVE.active;
    const names: readonly string[] = IDLE_ACTIVE[o.mode];
    const selectMax = Math.floor((FD_SETSIZE - active - SERVER_FDS) / 50) * 50;
    for (const t of engines.filter((e) => names.includes(e.name) || (quick && e.name === 'select'))) {
      let idle: number[] = [...(o.idleActive?.idle ?? IDLE_ACTIVE.idle[o.mode])];
      let skip: string | undefined;
      if (t.name === 'select') {
        // select(2) takes fds below FD_SETSIZE only: cap the idle count where idle + busy + the server's own fds fit.
        const beyond = idle.filter((n) => n > selectMax);
        idle = [...new Set([...idle.filter((n) => n <= selectMax), ...(beyond.length ? [selectMax] : [])])];
        if (quick && beyond.length) {
          // One fitting idle count beside 0 would take another ~5 s of a 150 s tour for a 9.5x span; --full measures it.
          skip = `select takes fds below FD_SETSIZE ${FD_SETSIZE} only: ${beyond.map((n) => n.toLocaleString('en-US')).join(', ')} idle + ${active} busy do not fit (--full measures select up to ${selectMax} idle)`;
          idle = beyond;
        }
      }
      // One server for every idle count: a warmup, then per count a hold of the new idle connections and the windows.
      const holdS = idle.reduce((a, n, i) => a + (n - (idle[i - 1] ?? 0)) / 5000 + (n > 0 ? 0.5 : 0), 0);
      const estimateS = skip ? 0 : 1 + o.warmupS + idle.length * o.durationS * o.repeats + holdS;
      steps.push({ scenario: 'idle-active', target: t, protocol: 'http', connections: idle, active, estimateS, ...(skip ? { skip } : {}) });
    }
  }
  if (has('idle')) {
    const n = quick ? [1000] : [1000, 10_000, 100_000];
    // busypoll is here for its CPU while idle (the article: polling "wastes CPU").
    const idleTargets = quick ? engines.filter((t) => ['epoll', 'io_uring', 'threads', 'busypoll'].includes(t.name)) : engines;
    for (const t of [...idleTargets, ...(quick ? peersHttp.filter((p) => p.name === 'nginx') : peersHttp), ...peersResp]) {
      // 100 threads or processes show their cost per connection; each takes ~65-100 ms of CPU to start.
      const conns = quick && BLOCKING_ENGINES.includes(t.name) ? [100] : n;
      // Blocking engines start ~10 threads or processes a second here, each count anew, up to their cap.
      const startS = BLOCKING_ENGINES.includes(t.name) ? conns.reduce((a, n) => a + Math.min(n, BLOCKING_CAP[t.name]!) / 10, 0) : 0;
      steps.push({ scenario: 'idle', target: withProcs(t, conns.at(-1)!), protocol: t.name === 'redis-server' ? 'resp' : 'http', connections: conns, estimateS: conns.length * 4 + startS });
    }
  }
  if (has('zero-copy')) {
    // The static app on the baseline engine (and io_uring's SPLICE in --full), --sendfile on then off,
    // on the same file and load; nginx serving the same file (sendfile on / off) in --full.
    const zcEngines = engines.filter((t) => t.name === 'epoll' || (!quick && t.name === 'io_uring'));
    const zcPeers = quick ? [] : peersHttp.filter((p) => p.name === 'nginx');
    for (const bytes of ZERO_COPY_SIZES[o.mode]) {
      for (const t of [...zcEngines, ...zcPeers]) {
        for (const sendfile of [true, false]) {
          const target = t.kind === 'engine' ? { ...t, extra: [...(t.extra ?? []), '--sendfile', sendfile ? 'on' : 'off'] } : t;
          steps.push({ scenario: 'zero-copy', target, protocol: 'http', connections: [ZERO_COPY_CONNECTIONS], file: { bytes, sendfile }, estimateS: win });
        }
      }
    }
  }
  if (has('blocking-handler')) {
    const targets = engines.filter((t) => ['epoll', 'io_uring', 'threads'].includes(t.name) && (!quick || t.name !== 'io_uring'));
    for (const t of targets) {
      for (const work of ['blocking:1ms', 'async:1ms']) {
        // Stalls are counted from 1 ms here: the point is to see each 1 ms handler hold the loop.
        const target = { ...t, extra: [...(t.extra ?? []), '--stall-ms', '1'] };
        steps.push({ scenario: 'blocking-handler', target, protocol: 'http', connections: [50], work, estimateS: win });
      }
    }
  }
  return steps;
}
