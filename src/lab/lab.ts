/**
 * The lab: runs the plan one step at a time (one server at a time, so servers never compete), with
 * the server pinned to one CPU and the load generator to the other, the memory guard watching, and
 * every failure recorded as a result ("broke at N connections: reason") rather than a crash.
 */
import os from 'node:os';
import { ENGINE_INFO } from '../engines/index.js';
import { getrlimit, raiseNofile } from '../sys/index.js';
import { sampleTree, socketSlabBytes, sockstat } from '../probe/index.js';
import { MemoryGuard, gb } from './guard.js';
import { measureWindow, medianSample, rpsSpread, type LoadFn, type LoadOutcome } from './measure.js';
import { checkBody, makeStaticFiles, sizeName, type StaticFiles } from './files.js';
import { nginxStatic, peerByName } from './peers.js';
import { BLOCKING_ENGINES, buildPlan, type PlanOptions, type Step, type TargetSpec } from './plan.js';
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

function emptyResult(step: Step, target: Target, connections: number, status: ScenarioResult['status'], reason?: string): ScenarioResult {
  return {
    // zero-copy steps are throughput measurements of the static app (see results.ts ScenarioName).
    scenario: step.scenario === 'zero-copy' ? 'throughput' : step.scenario,
    target,
    protocol: step.protocol,
    params: { connections, ...(step.work ? { work: step.work } : {}), ...fileParams(step) },
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
      say(label);
      const stepStart = Date.now();
      try {
        if (step.scenario === 'idle') results.push(...(await runIdle(step, o, guard)));
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
      if (o.warmupS > 0) await o.load({ ...req, durationS: o.warmupS });
      for (let k = 0; k < o.repeats && !tripped && !died; k++) r.samples.push(await measureWindow(srv, o.load, req));
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
      const slab0 = socketSlabBytes();
      const tcp0 = sockstat().tcpMemBytes;
      // iolab engines count their connections; for peers, each connection is one more fd in the tree
      // (the engines' own count is better: a thread engine opens fds per thread too). Taken before the
      // load starts, or early connections would count as the baseline.
      const base0 = (await srv.engineStats())?.connections.current ?? null;
      // Thread- and process-per-connection engines start one isolate per connection (~65-100 ms of CPU each).
      const holdS = Math.max(3, n / 2000 + 2.5) + (BLOCKING_ENGINES.includes(step.target.name) ? n / 12 : 0);
      const loadDone: Promise<LoadOutcome> = o.load({ url: srv.url, protocol: step.protocol, connections: n, pipeline: 1, durationS: holdS, cpu: o.clientCpu, mode: 'hold' });
      // Wait until the server holds them all (its fd count grows by one per connection), or the hold ends.
      let finished = false;
      void loadDone.finally(() => (finished = true));
      const holding = async (): Promise<number> => {
        const e = await srv.engineStats();
        return e && base0 !== null ? e.connections.current - base0 : sampleTree(srv.pid).fds - base.fds;
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
      peak = sampleTree(srv.pid);
      const slab1 = socketSlabBytes();
      const tcp1 = sockstat().tcpMemBytes;
      held = Math.max(0, held);
      const outcome = await loadDone.catch((e: Error) => ({ connected: 0, errors: 1, error: e.message }) as unknown as LoadOutcome);
      const r = emptyResult(step, target, n, 'ok');
      r.params.holdS = holdS;
      r.idle = {
        connections: n,
        held,
        rssPerConnBytes: held > 0 ? (peak.rssBytes - base.rssBytes) / held : 0,
        // Both ends of each connection are on this machine: half the kernel's growth is the server's socket.
        // System-wide figures: other sockets opening or closing meanwhile add noise, so never below zero.
        kernelSlabPerConnBytes: slab1 > 0 && held > 0 ? Math.max(0, (slab1 - slab0) / held / 2) : null,
        kernelBufferPerConnBytes: held > 0 ? Math.max(0, (tcp1 - tcp0) / held / 2) : null,
        threadsPerConn: held > 0 ? (peak.threads - base.threads) / held : 0,
        // CPU while holding idle connections: ~0 for anything that waits in the kernel; a busy poller spins.
        cpuPercent: peak.time > base.time ? ((peak.cpuUserS + peak.cpuSysS - base.cpuUserS - base.cpuSysS) / ((peak.time - base.time) / 1000)) * 100 : null,
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
        r.reason = `held ${held} of ${n} connections`;
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
