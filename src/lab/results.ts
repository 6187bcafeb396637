/**
 * results.json: what one `iolab bench` run measured. Versioned; `iolab report` and `iolab compare`
 * read it back. Every figure is measured on the machine named in `machine`; nothing is typed in.
 *
 * Units: times in microseconds unless the name says otherwise (`...Ms`, `...S`), memory in bytes,
 * rates per second. A figure that could not be measured is `null`, never 0.
 */

export const RESULTS_SCHEMA = 'iolab.results/1';

export interface Machine {
  kernel: string;
  arch: string;
  cpus: number;
  cpuModel: string;
  memBytes: number;
  node: string;
  iolab: string;
  /** io_uring as probed at the start of the run: available, or why not. */
  ioUring: { available: boolean; reason?: string; features?: number };
  nofile: { soft: number; hard: number };
  /** CPU the servers were pinned to, CPU the load generator was pinned to (null: not pinned). */
  serverCpu: number | null;
  clientCpu: number | null;
}

/** What was measured: one of iolab's engines, or an outside peer (nginx, redis-server, apache2 ...). */
export interface Target {
  kind: 'engine' | 'peer';
  /** As asked: `io_uring`, `threads`, `nginx`, `apache2-prefork`, `redis-server`, `node` ... */
  name: string;
  /** What actually ran (after any fallback), e.g. `epoll` when io_uring was refused. */
  ran: string;
  /** I/O model: blocking, non-blocking, multiplexing, async, reference. */
  model: string;
}

/**
 * `zero-copy` names a part of the plan (the static app with --sendfile on and off); its results are
 * recorded as `throughput` results with `params.app` = 'static', `params.sendfile` true/false and
 * `params.fileBytes`, so they sit in the throughput table and CLAIMS.md C9 is judged from them.
 *
 * `idle-active`: a closed loop of `params.active` busy HTTP connections measured while the server
 * also holds `params.idle` idle ones (`params.idleHeld`: how many it actually held);
 * `params.connections` is their sum, the fds the server watches. CLAIMS.md C3 is judged from it.
 */
export type ScenarioName = 'throughput' | 'scaling' | 'idle' | 'idle-active' | 'blocking-handler' | 'breaking-point' | 'zero-copy';

export type Protocol = 'http' | 'resp' | 'echo';

/** One measured window (one repeat). */
export interface Sample {
  /** Requests (responses verified) per second. */
  rps: number;
  requests: number;
  errors: number;
  /** Errors by kind: refused, reset, timeout, protocol, wrong-reply ... */
  errorsByKind: Record<string, number>;
  latencyUs: { p50: number; p90: number; p99: number; p999: number; max: number } | null;
  /** Bytes the load generator received per second (responses, heads included); absent in older results. */
  bytesPerSec?: number | null;
  /** Server process tree, over the window: CPU time (user+sys) per request, context switches per request. */
  cpuUsPerReq: number | null;
  ctxSwitchesPerReq: number | null;
  /** From the engine's own counters (iolab engines only): syscalls per request, by name too. */
  syscallsPerReq: number | null;
  syscallsByNamePerReq: Record<string, number> | null;
  eagainPerReq: number | null;
  wakeupsPerReq: number | null;
  loopStalls: number | null;
  /** Server process tree at the end of the window. */
  rssBytes: number | null;
  vmBytes: number | null;
  threads: number | null;
  processes: number | null;
  /** Connections the server held (from its stats) / the load generator had open. */
  connections: number;
  /**
   * The L3 cache probe (ns per dependent load, src/lab/cacheprobe.ts) read just before the window with
   * the server idle: high when another tenant of the host held the cache. Absent in older results.
   */
  cacheNs?: number | null;
}

