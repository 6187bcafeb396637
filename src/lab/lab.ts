/**
 * The lab: runs the plan one step at a time (one server at a time, so servers never compete), with
 * the server pinned to one CPU and the load generator to the other, the memory guard watching, and
 * every failure recorded as a result ("broke at N connections: reason") rather than a crash.
 */
import os from 'node:os';
import { ENGINE_INFO } from '../engines/index.js';
import { servedConnections, type EngineStats } from '../engines/types.js';
import { getrlimit, raiseNofile } from '../sys/index.js';
import { epollItems, sampleTree, socketSlabPerConn, sockstat } from '../probe/index.js';
import { MemoryGuard, gb } from './guard.js';
import { contended } from './cacheprobe.js';
import { measureWindow, medianSample, rpsSpread, type LoadFn, type LoadOutcome } from './measure.js';
import { checkBody, makeStaticFiles, sizeName, type StaticFiles } from './files.js';
import { nginxStatic, peerByName } from './peers.js';
import { BLOCKING_ENGINES, buildPlan, warmupRuns, type PlanOptions, type Step, type TargetSpec } from './plan.js';
import { RESULTS_SCHEMA, type LabResults, type Machine, type Protocol, type Sample, type ScenarioResult, type Target } from './results.js';
import { startEngine, startPeer, type Running } from './targets.js';

