/** The idle-active scenario: its place in the plan, and a real run of it (idle connections held beside busy ones). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildPlan, defaultPlanOptions, IDLE_ACTIVE, SELECT_MAX_IDLE } from '../../src/lab/plan.js';
import { runLab } from '../../src/lab/lab.js';
import { labRun } from '../helpers/lab.js';
import { FD_SETSIZE } from '../../src/sys/constants.js';
import { judgeClaims } from '../../src/report/claims.js';
import { idleActiveOf } from '../../src/report/query.js';

const ALL_ENGINES = ['select', 'poll', 'epoll', 'io_uring', 'threads', 'prefork', 'busypoll', 'aio', 'node'];
const ALL_PEERS = ['nginx', 'redis-server', 'apache2-prefork', 'apache2-worker', 'apache2-event'];

/** "poll 0,1000 +100" for each idle-active step of the plan ("select skip 1000" for one it skips). */
function steps(mode: 'quick' | 'full', engines = ALL_ENGINES): string[] {
  return buildPlan({ ...defaultPlanOptions(mode), engines, peers: ALL_PEERS })
    .filter((s) => s.scenario === 'idle-active')
    .map((s) => `${s.target.name}${s.skip ? ' skip' : ''} ${s.connections.join(',')} +${s.active}`);
}

describe('idle-active scenario', () => {
  it('quick: poll and epoll at 0 and 10,000 idle beside 100 busy; select skipped with the reason', () => {
    assert.deepEqual(steps('quick'), ['select skip 10000 +100', 'poll 0,10000 +100', 'epoll 0,10000 +100']);
    const plan = buildPlan({ ...defaultPlanOptions('quick'), engines: ALL_ENGINES, peers: ALL_PEERS });
    const sel = plan.find((s) => s.scenario === 'idle-active' && s.target.name === 'select')!;
    assert.match(sel.skip!, /FD_SETSIZE 1024/);
    assert.equal(sel.estimateS, 0, 'a skipped step costs nothing');
    for (const s of plan.filter((x) => x.scenario === 'idle-active' && !x.skip)) assert.ok(s.estimateS > 0 && s.protocol === 'http');
  });

  it('full: select up to the most idle that fit below FD_SETSIZE; poll, epoll and io_uring to 10,000', () => {
    assert.deepEqual(steps('full'), [`select 0,${SELECT_MAX_IDLE} +100`, 'poll 0,1000,10000 +100', 'epoll 0,1000,10000 +100', 'io_uring 0,1000,10000 +100']);
    // select's most idle, the busy connections and ~64 of the server's own fds stay below FD_SETSIZE, and span >= 8x the fds.
    assert.ok(SELECT_MAX_IDLE + IDLE_ACTIVE.active + 64 <= FD_SETSIZE);
    assert.ok((SELECT_MAX_IDLE + IDLE_ACTIVE.active) / IDLE_ACTIVE.active >= 8);
  });

  it('only on the engines it is about, and only when asked for', () => {
    assert.deepEqual(steps('full', ['threads', 'node', 'busypoll']), []);
    assert.deepEqual(steps('quick', ['epoll']), ['epoll 0,10000 +100']);
    const without = buildPlan({ ...defaultPlanOptions('quick'), scenarios: ['throughput', 'scaling'], engines: ALL_ENGINES, peers: [] });
    assert.equal(without.some((s) => s.scenario === 'idle-active'), false);
  });

  it('a short real run: poll and epoll at 0 and 200 idle; results carry the counts and CPU per request', { timeout: 90_000 }, async () => {
    const lines: string[] = [];
    const r = await runLab(labRun({
      engines: ['poll', 'epoll'],
      scenarios: ['idle-active'],
      idleActive: { idle: [0, 200], active: 20 },
      durationS: 1,
      warmupS: 0.2,
      repeats: 1,
      progress: (l) => lines.push(l),
    }));
    const log = lines.join('\n');
    assert.equal(r.results.length, 4, log);
    for (const s of r.results) {
      assert.equal(s.scenario, 'idle-active');
      assert.equal(s.status, 'ok', `${s.target.name} ${s.params.idle}: ${s.reason ?? ''}\n${log}`);
      assert.equal(s.params.active, 20);
      assert.equal(s.params.connections, (s.params.idle as number) + 20);
      assert.ok((s.params.idleHeld as number) >= (s.params.idle as number) * 0.99, `held ${String(s.params.idleHeld)} of ${String(s.params.idle)}`);
      const m = s.median!;
      assert.ok(m.rps > 0 && m.errors === 0, `rps ${m.rps}, errors ${m.errors}`);
      // /proc counts CPU in 10 ms ticks: a figure, though a quiet window may round it to 0.
      assert.ok(m.cpuUsPerReq != null && Number.isFinite(m.cpuUsPerReq) && m.cpuUsPerReq >= 0, `CPU per request measured (${m.cpuUsPerReq}, ${m.requests} requests)`);
      assert.ok(m.syscallsPerReq != null && m.syscallsPerReq > 0, 'syscalls per request counted');
    }
    for (const name of ['poll', 'epoll']) assert.deepEqual(idleActiveOf(r, name).map((p) => p.idle), [0, 200], name);
    assert.match(log, /200 idle \+ 20 busy: [\d,]+ req\/s/);
    // C3 is judged on them (20 -> 220 watched fds: an 11x span), whatever the verdict on this machine.
    const c3 = judgeClaims(r).find((c) => c.id === 'C3')!;
    assert.ok(c3.evidence.some((e) => /^poll, 0 -> 200 idle beside 20 busy \(11x the fds\): CPU per request/.test(e)), c3.evidence.join('\n'));
    assert.notEqual(c3.verdict, 'not measured');
  });
});
