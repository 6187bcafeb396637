/**
 * Verdicts come from the numbers: each claim is fed results that support it, then results that
 * contradict it (one figure pushed the other way), and the verdict must flip; missing data must
 * give "not measured" with what is missing.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { judgeClaims, RULES, THRESHOLDS } from '../../src/report/claims.js';
import type { ClaimVerdict, LabResults } from '../../src/lab/results.js';
import { IDLE_ACTIVE_FIXTURE, buildResults, clone, findAll, idleActiveResult, patch, remove, result } from './fixtures.js';

const KB = 1024;

function verdict(r: LabResults, id: string): ClaimVerdict {
  const v = judgeClaims(r).find((c) => c.id === id);
  assert.ok(v, `claim ${id} judged`);
  return v;
}

/** Threads that hold 10k connections at near epoll's rate, with native-thread memory (12 KB each). */
function threadsThatScale(r: LabResults): void {
  remove(r, (s) => s.target.name === 'threads' && (s.scenario === 'breaking-point' || (s.scenario === 'scaling' && s.params.connections === 10_000)));
  r.results.push(result('scaling', 'threads', 'http', 10_000, { rps: 38_000, p99Us: 300_000, cpuUs: 12, ctx: 0.05, threads: 10_011, rss: 300 * 1024 * KB }));
  for (const s of findAll(r, { scenario: 'idle', name: 'threads' })) {
    s.idle!.rssPerConnBytes = 12 * KB;
  }
  patch(r, { scenario: 'throughput', name: 'threads', protocol: 'http' }, { ctxSwitchesPerReq: 0.03 });
}

describe('claims: the supporting fixture confirms every claim', () => {
  it('C1-C9 are all confirmed, each with evidence that quotes numbers', () => {
    const claims = judgeClaims(buildResults());
    assert.deepEqual(claims.map((c) => c.id), ['C1', 'C2', 'C3', 'C4', 'C5', 'C6', 'C7', 'C8', 'C9']);
    for (const c of claims) {
      assert.equal(c.verdict, 'confirmed', `${c.id}: ${c.evidence.join(' | ')}`);
      assert.ok(c.claim.length > 10 && c.claim.length < 140, `${c.id} claim is a few words`);
      assert.ok(c.evidence.length > 0 && c.evidence.some((e) => /\d/.test(e)), `${c.id} evidence has numbers`);
    }
  });

  it('every rule is written out with its thresholds', () => {
    assert.equal(RULES.length, 9);
    for (const r of RULES) assert.match(r.rule, /confirmed|not measured/);
    assert.match(RULES[0]!.rule, new RegExp(`${THRESHOLDS.c1KeepsUp}x`));
  });

  it('ignores any claims already in the file: verdicts are recomputed from the figures', () => {
    const r = buildResults();
    r.claims = [{ id: 'C4', claim: 'x', verdict: 'refuted', evidence: ['stale'] }];
    assert.equal(verdict(r, 'C4').verdict, 'confirmed');
  });
});