export interface ScenarioResult {
  scenario: ScenarioName;
  target: Target;
  protocol: Protocol;
  /** Inputs: connections, pipeline, payload size, work (`blocking:1ms`), duration ... */
  params: {
    connections: number;
    pipeline?: number;
    durationS?: number;
    work?: string;
    app?: string;
    [k: string]: unknown;
  };
  /**
   * ok: measured. skipped: not run (reason says why: a peer not installed, a model that cannot, budget).
   * broke: ran and broke (reason: "memory guard at 2.1 GB", "p99 1200 ms > SLO 100 ms", "refused 312 connections").
   * failed: the harness failed (reason has the error); recorded, never a crash of the lab.
   */
  status: 'ok' | 'skipped' | 'broke' | 'failed';
  reason?: string;
  /** Every repeat. */
  samples: Sample[];
  /** Median over samples, field by field (null when there are none). */
  median: Sample | null;
  /** Spread of rps over repeats: (max - min) / median. */
  rpsSpread: number | null;
  /** idle scenario: cost per idle connection. */
  idle?: {
    connections: number;
    held: number;
    rssPerConnBytes: number;
    kernelSlabPerConnBytes: number | null;
    kernelBufferPerConnBytes: number | null;
    threadsPerConn: number;
    /** Server CPU over the idle window, % of one core (a busy-polling loop spins near 100). Optional. */
    cpuPercent?: number | null;
  };
  /** breaking-point scenario: the largest connection count that met the SLO, and the one that broke. */
  breaking?: {
    maxOk: number | null;
    brokeAt: number | null;
    why: string | null;
    steps: { connections: number; rps: number; p99Us: number | null; errors: number; rssBytes: number | null; status: string }[];
  };
}

/** A verdict on one claim of the article, decided from the measured numbers by `report/claims.ts`. */
export interface ClaimVerdict {
  id: string;
  claim: string;
  verdict: 'confirmed' | 'refuted' | 'depends' | 'not measured';
  /** The numbers that decide it, in words: "threads 41k req/s vs epoll 48k at 100 connections (0.85x)". */
  evidence: string[];
}

export interface LabResults {
  schema: typeof RESULTS_SCHEMA;
  startedAt: string;
  finishedAt: string;
  /** quick | full | custom */
  mode: string;
  budgetS: number;
  machine: Machine;
  results: ScenarioResult[];
  /** Filled by the report step (and recomputed by `iolab report`). */
  claims?: ClaimVerdict[];
  /** Problems that did not stop the run: a peer that failed to start, a guard that fired. */
  notes: string[];
  /** One connection's syscalls under each engine (`iolab trace`, src/trace/): present when traced. */
  traces?: TraceSummary[];
}

/** The phases of one connection's life, in the order `iolab trace` prints them. */
export type TracePhase = 'accept' | 'wait' | 'read' | 'app' | 'write' | 'close';

/** One call (or merged run of identical no-progress calls) in a traced connection's life. docs/trace-json.md. */
export interface TraceStep {
  /** Microseconds since the connection's first step; microseconds spent in the call(s). */
  atUs: number;
  durUs: number;
  phase: TracePhase;
  /** A syscall, or `ready` / `sqe` / `cqe` / `aio_done` (what a wait or ring reported), or `app` (user space). */
  sys: string;
  /** The same call in strace's words, e.g. `read(7, 65536) = 79` or `read(7) = -EAGAIN x 2411`. */
  text: string;
  res: number;
  err?: string;
  /** Identical calls merged into this step. */
  n?: number;
  fd?: number;
  op?: string;
  events?: string;
  pid: number;
  tid: number;
}

/** `iolab trace` for one engine (and one entry of LabResults.traces). docs/trace-json.md. */
export interface TraceSummary {
  engine: string;
  /** What ran (after any fallback). */
  ran: string;
  model: string;
  app: string;
  requests: number;
  connections: number;
  /** ok: traced; skipped: the engine makes no call through iolab's sys layer (node); failed: the reason says why. */
  status: 'ok' | 'skipped' | 'failed';
  reason?: string;
  /** The traced connection: its fd in the server, and the threads/processes that touched it. */
  fd?: number;
  threads?: number;
  processes?: number;
  phases: { phase: TracePhase; calls: number; timeUs: number }[];
  totals: {
    /** Kernel entries for this connection (merged runs counted in full), and per request. */
    syscalls: number;
    callsPerRequest: number;
    eagain: number;
    /** Readiness or completion waits that reported this connection (epoll_wait, poll, select, io_uring_enter, aio_suspend). */
    waits: number;
    /** io_uring: SQEs submitted and CQEs reaped for this connection. */
    sqes: number;
    cqes: number;
    /** In the thread that served the connection, over its life: time inside calls, and the rest (user space). */
    kernelUs: number;
    userUs: number;
    lifeUs: number;
  };
  /** One steady-state request (the second, when there are two or more), as `sys` names: the article's picture. */
  request: string[];
  /** The connection's life, in order (at most 400 steps; `truncated` counts the rest). */
  steps: TraceStep[];
  truncated?: number;
}
