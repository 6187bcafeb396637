/** The lab's machinery: the memory guard, reaping, medians, breaking points, the plan's budget. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnChild, stopChild } from '../../src/lab/children.js';
import { MemoryGuard } from '../../src/lab/guard.js';
import { medianSample } from '../../src/lab/measure.js';
import { cacheNote, coldNote, deriveBreakingPoints } from '../../src/lab/lab.js';
import { QUICK_BUDGET_S, buildPlan, defaultPlanOptions, warmupRuns } from '../../src/lab/plan.js';
import { processTree } from '../../src/probe/index.js';
import type { Sample, ScenarioResult } from '../../src/lab/results.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Running, not a zombie (a killed orphan stays a zombie until init reaps it: it holds no memory or fds). */
const alive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
};

function sample(rps: number, p99: number): Sample {
  return {
    rps, requests: rps, errors: 0, errorsByKind: {}, latencyUs: { p50: p99 / 2, p90: p99 * 0.8, p99, p999: p99 * 2, max: p99 * 3 },
    cpuUsPerReq: 10, ctxSwitchesPerReq: 0.1, syscallsPerReq: 2, syscallsByNamePerReq: { read: 1, write: 1 }, eagainPerReq: 0,
    wakeupsPerReq: 0.1, loopStalls: 0, rssBytes: 1e6, vmBytes: 1e7, threads: 1, processes: 1, connections: 100,
  };
}