describe('claims flip when the numbers do', () => {
  it('C1: threads that keep up at 10k within the SLO refute it', () => {
    const r = buildResults();
    const before = verdict(r, 'C1');
    assert.equal(before.verdict, 'confirmed');
    assert.ok(before.evidence.some((e) => /^threads 24,000 req\/s vs epoll 46,000 at 1,000 connections \(0\.52x\)$/.test(e)), before.evidence.join('\n'));
    threadsThatScale(r);
    const after = verdict(r, 'C1');
    assert.equal(after.verdict, 'refuted', after.evidence.join('\n'));
    assert.ok(after.evidence.some((e) => e.includes('threads 38,000 req/s vs epoll 41,000 at 10,000 connections (0.93x)')), after.evidence.join('\n'));
  });

  it('C1: in the quick tour, iolab\'s blocking engines\' figures say they were measured cold; a peer\'s do not', () => {
    const r = buildResults();
    r.mode = 'quick';
    const ev = verdict(r, 'C1').evidence;
    assert.ok(ev.some((e) => /^threads 24,000 req\/s vs epoll 46,000 at 1,000 connections \(0\.52x\), measured cold: see Notes$/.test(e)), ev.join('\n'));
    assert.ok(ev.filter((e) => e.startsWith('apache2-')).every((e) => !e.includes('cold')), ev.join('\n'));
    const c8 = verdict(r, 'C8').evidence;
    assert.ok(c8.some((e) => /^threads with blocking:1ms: .*, measured cold: see Notes; epoll reaches/.test(e)), c8.join('\n'));
    r.mode = 'full';
    assert.ok(verdict(r, 'C8').evidence.every((e) => !e.includes('cold')));
  });

  it('C1: without blocking results, or without epoll, it is not measured', () => {
    const r = buildResults();
    remove(r, (s) => s.target.model === 'blocking');
    const v = verdict(r, 'C1');
    assert.equal(v.verdict, 'not measured');
    assert.match(v.evidence.join(' '), /no blocking target/);
    const e = buildResults();
    remove(e, (s) => s.target.name === 'epoll');
    assert.equal(verdict(e, 'C1').verdict, 'not measured');
    assert.match(verdict(e, 'C1').evidence.join(' '), /epoll: not in these results/);
  });

  it('C2: busy polling that costs no more CPU than epoll refutes it', () => {
    const r = buildResults();
    assert.equal(verdict(r, 'C2').verdict, 'confirmed');
    patch(r, { name: 'busypoll', scenario: 'throughput', protocol: 'http' }, { cpuUsPerReq: 9.3, eagainPerReq: 0.2 });
    for (const s of findAll(r, { name: 'busypoll', scenario: 'idle' })) s.idle!.cpuPercent = 1.5;
    const v = verdict(r, 'C2');
    assert.equal(v.verdict, 'refuted', v.evidence.join('\n'));
    assert.ok(v.evidence.some((e) => e.includes('(1.03x)')));
    remove(r, (s) => s.target.name === 'busypoll');
    assert.equal(verdict(r, 'C2').verdict, 'not measured');
  });

  it('C3 on idle+active: poll and select grow with idle connections while epoll stays flat: confirmed, with the numbers', () => {
    const v = verdict(buildResults(), 'C3');
    assert.equal(v.verdict, 'confirmed', v.evidence.join('\n'));
    const pollCpu = IDLE_ACTIVE_FIXTURE.poll!.at(-1)![2];
    assert.ok(
      v.evidence.includes(`poll, 0 -> 10,000 idle beside 100 busy (101x the fds): CPU per request 9 µs -> ${pollCpu} µs (4.44x), syscalls per request 2.2 -> 2.2, 45,000 -> 9,000 req/s`),
      v.evidence.join('\n'),
    );
    assert.ok(v.evidence.some((e) => /^select, 0 -> 850 idle beside 100 busy \(9\.50x the fds\): CPU per request 9\.2 µs -> 14\.5 µs \(1\.58x\)/.test(e)), v.evidence.join('\n'));
    assert.ok(v.evidence.some((e) => /^epoll, 0 -> 10,000 idle .*CPU per request 8\.8 µs -> 9\.6 µs \(1\.09x\)/.test(e)), v.evidence.join('\n'));
    assert.ok(!v.evidence.some((e) => /all-active ramp/.test(e)), 'the ramp is not what decided it');
  });

  it('C3 on idle+active: epoll growing like poll refutes it; poll or epoll in between makes it depend', () => {
    const r = buildResults();
    // The ramp still says "confirmed": only the idle-active figures change below.
    assert.equal(verdict(buildResults({ idleActive: false }), 'C3').verdict, 'confirmed');
    const flat = clone(r);
    patch(flat, { name: 'poll', scenario: 'idle-active', connections: 10_100 }, { cpuUsPerReq: 10.8 });
    const f = verdict(flat, 'C3');
    assert.equal(f.verdict, 'depends', f.evidence.join('\n'));
    assert.ok(f.evidence.some((e) => e.startsWith(`poll's CPU per request grew less than ${THRESHOLDS.c3Growth}x`)), f.evidence.join('\n'));
    const warm = clone(r);
    patch(warm, { name: 'epoll', scenario: 'idle-active', connections: 10_100 }, { cpuUsPerReq: 8.8 * 1.4 });
    const w = verdict(warm, 'C3');
    assert.equal(w.verdict, 'depends', w.evidence.join('\n'));
    assert.ok(w.evidence.some((e) => e.startsWith('epoll\'s CPU per request grew more than')), w.evidence.join('\n'));
    patch(r, { name: 'epoll', scenario: 'idle-active', connections: 10_100 }, { cpuUsPerReq: 30 });
    const v = verdict(r, 'C3');
    assert.equal(v.verdict, 'refuted', v.evidence.join('\n'));
    assert.ok(v.evidence.some((e) => /^epoll, 0 -> 10,000 idle .*8\.8 µs -> 30 µs \(3\.41x\)/.test(e)), v.evidence.join('\n'));
  });

  it('C3 on idle+active: the quick tour\'s shape (poll and epoll at 0 and 1,000 idle, select skipped) is judged, without 10k', () => {
    const r = buildResults();
    remove(r, (s) => s.target.name === 'epoll' && s.scenario !== 'throughput' && s.scenario !== 'idle-active');
    remove(r, (s) => s.scenario === 'idle-active' && (s.params.connections > 1_100 || s.target.name === 'select' || s.target.name === 'io_uring'));
    r.results.push(idleActiveResult('select', 1000, null, { status: 'skipped', reason: 'select takes fds below FD_SETSIZE 1024 only' }));
    const v = verdict(r, 'C3');
    assert.equal(v.verdict, 'confirmed', v.evidence.join('\n'));
    assert.ok(v.evidence.some((e) => e.startsWith('poll, 0 -> 1,000 idle beside 100 busy (11x the fds): CPU per request 9 µs -> 13.8 µs (1.53x)')), v.evidence.join('\n'));
    assert.ok(v.evidence.includes('epoll was not taken to 10,000 connections in this run (judged without it)'), v.evidence.join('\n'));
    // The skipped select step was never tried: it is no evidence that select stops at FD_SETSIZE.
    assert.ok(!v.evidence.some((e) => /select at 1,100 connections: skipped/.test(e)), v.evidence.join('\n'));
    // Idle counts too close together to tell O(n) from O(ready): depends, and says so.
    for (const s of findAll(r, { name: 'poll', scenario: 'idle-active' }).concat(findAll(r, { name: 'epoll', scenario: 'idle-active' }))) {
      if (s.params.connections === 1_100) Object.assign(s.params, { idle: 300, idleHeld: 300, connections: 400 });
    }
    const n = verdict(r, 'C3');
    assert.equal(n.verdict, 'depends', n.evidence.join('\n'));
    assert.ok(n.evidence.some((e) => /span less than 8x/.test(e)), n.evidence.join('\n'));
  });

  it('C3 falls back to the all-active ramp only without idle+active results, and says so', () => {
    const r = buildResults();
    for (const s of findAll(r, { name: 'poll', scenario: 'idle-active' }).concat(findAll(r, { name: 'select', scenario: 'idle-active' }))) {
      Object.assign(s, { status: 'skipped', reason: 'time budget of 150s spent', median: null, samples: [] });
    }
    const v = verdict(r, 'C3');
    assert.equal(v.verdict, 'confirmed', v.evidence.join('\n'));
    assert.match(v.evidence[0]!, /^no idle\+active results for epoll and poll or select \(.*poll skipped: time budget of 150s spent.*\): judged on the all-active ramp/);
    assert.ok(v.evidence.some((e) => e.startsWith('CPU per request from 10 to 10,000 connections: poll 9.8 µs -> 24 µs')), v.evidence.join('\n'));
    const none = buildResults({ idleActive: false });
    assert.match(verdict(none, 'C3').evidence[0]!, /\(the idle-active scenario was not run\): judged on the all-active ramp/);
  });

  it('C3 on the all-active ramp: epoll whose per-request cost grows like poll\'s refutes it; poll staying flat makes it depend', () => {
    const r = buildResults({ idleActive: false });
    assert.equal(verdict(r, 'C3').verdict, 'confirmed');
    const flat = clone(r);
    patch(flat, { name: 'poll', scenario: 'scaling', connections: 10_000 }, { cpuUsPerReq: 10.2 });
    assert.equal(verdict(flat, 'C3').verdict, 'depends', verdict(flat, 'C3').evidence.join('\n'));
    patch(r, { name: 'epoll', scenario: 'scaling', connections: 10_000 }, { cpuUsPerReq: 22 });
    const v = verdict(r, 'C3');
    assert.equal(v.verdict, 'refuted', v.evidence.join('\n'));
    assert.ok(v.evidence.some((e) => /epoll 9\.5 µs -> 22 µs \(2\.32x\)/.test(e)), v.evidence.join('\n'));
  });

  it('C3: select and poll absent: not measured', () => {
    const r = buildResults();
    remove(r, (s) => s.target.name === 'select' || s.target.name === 'poll');
    assert.equal(verdict(r, 'C3').verdict, 'not measured');
  });

  it('C4: io_uring making more syscalls per request than epoll refutes it', () => {
    const r = buildResults();
    const ok = verdict(r, 'C4');
    assert.equal(ok.verdict, 'confirmed');
    assert.ok(ok.evidence.includes('syscalls per request: io_uring 0.35 vs epoll 2.1 at 100 connections (0.17x)'), ok.evidence.join('\n'));
    patch(r, { name: 'io_uring', protocol: 'http' }, { syscallsPerReq: 2.4, rps: 40_000 });
    const v = verdict(r, 'C4');
    assert.equal(v.verdict, 'refuted', v.evidence.join('\n'));
    assert.ok(v.evidence.some((e) => e.includes('io_uring 2.4 vs epoll 2.1') && e.includes('(1.14x)')));
  });

  it('C4: io_uring that fell back to epoll, or is absent, is not measured', () => {
    const r = buildResults();
    for (const s of r.results) if (s.target.name === 'io_uring') s.target = { ...s.target, ran: 'epoll' };
    r.machine.ioUring = { available: false, reason: 'EPERM (kernel.io_uring_disabled=2)' };
    const v = verdict(r, 'C4');
    assert.equal(v.verdict, 'not measured');
    assert.match(v.evidence[0]!, /fell back to epoll: EPERM/);
    const gone = buildResults();
    remove(gone, (s) => s.target.name === 'io_uring');
    assert.equal(verdict(gone, 'C4').verdict, 'not measured');
  });

  it('C5: threads that hold 10k with small resident stacks refute it', () => {
    const r = buildResults();
    assert.equal(verdict(r, 'C5').verdict, 'confirmed');
    threadsThatScale(r);
    const v = verdict(r, 'C5');
    assert.equal(v.verdict, 'refuted', v.evidence.join('\n'));
    assert.ok(v.evidence.some((e) => e.startsWith('threads: 12 KB resident per thread')), v.evidence.join('\n'));
  });

  it('C6: an event loop that breaks at 5x what threads hold refutes it; a lower bound only makes it depend', () => {
    const r = buildResults();
    assert.equal(verdict(r, 'C6').verdict, 'confirmed');
    const lower = clone(r);
    remove(lower, (s) => s.target.name === 'nginx');
    const d = verdict(lower, 'C6');
    assert.equal(d.verdict, 'depends', d.evidence.join('\n'));
    assert.match(d.evidence[0]!, /epoll 19,000 \(did not break: a lower bound\) vs blocking threads 2,000 \(9\.50x or more\)/);
    remove(r, (s) => s.target.name !== 'epoll' && s.target.name !== 'threads');
    const bp = findAll(r, { name: 'epoll', scenario: 'breaking-point' })[0]!;
    bp.breaking = { maxOk: 10_000, brokeAt: 12_000, why: 'p99 1.2 s > SLO 1 s', steps: [] };
    // Idle holds and idle-active steps count as held too: only the ramp decides here.
    remove(r, (s) => s.target.name === 'epoll' && (s.scenario === 'idle' || s.scenario === 'idle-active'));
    const v = verdict(r, 'C6');
    assert.equal(v.verdict, 'refuted', v.evidence.join('\n'));
    assert.match(v.evidence[0]!, /\(5\.00x\)/);
  });

  it('C7: a thread costing only a few times an epoll connection refutes it', () => {
    const r = buildResults();
    const ok = verdict(r, 'C7');
    assert.equal(ok.verdict, 'confirmed');
    assert.ok(ok.evidence.some((e) => e.includes('8.6 MB user RSS + 2.3 KB kernel')), ok.evidence.join('\n'));
    for (const s of findAll(r, { scenario: 'idle', name: 'threads' })) s.idle!.rssPerConnBytes = 12 * KB;
    const v = verdict(r, 'C7');
    assert.equal(v.verdict, 'refuted', v.evidence.join('\n'));
    assert.ok(v.evidence.some((e) => /threads costs 4\.\d\dx epoll's memory/.test(e)), v.evidence.join('\n'));
  });

  it('C7: io_uring far above epoll per idle connection refutes it too; no idle data is not measured', () => {
    const r = buildResults();
    for (const s of findAll(r, { scenario: 'idle', name: 'io_uring' })) s.idle!.rssPerConnBytes = 40 * KB;
    assert.equal(verdict(r, 'C7').verdict, 'refuted');
    remove(r, (s) => s.scenario === 'idle');
    const v = verdict(r, 'C7');
    assert.equal(v.verdict, 'not measured');
    assert.match(v.evidence.join(' '), /idle cost/);
  });

  it('C8: a blocking handler that costs the loop nothing refutes it', () => {
    const r = buildResults();
    const ok = verdict(r, 'C8');
    assert.equal(ok.verdict, 'confirmed');
    assert.match(ok.evidence[0]!, /950 req\/s, p99 54 ms vs async 1 ms 31,000 req\/s, p99 2\.6 ms \(0\.03x throughput, 21x p99\)/);
    patch(r, { name: 'epoll', scenario: 'blocking-handler', work: 'blocking:1ms' }, { rps: 30_000, loopStalls: 0 });
    for (const s of findAll(r, { name: 'epoll', scenario: 'blocking-handler', work: 'blocking:1ms' })) s.median!.latencyUs!.p99 = 2_700;
    const v = verdict(r, 'C8');
    assert.equal(v.verdict, 'refuted', v.evidence.join('\n'));
    remove(r, (s) => s.scenario === 'blocking-handler');
    assert.equal(verdict(r, 'C8').verdict, 'not measured');
  });

  it('C9: without the sendfile vs copy comparison it is not measured, and says what would measure it', () => {
    const r = buildResults({ static: false });
    const v = verdict(r, 'C9');
    assert.equal(v.verdict, 'not measured');
    assert.match(v.evidence.at(-1)!, /sendfile and with read\/write copies/);
    assert.ok(v.evidence.some((e) => e.startsWith('most connections held on this machine: nginx 150,000')));
    // epoll held 4,000 and broke at 5,000 (and nothing larger passed): C10K not reached by epoll here.
    const broke = buildResults();
    remove(broke, (s) => s.target.name === 'epoll' && (s.scenario === 'idle' || s.params.connections >= 5_000) && s.scenario !== 'breaking-point');
    findAll(broke, { name: 'epoll', scenario: 'breaking-point' })[0]!.breaking = { maxOk: 4_000, brokeAt: 5_000, why: 'EMFILE', steps: [] };
    const b = verdict(broke, 'C9');
    assert.equal(b.verdict, 'refuted', b.evidence.join('\n'));
    assert.ok(b.evidence.includes('epoll held 4,000, broke at 5,000: EMFILE'), b.evidence.join('\n'));
  });

  it('a break at a count the target also held is a lapse, not its limit', () => {
    const r = buildResults();
    // an idle hold that got 790 of 1,000 while the ramp passed 19,000
    r.results.push(result('idle', 'epoll', 'http', 1_000, null, { status: 'broke', reason: 'held 790 of 1000 connections' }));
    const v = verdict(r, 'C3');
    assert.equal(v.verdict, 'confirmed', v.evidence.join('\n'));
    assert.match(v.evidence[0]!, /^epoll held 19,000, did not break \(the run stopped there\); a lapse at 1,000: held 790 of 1000 connections$/);
  });
});

describe('claims with little or no data', () => {
  it('an empty run: every claim is "not measured", none throws', () => {
    const r = buildResults();
    r.results = [];
    for (const c of judgeClaims(r)) {
      assert.equal(c.verdict, 'not measured', `${c.id}: ${c.evidence.join(' | ')}`);
      assert.ok(c.evidence.length > 0, `${c.id} says what is missing`);
    }
  });

  it('skipped results give their reasons in the evidence', () => {
    const r = buildResults();
    r.results = r.results.map((s) => (s.target.name === 'busypoll' ? { ...s, status: 'skipped' as const, reason: 'budget', median: null, samples: [], idle: undefined } : s));
    const v = verdict(r, 'C2');
    assert.equal(v.verdict, 'not measured');
    assert.match(v.evidence[0]!, /busypoll: nothing measured .*skipped: budget/);
  });
});