export interface LabOptions extends PlanOptions {
  serverCpu: number | null;
  clientCpu: number | null;
  memoryShare: number;
  budgetS: number;
  load: LoadFn;
  /** p99 bound of the ramp (ms): a step over it breaks the ramp. */
  sloP99Ms: number;
  /** Error fraction that breaks the ramp. */
  sloErrors: number;
  progress: (line: string) => void;
  ioUring: Machine['ioUring'];
  version: string;
  /** Read the L3 cache probe before every measured window and note contended ones (default on). */
  cacheProbe?: boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function targetOf(spec: TargetSpec, ran?: string): Target {
  const model = spec.kind === 'engine' ? (ENGINE_INFO[spec.name]?.model ?? 'unknown') : (peerByName(spec.name)?.model ?? 'unknown');
  return { kind: spec.kind, name: spec.label ?? spec.name, ran: ran ?? spec.name, model };
}

export function machineInfo(o: Pick<LabOptions, 'serverCpu' | 'clientCpu' | 'ioUring' | 'version'>): Machine {
  const cpus = os.cpus();
  return {
    kernel: `${os.type()} ${os.release()}`,
    arch: os.arch(),
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memBytes: os.totalmem(),
    node: process.version,
    iolab: o.version,
    ioUring: o.ioUring,
    nofile: getrlimit(),
    serverCpu: o.serverCpu,
    clientCpu: o.clientCpu,
  };
}

/** `files`: the static tree a zero-copy step serves (the static app, or nginx rooted there). */
async function start(spec: TargetSpec, protocol: Protocol, o: LabOptions, work?: string, file?: { files: StaticFiles; sendfile: boolean }): Promise<Running> {
  if (spec.kind === 'peer') {
    const p = peerByName(spec.name);
    if (!p) throw new Error(`unknown peer ${spec.name}`);
    if (file) {
      if (p.name !== 'nginx') throw new Error(`${p.name} has no static-file configuration here (only nginx)`);
      return startPeer(nginxStatic(file.files.dir, file.sendfile), o.serverCpu);
    }
    return startPeer(p, o.serverCpu);
  }
  const app = file ? `static:${file.files.dir}` : undefined;
  return startEngine({ engine: spec.name, protocol, cpu: o.serverCpu, work, app, extra: spec.extra, env: spec.env });
}

/** The params a zero-copy step's results carry (report/query.ts isStatic, zeroCopyOf; claims.ts C9). */
function fileParams(step: Step): Record<string, unknown> {
  return step.file ? { app: 'static', sendfile: step.file.sendfile, fileBytes: step.file.bytes } : {};
}

/** `connections`: the step's count (for idle-active the idle count; its result records idle + busy as connections). */
function emptyResult(step: Step, target: Target, connections: number, status: ScenarioResult['status'], reason?: string): ScenarioResult {
  const ia = step.scenario === 'idle-active' ? { idle: connections, active: step.active ?? 0 } : null;
  return {
    // zero-copy steps are throughput measurements of the static app (see results.ts ScenarioName).
    scenario: step.scenario === 'zero-copy' ? 'throughput' : step.scenario,
    target,
    protocol: step.protocol,
    params: { connections: ia ? ia.idle + ia.active : connections, ...(ia ?? {}), ...(step.work ? { work: step.work } : {}), ...fileParams(step) },
    status,
    ...(reason ? { reason } : {}),
    samples: [],
    median: null,
    rpsSpread: null,
  };
}

/** Why a window counts as broken, or null. */
function brokenWhy(s: Sample, connections: number, o: LabOptions): string | null {
  const total = s.requests + s.errors;
  if (s.requests === 0) return `no request answered at ${connections} connections${s.errors ? ` (${s.errors} errors: ${fmtKinds(s.errorsByKind)})` : ''}`;
  if (total > 0 && s.errors / total > o.sloErrors) return `${s.errors} errors (${fmtKinds(s.errorsByKind)}) at ${connections} connections`;
  if (s.latencyUs && s.latencyUs.p99 > o.sloP99Ms * 1000) return `p99 ${(s.latencyUs.p99 / 1000).toFixed(0)} ms > SLO ${o.sloP99Ms} ms at ${connections} connections`;
  return null;
}

function fmtKinds(k: Record<string, number>): string {
  return Object.entries(k).filter(([, v]) => v > 0).map(([n, v]) => `${v} ${n}`).join(', ') || 'none';
}

export async function runLab(o: LabOptions): Promise<LabResults> {
  raiseNofile();
  const startedAt = new Date();
  const steps = buildPlan(o);
  const results: ScenarioResult[] = [];
  const notes: string[] = [];
  const guard = new MemoryGuard(o.memoryShare);
  const t0 = Date.now();
  let planned = steps.reduce((a, s) => a + s.estimateS, 0);
  const elapsed = (): number => (Date.now() - t0) / 1000;
  const say = (msg: string): void => o.progress(`[${elapsed().toFixed(0).padStart(3)}s / ~${Math.round(planned)}s] ${msg}`);
  const sizes = steps.flatMap((s) => (s.file ? [s.file.bytes] : []));
  const files = sizes.length ? makeStaticFiles(sizes) : null;

  try {
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i]!;
      const file = step.file ? ` ${sizeName(step.file.bytes)} sendfile ${step.file.sendfile ? 'on' : 'off'}` : '';
      const label = `${step.scenario} ${step.protocol} ${step.target.label ?? step.target.name}${step.work ? ` ${step.work}` : ''}${file}`;
      if (elapsed() > o.budgetS) {
        results.push(emptyResult(step, targetOf(step.target), step.connections[0]!, 'skipped', `time budget of ${o.budgetS}s spent`));
        continue;
      }
      if (step.skip) {
        say(`${label}: skipped (${step.skip})`);
        results.push(...step.connections.map((n) => emptyResult(step, targetOf(step.target), n, 'skipped', step.skip)));
        continue;
      }
      say(label);
      const stepStart = Date.now();
      try {
        if (step.scenario === 'idle') results.push(...(await runIdle(step, o, guard)));
        else if (step.scenario === 'idle-active') results.push(...(await runIdleActive(step, o, guard, say)));
        else results.push(...(await runLoadStep(step, o, guard, say, files)));
      } catch (e) {
        const msg = (e as Error).message;
        const status = /not installed/.test(msg) ? 'skipped' : 'failed';
        results.push(emptyResult(step, targetOf(step.target), step.connections[0]!, status, msg));
        if (status === 'failed') notes.push(`${label}: ${msg}`);
      }
      // Re-estimate the rest from how this step went against its estimate.
      planned += (Date.now() - stepStart) / 1000 - step.estimateS;
    }
  } finally {
    files?.remove();
  }
  results.push(...deriveBreakingPoints(results));
  const cold = coldNote(results, o.mode, o.warmupS);
  if (cold) notes.push(cold);
  const cache = cacheNote(results);
  if (cache) notes.push(cache);
  return {
    schema: RESULTS_SCHEMA,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    mode: o.mode,
    budgetS: o.budgetS,
    machine: machineInfo(o),
    results,
    notes,
  };
}

