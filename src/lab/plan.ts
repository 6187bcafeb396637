/**
 * What `iolab bench` runs: the matrix of scenarios x targets, sized by mode. `quick` fits the
 * 3-minute budget of `npm start` on a 2-core machine (one repeat of short windows; the connection
 * ramp stops at 1,000); `full` repeats 3 times with longer windows and ramps to 10k (and 100k idle).
 */
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
}

export const EVENT_LOOP_ENGINES = ['select', 'poll', 'epoll', 'io_uring', 'busypoll', 'aio', 'node'];
export const BLOCKING_ENGINES = ['threads', 'prefork'];

export function defaultPlanOptions(mode: 'quick' | 'full'): Omit<PlanOptions, 'engines' | 'peers'> {
  return mode === 'quick'
    ? { mode, scenarios: ['throughput', 'scaling', 'idle', 'blocking-handler', 'breaking-point'], durationS: 1.5, warmupS: 0.5, repeats: 1 }
    : { mode, scenarios: ['throughput', 'scaling', 'idle', 'blocking-handler', 'breaking-point'], durationS: 5, warmupS: 2, repeats: 3 };
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
    for (const t of [...engines, ...peersHttp]) steps.push({ scenario: 'throughput', target: t, protocol: 'http', connections: [100], estimateS: win });
    const respEngines = engines.filter((t) => !quick || ['epoll', 'io_uring', 'threads', 'node'].includes(t.name));
    for (const t of [...respEngines, ...peersResp]) steps.push({ scenario: 'throughput', target: t, protocol: 'resp', connections: [50], estimateS: win });
    const echoEngines = engines.filter((t) => !quick || ['epoll', 'io_uring', 'threads'].includes(t.name));
    for (const t of echoEngines) steps.push({ scenario: 'throughput', target: t, protocol: 'echo', connections: [100], estimateS: win });
  }
  if (has('scaling') || has('breaking-point')) {
    // The ramp: the same server, step by step, until it breaks. 100 comes from the throughput step.
    // quick: one step past the throughput point (100), for the engines whose scaling the claims are about.
    const ramp = quick ? [1000] : [10, 100, 1000, 10_000];
    const rampEngines = quick ? engines.filter((t) => ['select', 'poll', 'epoll', 'io_uring', 'threads', 'prefork'].includes(t.name)) : engines;
    for (const t of [...rampEngines, ...(quick ? [] : peersHttp)]) {
      const blocking = BLOCKING_ENGINES.includes(t.name);
      // Thread-per-connection in Node costs a V8 isolate per thread (~9 MB, ~20 ms to start): the quick
      // ramp stops at 500 so the tour stays inside its budget; --full ramps it until the guard stops it.
      const conns = quick && blocking ? [500] : ramp;
      steps.push({ scenario: 'scaling', target: t, protocol: 'http', connections: conns, estimateS: conns.length * (o.durationS * o.repeats + 1) + (blocking ? conns.at(-1)! / 50 : 0) });
    }
  }
  if (has('idle')) {
    const n = quick ? [1000] : [1000, 10_000, 100_000];
    const idleTargets = quick ? engines.filter((t) => ['epoll', 'io_uring', 'threads'].includes(t.name)) : engines;
    for (const t of [...idleTargets, ...(quick ? peersHttp.filter((p) => p.name === 'nginx') : peersHttp), ...peersResp]) {
      const conns = quick && BLOCKING_ENGINES.includes(t.name) ? [200] : n;
      steps.push({ scenario: 'idle', target: t, protocol: t.name === 'redis-server' ? 'resp' : 'http', connections: conns, estimateS: conns.length * 4 });
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