describe('lab', () => {
  it('the memory guard kills a server tree that passes its share of RAM, and says why', async () => {
    // A share of 0.0005 of 24 GB is ~12 MB: any Node process passes it at once.
    const guard = new MemoryGuard(0.0005);
    const c = spawnChild(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    const trip = await new Promise<{ why: string }>((resolve) => guard.watch(c.pid!, resolve));
    assert.match(trip.why, /server RSS .* passed the guard/);
    await sleep(100);
    assert.equal(alive(c.pid!), false, 'the server was killed');
  });

  it('stopping a child reaps its whole tree', async () => {
    const c = spawnChild('sh', ['-c', 'sleep 30 & sleep 30 & wait'], { stdio: 'ignore' });
    await sleep(200);
    const tree = processTree(c.pid!);
    assert.ok(tree.length >= 3, `sh and two sleeps: ${tree.join(',')}`);
    await stopChild(c, 'SIGTERM', 500);
    await sleep(100);
    for (const p of tree) assert.equal(alive(p), false, `pid ${p} survived`);
  });

  it('medians are taken field by field', () => {
    const m = medianSample([sample(100, 1000), sample(300, 3000), sample(200, 9000)])!;
    assert.equal(m.rps, 200);
    assert.equal(m.latencyUs!.p99, 3000);
  });

  it('breaking points come from the ramp: the largest count within the SLO and the one that broke', () => {
    const step = (connections: number, status: ScenarioResult['status'], reason?: string): ScenarioResult => ({
      scenario: connections === 100 ? 'throughput' : 'scaling', target: { kind: 'engine', name: 'threads', ran: 'threads', model: 'blocking' },
      protocol: 'http', params: { connections }, status, ...(reason ? { reason } : {}), samples: [], median: sample(1000, 100), rpsSpread: null,
    });
    const [bp] = deriveBreakingPoints([step(10, 'ok'), step(100, 'ok'), step(1000, 'broke', 'stopped by the memory guard')]);
    assert.equal(bp!.scenario, 'breaking-point');
    assert.equal(bp!.breaking!.maxOk, 100);
    assert.equal(bp!.breaking!.brokeAt, 1000);
    assert.match(bp!.breaking!.why!, /memory guard/);
  });

  it('the quick plan fits its budget estimate', () => {
    const steps = buildPlan({ ...defaultPlanOptions('quick'), engines: ['select', 'poll', 'epoll', 'io_uring', 'threads', 'prefork', 'busypoll', 'aio', 'node'], peers: ['nginx', 'redis-server', 'apache2-prefork', 'apache2-worker', 'apache2-event'] });
    const est = steps.reduce((a, s) => a + s.estimateS, 0);
    // QUICK_BUDGET_S is the quick tour's --budget default (src/cli/bench.ts); steps past it are skipped.
    assert.ok(est < QUICK_BUDGET_S, `quick plan estimated at ${est.toFixed(0)} s`);
    assert.ok(steps.some((s) => s.scenario === 'blocking-handler' && s.work === 'blocking:1ms'));
  });

  it('throughput steps size the blocking engines for their load: prefork N processes, threads N started up front', () => {
    const steps = buildPlan({ ...defaultPlanOptions('quick'), engines: ['epoll', 'threads', 'prefork'], peers: [] });
    const tp = (engine: string, protocol: string) => steps.find((s) => s.scenario === 'throughput' && s.target.name === engine && s.protocol === protocol);
    assert.deepEqual(tp('threads', 'http')!.target.extra, ['--spare-threads', '100']);
    assert.deepEqual(tp('prefork', 'http')!.target.extra, ['--procs', '100']);
    assert.deepEqual(tp('threads', 'resp')!.target.extra, ['--spare-threads', '50']);
    assert.equal(tp('epoll', 'http')!.target.extra, undefined);
    // The idle scenario lets threads come with their connections (their cost per connection is the point).
    const idle = steps.find((s) => s.scenario === 'idle' && s.target.name === 'threads');
    assert.ok(!(idle!.target.extra ?? []).includes('--spare-threads'));
  });

  it('the quick tour says its blocking rows are cold; --full and runs without them say nothing', () => {
    const res = (ran: string, scenario: string, status = 'ok') => ({ scenario, status, target: { kind: 'engine', name: ran, ran, model: 'x' } }) as unknown as ScenarioResult;
    const rs = [res('epoll', 'throughput'), res('threads', 'throughput'), res('prefork', 'scaling'), res('threads', 'idle')];
    assert.match(coldNote(rs, 'quick', 0.5)!, /^threads and prefork measured cold \(0\.5 s of warm-up\)/);
    assert.equal(coldNote(rs, 'full', 2), null);
    assert.equal(coldNote([res('epoll', 'throughput'), res('threads', 'idle'), res('prefork', 'throughput', 'failed')], 'quick', 0.5), null);
  });

  it('notes the windows that began with the L3 cache contended, relative to the run\'s best reading, and names their results', () => {
    const res = (ran: string, conns: number, ns: (number | null)[]) =>
      ({ scenario: 'throughput', protocol: 'http', status: 'ok', params: { connections: conns }, target: { kind: 'engine', name: ran, ran, model: 'x' },
        samples: ns.map((x) => ({ ...sample(1000, 500), cacheNs: x })) }) as unknown as ScenarioResult;
    const quiet = [res('epoll', 100, [17, 19, 18]), res('threads', 100, [18, 30, null])];
    assert.equal(cacheNote(quiet), null, 'every reading within 2x of the best');
    assert.equal(cacheNote([res('epoll', 100, [null])]), null, 'nothing probed');
    const note = cacheNote([res('epoll', 100, [17, 19, 18]), res('threads', 100, [150, 18, 90]), res('prefork', 16, [40])])!;
    assert.match(note, /^3 of 7 windows began with the L3 cache contended: a probe read up to 150 ns a load against this run's best 17 ns/);
    assert.match(note, /throughput http threads @100 \(2 of 3\), throughput http prefork @16[.;]/);
    assert.doesNotMatch(note, /epoll @100/);
    // The same shape on a machine whose best is 3x slower: the same verdicts.
    assert.match(cacheNote([res('epoll', 100, [51, 57, 54]), res('threads', 100, [450, 54, 270])])!, /^2 of 6 windows/);
    // Samples from older results have no cacheNs.
    const old = { ...res('epoll', 100, []), samples: [sample(1000, 500)] } as ScenarioResult;
    assert.equal(cacheNote([old]), null);
  });

  it('--full warms a blocking engine 0.4 s per connection (at most 120 connections\' worth) in two runs, and plans for it; event loops and the quick tour keep the usual warm-up', () => {
    const r = (xs: number[]): number[] => xs.map((x) => +x.toFixed(6));
    assert.deepEqual(r(warmupRuns('threads', 100, 'full', 2)), [28, 12]);
    assert.deepEqual(r(warmupRuns('prefork', 10, 'full', 2)), [2.8, 1.2]);
    assert.deepEqual(r(warmupRuns('prefork', 100, 'full', 2)), [28, 12]);
    assert.deepEqual(r(warmupRuns('threads', 10_000, 'full', 2)), [33.6, 14.4]);
    assert.deepEqual(r(warmupRuns('prefork', 10_000, 'full', 2)), [33.6, 14.4]);
    assert.deepEqual(warmupRuns('epoll', 100, 'full', 2), [2]);
    assert.deepEqual(warmupRuns('threads', 100, 'quick', 0.5), [0.5]);
    assert.deepEqual(warmupRuns('threads', 100, 'quick', 0), []);
    const full = buildPlan({ ...defaultPlanOptions('full'), engines: ['epoll', 'threads'], peers: [] });
    const est = (engine: string) => full.find((s) => s.scenario === 'throughput' && s.target.name === engine && s.protocol === 'http')!.estimateS;
    // threads also starts 100 threads (100 / 15 s): the warm-up is the rest of the difference.
    assert.ok(Math.abs(est('threads') - est('epoll') - 100 / 15 - (40 - 2)) < 1e-9, `${est('threads')} vs ${est('epoll')}`);
  });
});