/** throughput, scaling and blocking-handler: closed-loop windows at each connection count. */
async function runLoadStep(step: Step, o: LabOptions, guard: MemoryGuard, say: (m: string) => void, files: StaticFiles | null): Promise<ScenarioResult[]> {
  const out: ScenarioResult[] = [];
  if (step.file && !files) throw new Error('zero-copy step without its files');
  const file = step.file && files ? { files, sendfile: step.file.sendfile } : undefined;
  const srv = await start(step.target, step.protocol, o, step.work, file);
  const target = targetOf(step.target, srv.target.ran);
  // zero-copy: GET the file; the load generator checks status and Content-Length framing of every
  // reply, so check the bytes themselves once here (a rate of wrong bytes is worthless).
  const url = step.file && files ? `http://127.0.0.1:${srv.port}${files.path(step.file.bytes)}` : srv.url;
  let tripped: string | null = null;
  guard.watch(srv.pid, (t) => (tripped = `stopped by the memory guard: ${t.why}`));
  let died = false;
  void srv.exited.then(() => (died = true));
  try {
    if (step.file && files) {
      const wrong = await checkBody(url, files.content(step.file.bytes));
      if (wrong) throw new Error(`served the wrong bytes: ${wrong}`);
    }
    for (const connections of step.connections) {
      const req = { url, protocol: step.protocol, connections, pipeline: step.pipeline ?? 1, durationS: o.durationS, cpu: o.clientCpu, size: 64 };
      const r = emptyResult(step, target, connections, 'ok');
      r.params.pipeline = req.pipeline;
      r.params.durationS = o.durationS;
      for (const w of warmupRuns(step.target.name, connections, o.mode, o.warmupS)) await o.load({ ...req, durationS: w });
      for (let k = 0; k < o.repeats && !tripped && !died; k++) r.samples.push(await measureWindow(srv, o.load, req, { cacheProbe: o.cacheProbe !== false }));
      r.median = medianSample(r.samples);
      r.rpsSpread = rpsSpread(r.samples);
      const why = tripped ?? (died ? `server exited at ${connections} connections` : r.median ? brokenWhy(r.median, connections, o) : 'no sample');
      if (why) {
        r.status = 'broke';
        r.reason = tripped ? `${why} (${connections} connections, ${gb(guard.peakRss)} peak)` : why;
      }
      out.push(r);
      if (r.median) {
        const m = r.median;
        const gbs = step.file && m.bytesPerSec ? `, ${(m.bytesPerSec / 1e9).toFixed(2)} GB/s` : '';
        say(`  ${connections} conns: ${Math.round(m.rps).toLocaleString('en-US')} req/s${gbs}, p99 ${m.latencyUs ? (m.latencyUs.p99 / 1000).toFixed(2) : '?'} ms` +
          `${m.syscallsPerReq !== null ? `, ${m.syscallsPerReq.toFixed(2)} syscalls/req` : ''}${r.status === 'broke' ? ` — broke: ${r.reason}` : ''}`);
      } else if (r.status === 'broke') say(`  ${connections} conns: broke: ${r.reason}`);
      if (r.status === 'broke') break;
    }
  } finally {
    guard.stop();
    await srv.stop();
  }
  return out;
}

