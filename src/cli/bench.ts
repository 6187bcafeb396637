/**
 * `iolab bench`: run every engine (and every installed peer) through the scenarios, then print and
 * write the report that puts each claim of the article beside the number measured here.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import os from 'node:os';
import { ENGINES } from '../engines/index.js';
import { runLab } from '../lab/lab.js';
import { loadgen } from '../lab/load.js';
import { PEERS } from '../lab/peers.js';
import { QUICK_BUDGET_S, defaultPlanOptions } from '../lab/plan.js';
import type { Machine, ScenarioName } from '../lab/results.js';
import { judgeClaims } from '../report/claims.js';
import { writeReports } from '../report/index.js';
import { renderTerminal } from '../report/terminal.js';
import { UsageError, parseCpus } from './serve.js';
import { probeIoUring } from '../sys/io_uring.js';
import { traceEngines } from '../trace/index.js';

export interface BenchFlags {
  full?: boolean;
  quick?: boolean;
  engines?: string;
  peers?: string;
  scenarios?: string;
  out?: string;
  serverCpu?: string;
  clientCpu?: string;
  memoryShare: string;
  budget?: string;
  duration?: string;
  repeats?: string;
  /** commander's --no-cache-probe: false when given. */
  cacheProbe?: boolean;
  json?: boolean;
}

const SCENARIOS: ScenarioName[] = ['throughput', 'scaling', 'idle', 'idle-active', 'blocking-handler', 'breaking-point', 'zero-copy'];
/**
 * `trace` is not a lab scenario: after the scenarios, `iolab trace` runs each engine once (one connection,
 * 3 requests; about 4 s for all nine here) for the report's traces section. It runs by default, and when
 * --scenarios names it.
 */
const TRACE = 'trace';

function list(v: string | undefined, all: readonly string[], what: string): string[] {
  if (!v || v === 'all') return [...all];
  if (v === 'none') return [];
  const xs = v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const x of xs) if (!all.includes(x)) throw new UsageError(`unknown ${what} ${JSON.stringify(x)}; choose from: ${all.join(', ')}`);
  return xs;
}

/** A number > 0 from a flag (a whole one where `int`), or a usage error naming the flag with an example. */
function positive(v: string, flag: string, example: string, int = false): number {
  const n = Number(v);
  if (!(Number.isFinite(n) && n > 0) || (int && !Number.isInteger(n))) {
    throw new UsageError(`${flag} must be ${int ? 'a whole number' : 'a number'} above 0, e.g. ${flag} ${example}; got ${JSON.stringify(v)}`);
  }
  return n;
}

function ioUringInfo(): Machine['ioUring'] {
  const p = probeIoUring();
  return p.ok ? { available: true, features: p.features } : { available: false, reason: p.reason };
}

export async function bench(f: BenchFlags, version: string): Promise<void> {
  if (f.full && f.quick) throw new UsageError('choose one of --quick and --full');
  const mode = f.full ? 'full' : 'quick';
  const base = defaultPlanOptions(mode);
  const cpus = os.cpus().length;
  const serverCpu = f.serverCpu !== undefined ? parseCpus(f.serverCpu)[0]! : cpus > 1 ? 0 : null;
  const clientCpu = f.clientCpu !== undefined ? parseCpus(f.clientCpu)[0]! : cpus > 1 ? 1 : null;
  const share = Number(f.memoryShare);
  if (!(share > 0 && share <= 0.9)) throw new UsageError('--memory-share must be a fraction in (0, 0.9], e.g. 0.5');
  const budgetS = f.budget ? positive(f.budget, '--budget', '300') : mode === 'quick' ? QUICK_BUDGET_S : 3600;
  const durationS = f.duration ? positive(f.duration, '--duration', '2') : base.durationS;
  const repeats = f.repeats ? positive(f.repeats, '--repeats', '3', true) : base.repeats;
  // Every argument is checked before anything is written: a usage error leaves no empty results folder.
  const asked = f.scenarios ? list(f.scenarios, [...SCENARIOS, TRACE], 'scenario') : null;
  const engines = list(f.engines, ENGINES, 'engine');
  const peers = list(f.peers, PEERS.map((p) => p.name), 'peer');
  const out = resolve(f.out ?? join('iolab-results', new Date().toISOString().replace(/[:.]/g, '-')));
  mkdirSync(out, { recursive: true });
  const progress = (line: string): void => void process.stderr.write(line + '\n');
  progress(`iolab bench --${mode}: server on CPU ${serverCpu ?? 'any'}, load on CPU ${clientCpu ?? 'any'}, memory guard at ${Math.round(share * 100)}% of RAM; results in ${out}`);

  const results = await runLab({
    ...base,
    engines,
    peers,
    scenarios: asked ? (asked.filter((x) => x !== TRACE) as ScenarioName[]) : base.scenarios,
    durationS,
    repeats,
    serverCpu,
    clientCpu,
    memoryShare: share,
    budgetS,
    load: loadgen,
    sloP99Ms: mode === 'quick' ? 500 : 200,
    sloErrors: 0.01,
    progress,
    ioUring: ioUringInfo(),
    version,
    cacheProbe: f.cacheProbe !== false,
  });
  if ((!asked || asked.includes(TRACE)) && engines.length > 0) {
    progress('trace: one connection per engine, 3 HTTP requests');
    results.traces = await traceEngines(engines, { app: 'hello', requests: 3, connections: 1, cpu: serverCpu }, (l) => progress(`  ${l}`));
  }
  results.claims = judgeClaims(results);
  const files = writeReports(results, out);
  if (f.json) process.stdout.write(JSON.stringify(results, null, 2) + '\n');
  else process.stdout.write(renderTerminal(results) + '\n');
  progress(`\nwrote ${files.json}\n      ${files.md}\n      ${files.html}`);
}