/** idle: hold N idle connections and charge the growth of the server (and the kernel) to them. */
async function runIdle(step: Step, o: LabOptions, guard: MemoryGuard): Promise<ScenarioResult[]> {
  const out: ScenarioResult[] = [];
  for (const n of step.connections) {
    const { hard } = getrlimit();
    if (n + 64 > hard) {
      // One server process holds one fd per connection; past the hard open-file limit it cannot.
      out.push(emptyResult(step, targetOf(step.target), n, 'skipped',
        `one server process may hold at most ${hard} fds here (RLIMIT_NOFILE); npm run bench:hold holds 100,000 over several processes`));
      continue;
    }
    const srv = await start(step.target, step.protocol, o);
    const target = targetOf(step.target, srv.target.ran);
    let tripped: string | null = null;
    guard.watch(srv.pid, (t) => (tripped = `stopped by the memory guard: ${t.why}`));
    try {
      await sleep(300); // let the server settle before the baseline
      const base = sampleTree(srv.pid);
      const epi0 = epollItems(srv.pid);
      const tcp0 = sockstat().tcpMemBytes;
      // iolab engines count their connections; for peers, each connection is one more fd in the tree
      // (the engines' own count is better: a thread engine opens fds per thread too). Taken before the
      // load starts, or early connections would count as the baseline.
      const s0 = await srv.engineStats();
      const base0 = s0 ? servedConnections(s0) : null;
      // Thread- and process-per-connection engines start one isolate per connection (~65-100 ms of CPU
      // each; the threads engine starts 8 at once, ~10 a second here). The hold is an upper bound: it
      // ends as soon as the server is measured holding them all.
      const holdS = Math.max(3, n / 2000 + 2.5) + (BLOCKING_ENGINES.includes(step.target.name) ? n / 4 : 0);
      const endHold = new AbortController();
      const loadDone: Promise<LoadOutcome> = o.load({
        url: srv.url, protocol: step.protocol, connections: n, pipeline: 1, durationS: holdS, cpu: o.clientCpu, mode: 'hold', signal: endHold.signal,
      });
      // Wait until the server holds them all (its fd count grows by one per connection), or the hold ends.
      let finished = false;
      void loadDone.finally(() => (finished = true));
      const holding = async (): Promise<number> => {
        const e = await srv.engineStats();
        // Served, not just accepted: the threads engine accepts a burst at once and queues it while
        // its threads start (~65 ms of CPU each); their memory is what this step is about.
        return e && base0 !== null ? servedConnections(e) - base0 : sampleTree(srv.pid).fds - base.fds;
      };
      let peak = base;
      let held = 0;
      let grewAt = Date.now();
      while (!finished && !tripped) {
        await sleep(100);
        const h = await holding();
        if (h > held) grewAt = Date.now();
        held = h;
        if (held >= n) {
          await sleep(300);
          held = await holding();
          break;
        }
        // No growth for 2 s: the server holds what it can (refusals, a limit); measure that.
        if (Date.now() - grewAt > 2000) break;
      }
      // CPU while idle, over a quiet second once the connections are held: from the baseline it would
      // count accepting them (and the stats requests above), which read as 4% of a core for epoll.
      const quiet0 = sampleTree(srv.pid);
      await sleep(1000);
      peak = sampleTree(srv.pid);
      const epi1 = epollItems(srv.pid);
      const tcp1 = sockstat().tcpMemBytes;
      held = Math.max(0, held);
      const last = held < n * 0.99 ? await srv.engineStats() : null; // why fewer: the server's refusals and limit
      endHold.abort();
      const outcome = await loadDone.catch((e: Error) => ({ connected: 0, errors: 1, error: e.message }) as unknown as LoadOutcome);
      const r = emptyResult(step, target, n, 'ok');
      r.params.holdS = holdS;
      r.idle = {
        connections: n,
        held,
        rssPerConnBytes: held > 0 ? (peak.rssBytes - base.rssBytes) / held : 0,
        // The server socket's slab objects at this kernel's sizes, and the epoll items the server added
        // (probe/proc.ts socketSlabPerConn: why not the caches' system-wide change).
        kernelSlabPerConnBytes: held > 0 ? socketSlabPerConn(Math.max(0, epi1 - epi0) / held) : null,
        // Both ends of each connection are on this machine: half the growth of queued buffers is the
        // server's. System-wide: other sockets opening or closing meanwhile add noise, so never below zero.
        kernelBufferPerConnBytes: held > 0 ? Math.max(0, (tcp1 - tcp0) / held / 2) : null,
        threadsPerConn: held > 0 ? (peak.threads - base.threads) / held : 0,
        // CPU while holding idle connections: ~0 for anything that waits in the kernel; a busy poller spins.
        cpuPercent: peak.time > quiet0.time ? ((peak.cpuUserS + peak.cpuSysS - quiet0.cpuUserS - quiet0.cpuSysS) / ((peak.time - quiet0.time) / 1000)) * 100 : null,
      };
      r.median = {
        rps: 0, requests: 0, errors: outcome.errors ?? 0, errorsByKind: outcome.errorsByKind ?? {}, latencyUs: null, cpuUsPerReq: null,
        ctxSwitchesPerReq: null, syscallsPerReq: null, syscallsByNamePerReq: null, eagainPerReq: null, wakeupsPerReq: null, loopStalls: null,
        rssBytes: peak.rssBytes, vmBytes: peak.vmBytes, threads: peak.threads, processes: peak.pids.length, connections: held,
      };
      r.samples = [r.median];
      if (tripped) {
        r.status = 'broke';
        r.reason = `${tripped} while holding ${held} of ${n} connections`;
      } else if (held < n * 0.99) {
        r.status = 'broke';
        r.reason = `held ${held} of ${n} connections${refusedWhy(last)}`;
      }
      out.push(r);
      o.progress(`  ${n} idle: held ${held}, ${Math.round(r.idle.rssPerConnBytes).toLocaleString('en-US')} B RSS/conn, ${r.idle.threadsPerConn.toFixed(2)} threads/conn${r.status === 'broke' ? ` — ${r.reason}` : ''}`);
    } finally {
      guard.stop();
      await srv.stop();
    }
  }
  return out;
}

/** "; the server refused 336 (its limit: 664 threads, 50% of MemTotal at 17.7 MB per thread)", or "". */
function refusedWhy(s: EngineStats | null): string {
  if (!s || s.connections.refused === 0) return '';
  const pool = (s as { pool?: { limit?: number; limitReason?: string } }).pool;
  const limit = pool?.limit && pool.limitReason ? ` (its limit: ${pool.limit.toLocaleString('en-US')} threads, ${pool.limitReason})` : '';
  return `; the server refused ${s.connections.refused.toLocaleString('en-US')}${limit}`;
}

/**
 * idle-active: one server; a warmup, then for each idle count N (ascending) hold N idle connections
 * open (only those added since the last count are opened) and measure closed-loop windows of the
 * busy connections beside them, as runLoadStep does. The holds run in load processes of their own
 * (LoadRequest.procs) until the step ends, so the measured loop keeps this process to itself.
 */
async function runIdleActive(step: Step, o: LabOptions, guard: MemoryGuard, say: (m: string) => void): Promise<ScenarioResult[]> {
  const out: ScenarioResult[] = [];
  const active = step.active ?? 100;
  const { hard } = getrlimit();
  // One server process holds one fd per connection, idle or busy, plus its own.
  const fits = step.connections.filter((n) => n + active + 64 <= hard);
  for (const n of step.connections) {
    if (!fits.includes(n)) out.push(emptyResult(step, targetOf(step.target), n, 'skipped', `one server process may hold at most ${hard} fds here (RLIMIT_NOFILE)`));
  }
  if (fits.length === 0) return out;
  const srv = await start(step.target, step.protocol, o);
  const target = targetOf(step.target, srv.target.ran);
  let tripped: string | null = null;
  guard.watch(srv.pid, (t) => (tripped = `stopped by the memory guard: ${t.why}`));
  let died = false;
  void srv.exited.then(() => (died = true));
  const endHolds = new AbortController();
  const holds: Promise<unknown>[] = [];
  let holdsEnded = 0;
  const req = { url: srv.url, protocol: step.protocol, connections: active, pipeline: 1, durationS: o.durationS, cpu: o.clientCpu, size: 64 };
  // A hold is ended by endHolds; its duration (the windows still to come, with room) only bounds it if that fails.
  const holdS = (left: number): number => left * (o.durationS * o.repeats + 5) + 10;
  const base = sampleTree(srv.pid);
  // With no busy load running, the server's connections are the idle ones (for a peer, its fd growth).
  const holding = async (): Promise<number> => {
    const e = await srv.engineStats();
    return e ? servedConnections(e) : sampleTree(srv.pid).fds - base.fds;
  };
  try {
    if (o.warmupS > 0) await o.load({ ...req, durationS: o.warmupS });
    let opened = 0;
    let held = 0;
    for (const [i, n] of fits.entries()) {
      const r = emptyResult(step, target, n, 'ok');
      r.params.pipeline = 1;
      r.params.durationS = o.durationS;
      if (n > opened) {
        await sleep(200); // the last window's busy connections finish closing
        const h = o.load({
          url: srv.url, protocol: step.protocol, connections: n - opened, pipeline: 1, durationS: holdS(fits.length - i), cpu: o.clientCpu,
          mode: 'hold', procs: 2, signal: endHolds.signal,
        });
        holds.push(h.catch(() => null).finally(() => holdsEnded++));
        opened = n;
        // Wait until the server holds them all, or stops taking more for 2 s (refusals, a limit).
        const ended = holdsEnded;
        let grewAt = Date.now();
        held = 0;
        while (!tripped && !died && holdsEnded === ended) {
          await sleep(100);
          const now = await holding();
          if (now > held) grewAt = Date.now();
          held = now;
          if (held >= n) {
            await sleep(200);
            held = await holding();
            break;
          }
          if (Date.now() - grewAt > 2000) break;
        }
      }
      r.params.idleHeld = Math.max(0, held);
      // No warmup before later windows: the server is warm, and opening 100 busy connections is a few ms of a window.
      for (let k = 0; k < o.repeats && !tripped && !died; k++) r.samples.push(await measureWindow(srv, o.load, req, { cacheProbe: o.cacheProbe !== false }));
      r.median = medianSample(r.samples);
      r.rpsSpread = rpsSpread(r.samples);
      const total = n + active;
      const why = tripped
        ? `${tripped} (${total} connections, ${gb(guard.peakRss)} peak)`
        : died
          ? `server exited at ${n} idle + ${active} busy connections`
          : held < n * 0.99
            ? `held ${held} of ${n} idle connections`
            : r.median
              ? brokenWhy(r.median, total, o)
              : 'no sample';
      if (why) {
        r.status = 'broke';
        r.reason = why;
      }
      out.push(r);
      const m = r.median;
      say(
        `  ${n} idle + ${active} busy: ` +
          (m
            ? `${Math.round(m.rps).toLocaleString('en-US')} req/s, p99 ${m.latencyUs ? (m.latencyUs.p99 / 1000).toFixed(2) : '?'} ms` +
              `${m.cpuUsPerReq !== null ? `, ${m.cpuUsPerReq.toFixed(2)} µs CPU/req` : ''}${m.syscallsPerReq !== null ? `, ${m.syscallsPerReq.toFixed(2)} syscalls/req` : ''}`
            : 'no sample') +
          (r.status === 'broke' ? ` — broke: ${r.reason}` : ''),
      );
      if (r.status === 'broke') break;
    }
  } finally {
    // End the holds first: a server draining on SIGTERM would wait for idle connections to go.
    endHolds.abort();
    // Bounded: should a load process end its run but not exit (loadgen/run.ts CHILD_V8_FLAGS: a Node bug that
    // once kept some here until the load generator's hard kill), its connections are closed by then, so go on.
    await Promise.race([Promise.all(holds), new Promise((r) => setTimeout(r, 3000).unref())]);
    guard.stop();
    await srv.stop();
  }
  return out;
}

/** breaking-point: from each target's ramp (scaling steps), the largest count that met the SLO and where it broke. */
export function deriveBreakingPoints(results: ScenarioResult[]): ScenarioResult[] {
  const byTarget = new Map<string, ScenarioResult[]>();
  for (const r of results) {
    if (r.scenario !== 'scaling' && !(r.scenario === 'throughput' && r.protocol === 'http')) continue;
    if (r.protocol !== 'http') continue;
    // The static app's zero-copy steps are recorded as throughput but are no point of the hello ramp.
    if (typeof r.params.app === 'string' && r.params.app.startsWith('static')) continue;
    const k = r.target.name;
    byTarget.set(k, [...(byTarget.get(k) ?? []), r]);
  }
  const out: ScenarioResult[] = [];
  for (const [, rs] of byTarget) {
    if (!rs.some((r) => r.scenario === 'scaling')) continue;
    const steps = rs
      .filter((r) => r.status === 'ok' || r.status === 'broke')
      .sort((a, b) => a.params.connections - b.params.connections)
      .map((r) => ({
        connections: r.params.connections,
        rps: r.median?.rps ?? 0,
        p99Us: r.median?.latencyUs?.p99 ?? null,
        errors: r.median?.errors ?? 0,
        rssBytes: r.median?.rssBytes ?? null,
        status: r.status,
        reason: r.reason,
      }));
    const ok = steps.filter((s) => s.status === 'ok');
    const broke = steps.find((s) => s.status === 'broke');
    const first = rs[0]!;
    out.push({
      scenario: 'breaking-point',
      target: first.target,
      protocol: 'http',
      params: { connections: broke?.connections ?? ok.at(-1)?.connections ?? 0 },
      status: broke ? 'broke' : 'ok',
      ...(broke ? { reason: broke.reason } : { reason: `held the whole ramp (up to ${ok.at(-1)?.connections ?? 0} connections)` }),
      samples: [],
      median: null,
      rpsSpread: null,
      breaking: {
        maxOk: ok.length ? Math.max(...ok.map((s) => s.connections)) : null,
        brokeAt: broke?.connections ?? null,
        why: broke?.reason ?? null,
        steps: steps.map(({ reason: _r, ...s }) => s),
      },
    });
  }
  return out;
}

/**
 * Windows that began while another tenant of the host held the L3 cache: a probe reading more than
 * twice the run's best (cacheprobe.ts). A thread- or process-per-connection server's CPU per request
 * tripled in such windows on the test machine (PERFORMANCE.md, "Steady state"), an event loop's moved
 * ~10%, so the note names the results they fell in. null when every window was quiet or none was probed.
 */
export function cacheNote(results: ScenarioResult[]): string | null {
  const probed = results.flatMap((r) => r.samples.map((s) => ({ r, ns: s.cacheNs ?? null }))).filter((x): x is { r: ScenarioResult; ns: number } => x.ns !== null);
  if (probed.length === 0) return null;
  const hot = contended(probed.map((x) => x.ns));
  const hit = probed.filter((_, i) => hot[i]);
  if (hit.length === 0) return null;
  const best = Math.min(...probed.map((x) => x.ns));
  const worst = Math.max(...hit.map((x) => x.ns));
  const where = new Map<ScenarioResult, number>();
  for (const { r } of hit) where.set(r, (where.get(r) ?? 0) + 1);
  const names = [...where].map(([r, n]) => `${r.scenario} ${r.protocol} ${r.target.name} @${r.params.connections}${r.samples.length > 1 ? ` (${n} of ${r.samples.length})` : ''}`);
  const list = names.length > 8 ? `${names.slice(0, 8).join(', ')} and ${names.length - 8} more` : names.join(', ');
  return `${hit.length} of ${probed.length} windows began with the L3 cache contended: a probe read up to ${worst.toFixed(0)} ns a load against ` +
    `this run's best ${best.toFixed(0)} ns (another tenant of this host was using the cache). Thread- and process-per-connection ` +
    `engines slow most in such windows (their CPU per request tripled on a shared VM); results with such windows: ${list}. ` +
    '--json has each window\'s reading (cacheNs); a quieter moment, or --repeats, gives steadier figures.';
}

/**
 * The quick tour cannot warm the blocking engines (plan.ts warmupRuns): say so beside their figures,
 * or null when none of their load steps ran (or --full warmed them).
 */
export function coldNote(results: ScenarioResult[], mode: string, warmupS: number): string | null {
  if (mode === 'full') return null;
  const cold = [...new Set(results
    .filter((r) => r.status === 'ok' && BLOCKING_ENGINES.includes(r.target.ran) && ['throughput', 'scaling', 'blocking-handler'].includes(r.scenario))
    .map((r) => r.target.ran))];
  if (cold.length === 0) return null;
  return `${cold.join(' and ')} measured cold (${warmupS} s of warm-up): each of their connections is a V8 isolate that compiles its own ` +
    'code (~20 s of this core for 100 of them, src/engines/tiering.ts). --full warms them 0.4 s per connection; `npm run bench:engines` measures them warm.';
}
