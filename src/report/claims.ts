/**
 * The article's claims (CLAIMS.md, C1-C9) judged from the numbers in one results file.
 *
 * Every verdict is decided by the rule written beside the claim in RULES below, from measured
 * figures only; the evidence quotes those figures. A claim whose figures are missing is
 * "not measured", with what is missing, never a guess. The thresholds are named in THRESHOLDS so
 * that a reader can disagree with a number rather than with code.
 */
import type { ClaimVerdict, LabResults, Sample, Target } from '../lab/results.js';
import { bytes, conns, div, int, num, pct, ratio, us } from './format.js';
import {
  BASELINE, BLOCKING_MODEL, EVENT_LOOP_MODELS, commonProtocol, cpuPercent, fellBack, held, idleActiveOf, idleOf, isMeasured, isStatic,
  label, pairs, resultsOf, target, targets, workOf, zeroCopyOf, type Idle, type IdleActivePoint, type Measured,
} from './query.js';

export type Verdict = ClaimVerdict['verdict'];

export const THRESHOLDS = {
  /** C1: the article's sweet spot for blocking + threads, "< 1000 connections". */
  sweetSpotConns: 1000,
  /** C1/C3/C5/C6/C9: the "10k" of the article (C10K, "die at 10k concurrent connections"). */
  highConns: 10_000,
  /** C1: in its sweet spot, blocking keeps up: >= 0.5x epoll's req/s at the same connection count. */
  c1KeepsUp: 0.5,
  /** C1: at >= 10k connections, below 0.5x epoll's req/s counts as "does not scale". */
  c1Collapses: 0.5,
  /** C1: idle memory per connection >= 100x epoll's counts as "does not scale" (10 MB vs 10 KB is 1000x). */
  c1CostGap: 100,
  /** C1 refuted: a blocking server holds >= 10k connections within the SLO at >= 0.8x epoll's req/s. */
  c1Holds: 0.8,
  /** C2: busy polling wastes CPU when it spends >= 1.5x epoll's CPU per request ... */
  c2CpuWaste: 1.5,
  /** ... or spins >= 50% of a core while its connections are idle ... */
  c2IdleSpin: 50,
  /** ... and sees >= 1 EAGAIN per request (more failed reads than useful ones). */
  c2Eagain: 1,
  /** C2 refuted: CPU per request within 1.1x of epoll's and < 10% of a core when idle. */
  c2NoWaste: 1.1,
  c2IdleQuiet: 10,
  /** C3: select(2) takes fds below FD_SETSIZE only (glibc <sys/select.h>: __FD_SETSIZE 1024). */
  fdSetsize: 1024,
  /** C3: per-request CPU "grows" when it rises >= 1.5x between the fewest and most connections measured ... */
  c3Growth: 1.5,
  /** ... over a span of at least 10x in connections (the all-active ramp: used only without idle-active results). */
  c3Span: 10,
  /**
   * C3 on idle+active (N idle beside 100 busy): the watched fds must span >= 8x. select reaches ~9.5x at most
   * (FD_SETSIZE 1024 less the busy connections and the server's own fds); poll and epoll at 0 vs 1,000 idle span 11x.
   */
  c3IdleSpan: 8,
  /**
   * C3 on idle+active: epoll's CPU per request "stays flat" within 1.25x. epoll_wait returns only ready fds, so idle
   * ones should cost it nothing per request; 25% leaves room for the run-to-run spread of a shared VM and the cache
   * footprint of more sockets, while staying below the 1.5x that counts as growth.
   */
  c3EpollFlat: 1.25,
  /** C4: io_uring batches: < 0.8x epoll's syscalls per request ... */
  c4FewerSyscalls: 0.8,
  /** ... while keeping >= 0.9x epoll's req/s at each of these connection counts (where measured). */
  c4KeepsUp: 0.9,
  c4Counts: [100, 1000, 10_000],
  /** C4 refuted: io_uring makes as many syscalls per request as epoll, or more. */
  c4NoSaving: 1.0,
  /** C5: "dies near 10k": broke at or below 2 x 10k connections. */
  c5Near: 2,
  /** C5: stacks eat the box when resident memory per thread is >= 1 MB (the 8 MB stack is virtual until touched). */
  c5StackRss: 1024 * 1024,
  /** C5: context switches eat the box when threads make >= 2x epoll's context switches per request. */
  c5CtxRatio: 2,
  /** C6: "~100x": confirmed from 50x (within 2x of the article's figure) ... */
  c6Confirm: 50,
  /** ... refuted below 10x when the event loop's figure is a true maximum (it broke). */
  c6Refute: 10,
  /** C7: the article's figures, and how close counts as matching (within 10x: an order of magnitude). */
  c7ThreadBytes: 10 * 1024 * 1024,
  c7EpollBytes: 10 * 1024,
  c7Tolerance: 10,
  /** C7: thread vs epoll per-connection cost: confirmed from 100x, refuted below 10x. */
  c7GapConfirm: 100,
  c7GapRefute: 10,
  /** C7: io_uring "similar to epoll": within 2x; refuted beyond 4x. */
  c7Similar: 2,
  c7Far: 4,
  /** C8: blocking in the loop hurts when req/s falls to <= 0.5x (vs async work or vs threads) or p99 doubles. */
  c8RpsPenalty: 0.5,
  c8P99Penalty: 2,
  /** C8 refuted: blocking costs the loop nothing: >= 0.8x async req/s and p99 <= 1.25x. */
  c8Harmless: 0.8,
  c8P99Harmless: 1.25,
  /** C9: zero-copy matters when sendfile gives >= 1.2x req/s, or <= 1/1.2 CPU per request, vs copying. */
  c9ZeroCopyGain: 1.2,
  c9C10M: 10_000_000,
} as const;

const T = THRESHOLDS;

export interface Judged {
  verdict: Verdict;
  evidence: string[];
}

export interface Rule {
  id: string;
  /** The article's claim, in a few words of our own. */
  claim: string;
  /** The decision rule, in words (printed in report.md beside the verdict). */
  rule: string;
  judge(r: LabResults): Judged;
}

const judged = (verdict: Verdict, evidence: string[]): Judged => ({ verdict, evidence });
const notMeasured = (...evidence: string[]): Judged => judged('not measured', evidence);

/** Why a target has no measured figure: its skip/fail reasons, or that it is absent. */
function missing(r: LabResults, name: string, what = ''): string {
  const rs = resultsOf(r, name);
  if (rs.length === 0) return `${name}: not in these results${what ? ` (${what})` : ''}`;
  const why = [...new Set(rs.filter((s) => s.status !== 'ok').map((s) => `${s.scenario} ${s.status}${s.reason ? `: ${s.reason}` : ''}`))];
  return `${name}: nothing measured${what ? ` for ${what}` : ''}${why.length ? ` (${why.slice(0, 2).join('; ')})` : ''}`;
}

const rps = (s: Sample): string => `${num(s.rps)} req/s`;
const p99 = (s: Sample): number | null => (s.latencyUs && Number.isFinite(s.latencyUs.p99) ? s.latencyUs.p99 : null);

/** "threads 41,200 req/s vs epoll 48,300 at 100 connections (0.85x)" */
function rpsVs(a: string, sa: Sample, b: string, sb: Sample, c: number): string {
  return `${a} ${rps(sa)} vs ${b} ${num(sb.rps)} at ${conns(c)} connections (${ratio(div(sa.rps, sb.rps))})`;
}

/** The pair at `prefer` connections if measured, else the nearest (log scale). */
function nearest<T extends [number, ...unknown[]]>(ps: T[], prefer: number): T | undefined {
  return [...ps].sort((x, y) => Math.abs(Math.log10(x[0] / prefer)) - Math.abs(Math.log10(y[0] / prefer)))[0];
}

function pairsWith(r: LabResults, a: string, b: string): [number, Measured, Measured][] {
  const p = commonProtocol(r, [a, b]);
  return p ? pairs(r, a, b, p) : [];
}

function idleLine(name: string, i: Idle): string {
  const k = i.kernelPerConn == null ? 'kernel not measured' : `${bytes(i.kernelPerConn)} kernel`;
  return `${name} idle, ${conns(i.held)}${i.partial ? ` of ${conns(i.connections)}` : ''} connections held: ${bytes(i.userPerConn)} user RSS + ${k} per connection, threads per connection ${num(i.threadsPerConn)}`;
}

function heldLine(r: LabResults, name: string): string {
  const h = held(r, name);
  const max = h.maxOk == null ? 'held none within the SLO' : `held ${conns(h.maxOk)}`;
  const broke = h.brokeAt == null ? 'did not break (the run stopped there)' : `broke at ${conns(h.brokeAt)}: ${h.why ?? 'no reason recorded'}`;
  const lapse = h.lapses[0] ? `; a lapse at ${conns(h.lapses[0].connections)}: ${h.lapses[0].why ?? 'no reason recorded'}` : '';
  return `${name} ${max}, ${broke}${lapse}`;
}

// ---------------------------------------------------------------------------------------------

/** The quick tour measures iolab's blocking engines cold (lab.ts coldNote): said beside their figures. */
function coldIn(r: LabResults, t: Target): string {
  return r.mode === 'quick' && t.kind === 'engine' && t.model === BLOCKING_MODEL ? ', measured cold: see Notes' : '';
}

function c1(r: LabResults): Judged {
  if (!resultsOf(r, BASELINE).some(isMeasured)) return notMeasured(missing(r, BASELINE, 'the baseline every claim compares against'));
  const blocking = targets(r).filter((t) => t.model === BLOCKING_MODEL);
  if (blocking.length === 0) return notMeasured('no blocking target (threads, prefork, apache2-prefork/worker) in these results');
  const ev: string[] = [];
  const epIdle = idleOf(r, BASELINE);
  const per = blocking.map((t) => {
    const ps = pairsWith(r, t.name, BASELINE);
    const small = ps.filter(([c]) => c <= T.sweetSpotConns).at(-1);
    let smallOk: boolean | null = null;
    if (small) {
      smallOk = small[1].median.rps >= T.c1KeepsUp * small[2].median.rps;
      ev.push(rpsVs(t.name, small[1].median, BASELINE, small[2].median, small[0]) + coldIn(r, t));
    }
    const h = held(r, t.name);
    const broke = h.brokeAt != null && h.brokeAt <= T.highConns;
    if (h.brokeAt != null) ev.push(`${t.name} broke at ${conns(h.brokeAt)} connections: ${h.why ?? 'no reason recorded'}`);
    const large = ps.find(([c]) => c >= T.highConns);
    let collapses = false;
    let holds = false;
    if (large) {
      const x = large[1].median.rps / large[2].median.rps;
      collapses = x < T.c1Collapses;
      holds = x >= T.c1Holds;
      ev.push(rpsVs(t.name, large[1].median, BASELINE, large[2].median, large[0]));
    } else if (h.maxOk != null && h.brokeAt == null) {
      ev.push(`${t.name} held up to ${conns(h.maxOk)} connections; nothing at >= ${conns(T.highConns)} was measured`);
    }
    let costly: boolean | null = null;
    const ti = idleOf(r, t.name);
    if (ti && epIdle) {
      const x = ti.totalPerConn / epIdle.totalPerConn;
      costly = x >= T.c1CostGap;
      ev.push(`idle memory per connection: ${t.name} ${bytes(ti.totalPerConn)} vs epoll ${bytes(epIdle.totalPerConn)} (${ratio(x)})`);
    }
    const largeBad = broke || collapses || costly === true;
    const largeKnown = largeBad || large != null || costly != null;
    return { smallOk, largeBad, largeKnown, holds: holds && costly !== true };
  });
  if (per.every((p) => p.smallOk == null && !p.largeKnown)) {
    return notMeasured(...ev, 'no blocking target measured beside epoll at the same connection counts, at >= 10k connections, or idle');
  }
  if (per.some((p) => p.holds)) return judged('refuted', ev);
  if (per.some((p) => p.smallOk && p.largeBad) && per.every((p) => !p.largeKnown || p.largeBad)) return judged('confirmed', ev);
  return judged('depends', ev);
}

function c2(r: LabResults): Judged {
  const bp = 'busypoll';
  if (!resultsOf(r, bp).some((s) => isMeasured(s) || s.idle)) return notMeasured(missing(r, bp, 'the busy-polling non-blocking engine'));
  const ev: string[] = [];
  const pt = nearest(pairsWith(r, bp, BASELINE), 100);
  let cpuRatio: number | null = null;
  let eagain: number | null = null;
  if (pt) {
    const [c, b, e] = pt;
    cpuRatio = div(b.median.cpuUsPerReq, e.median.cpuUsPerReq);
    if (cpuRatio != null) {
      ev.push(`CPU per request: busypoll ${us(b.median.cpuUsPerReq)} vs epoll ${us(e.median.cpuUsPerReq)} at ${conns(c)} connections (${ratio(cpuRatio)})`);
      ev.push(`under load: busypoll used ${pct(cpuPercent(b.median))} of a core for ${rps(b.median)}; epoll ${pct(cpuPercent(e.median))} for ${rps(e.median)}`);
    }
    eagain = b.median.eagainPerReq;
    if (eagain != null) ev.push(`busypoll ${num(eagain)} EAGAIN per request (epoll ${num(e.median.eagainPerReq)})`);
  } else {
    ev.push('busypoll and epoll were not measured at the same connection count');
  }
  if (eagain == null) {
    const any = resultsOf(r, bp).find((s) => isMeasured(s) && s.median.eagainPerReq != null);
    if (any?.median) {
      eagain = any.median.eagainPerReq;
      ev.push(`busypoll ${num(eagain)} EAGAIN per request at ${conns(any.params.connections)} connections (${any.scenario})`);
    }
  }
  const bi = idleOf(r, bp);
  const ei = idleOf(r, BASELINE);
  const idleCpu = bi?.cpuPercent ?? null;
  if (bi && idleCpu != null) {
    ev.push(`idle, ${conns(bi.held)} connections: busypoll ${pct(idleCpu)} of a core` + (ei?.cpuPercent != null ? ` vs epoll ${pct(ei.cpuPercent)}` : ''));
  }
  if (cpuRatio == null && idleCpu == null && eagain == null) return notMeasured(...ev, 'no CPU per request, EAGAIN count or idle CPU was recorded for busypoll');
  const waste = (cpuRatio != null && cpuRatio >= T.c2CpuWaste) || (idleCpu != null && idleCpu >= T.c2IdleSpin);
  if (waste && eagain != null && eagain >= T.c2Eagain) return judged('confirmed', ev);
  if (cpuRatio != null && cpuRatio <= T.c2NoWaste && (idleCpu == null || idleCpu < T.c2IdleQuiet)) return judged('refuted', ev);
  if (eagain == null) ev.push('EAGAIN per request not recorded');
  return judged('depends', ev);
}

/** select stops at FD_SETSIZE: true (something past it failed), false (it held more), null (nothing past it tried). */
function selectStopsAt(r: LabResults, ev: string[]): boolean | null {
  if (resultsOf(r, 'select').length === 0) return null;
  // idle-active steps the plan skipped because select cannot take their fds were never tried: no evidence.
  const beyond = resultsOf(r, 'select').filter((s) => s.scenario !== 'idle-active' && (s.idle?.connections ?? s.params.connections) > T.fdSetsize);
  const hs = held(r, 'select');
  const okBeyond = hs.maxOk != null && hs.maxOk > T.fdSetsize;
  const notBeyond = beyond.filter((s) => s.status !== 'ok');
  if (okBeyond) {
    ev.push(`select held ${conns(hs.maxOk)} connections, past FD_SETSIZE ${T.fdSetsize}`);
    return false;
  }
  if (notBeyond.length > 0 || (hs.brokeAt != null && hs.brokeAt > T.fdSetsize)) {
    const s = notBeyond[0];
    ev.push(
      s
        ? `select at ${conns(s.idle?.connections ?? s.params.connections)} connections: ${s.status}${s.reason ? ` (${s.reason})` : ''}`
        : `select broke at ${conns(hs.brokeAt)}: ${hs.why ?? 'no reason recorded'}`,
    );
    if (hs.maxOk != null) ev.push(`select held at most ${conns(hs.maxOk)} connections`);
    return true;
  }
  ev.push(`select: nothing past FD_SETSIZE ${T.fdSetsize} was tried${hs.maxOk != null ? ` (held ${conns(hs.maxOk)})` : ''}`);
  return null;
}

/** One engine on the idle-active load: CPU per request from its fewest to its most idle connections measured. */
interface IdleGrowth {
  name: string;
  lo: IdleActivePoint;
  hi: IdleActivePoint;
  /** hi / lo CPU per request. */
  growth: number;
  /** Watched connections (idle held + busy), hi / lo. */
  span: number;
}

function idleGrowth(r: LabResults, name: string): IdleGrowth | null {
  const ps = idleActiveOf(r, name).filter((p) => (p.result.median.cpuUsPerReq ?? 0) > 0);
  const lo = ps[0];
  const hi = ps.at(-1);
  if (!lo || !hi || lo === hi) return null;
  return { name, lo, hi, growth: hi.result.median.cpuUsPerReq! / lo.result.median.cpuUsPerReq!, span: (hi.held + hi.active) / (lo.held + lo.active) };
}

/** "poll, 0 -> 1,000 idle beside 100 busy (11x the fds): CPU per request 7.7 µs -> 12 µs (1.56x), syscalls ..., req/s ..." */
function idleGrowthLine(g: IdleGrowth): string {
  const a = g.lo.result.median;
  const b = g.hi.result.median;
  const sys = a.syscallsPerReq != null && b.syscallsPerReq != null ? `, syscalls per request ${num(a.syscallsPerReq)} -> ${num(b.syscallsPerReq)}` : '';
  return (
    `${g.name}, ${conns(g.lo.held)} -> ${conns(g.hi.held)} idle beside ${conns(g.hi.active)} busy (${ratio(g.span)} the fds): ` +
    `CPU per request ${us(a.cpuUsPerReq)} -> ${us(b.cpuUsPerReq)} (${ratio(g.growth)})${sys}, ${num(a.rps)} -> ${num(b.rps)} req/s`
  );
}

function c3(r: LabResults): Judged {
  if (!resultsOf(r, BASELINE).some(isMeasured)) return notMeasured(missing(r, BASELINE));
  const epoll = idleGrowth(r, BASELINE);
  const scanners = ['poll', 'select'].map((n) => idleGrowth(r, n)).filter((g): g is IdleGrowth => g != null);
  if (epoll && scanners.length > 0) return c3IdleActive(r, epoll, scanners);
  if (resultsOf(r, 'select').length === 0 && resultsOf(r, 'poll').length === 0) return notMeasured('neither select nor poll is in these results');
  // No idle-active pair: say why, then judge on the all-active ramp.
  const ia = r.results.filter((s) => s.scenario === 'idle-active');
  const why = [...new Set(ia.filter((s) => s.status !== 'ok').map((s) => `${s.target.name} ${s.status}${s.reason ? `: ${s.reason}` : ''}`))].slice(0, 3);
  const note =
    `no idle+active results for epoll and poll or select${ia.length ? ` (${why.join('; ') || 'fewer than two idle counts measured'})` : ' (the idle-active scenario was not run)'}: ` +
    'judged on the all-active ramp, where each wait finds about as many ready fds as it watches, so poll\'s scan is shared by them';
  const j = c3Ramp(r);
  return { verdict: j.verdict, evidence: [note, ...j.evidence] };
}

/** C3 on its own load: many idle connections beside a few busy ones. */
function c3IdleActive(r: LabResults, epoll: IdleGrowth, scanners: IdleGrowth[]): Judged {
  const ev: string[] = [heldLine(r, BASELINE)];
  const he = held(r, BASELINE);
  const epollBrokeEarly = he.brokeAt != null && he.brokeAt < T.highConns;
  // Held >= 10k where measured: true, false (broke before), null (not taken that far in this run).
  const epoll10k = he.maxOk != null && he.maxOk >= T.highConns ? true : he.brokeAt != null ? false : null;
  const selectStops = selectStopsAt(r, ev);
  for (const g of [...scanners, epoll]) ev.push(idleGrowthLine(g));
  const iu = idleGrowth(r, 'io_uring');
  if (iu && !fellBack(r, 'io_uring')) ev.push(idleGrowthLine(iu));
  const wide = scanners.filter((g) => g.span >= T.c3IdleSpan);
  if (epoll.span < T.c3IdleSpan || wide.length === 0) {
    ev.push(`the idle counts span less than ${T.c3IdleSpan}x the watched fds for epoll and poll or select: too narrow to tell O(n) from O(ready)`);
    if (epollBrokeEarly) return judged('refuted', ev);
    return judged('depends', ev);
  }
  const scanGrows = wide.every((g) => g.growth >= T.c3Growth);
  const epollFlat = epoll.growth <= T.c3EpollFlat;
  // epoll's cost growing as much as a scanner's (no 1.5x gap between them) is the claim's O(ready) failing.
  const epollLikeScan = epoll.growth >= T.c3Growth && wide.some((g) => g.growth / epoll.growth < T.c3Growth);
  if (epollBrokeEarly || epollLikeScan) return judged('refuted', ev);
  if (scanGrows && epollFlat && selectStops !== false && epoll10k !== false) {
    if (epoll10k == null) ev.push(`epoll was not taken to ${conns(T.highConns)} connections in this run (judged without it)`);
    return judged('confirmed', ev);
  }
  for (const g of wide) {
    if (g.growth < T.c3Growth) ev.push(`${g.name}'s CPU per request grew less than ${T.c3Growth}x: its scan of every watched fd did not show at these counts`);
  }
  if (!epollFlat) ev.push(`epoll's CPU per request grew more than the ${T.c3EpollFlat}x a cost independent of idle connections allows`);
  if (epoll10k === false) ev.push(`epoll did not hold ${conns(T.highConns)} connections`);
  return judged('depends', ev);
}

/** C3 on the all-active ramp (results without idle-active data): the rule before that scenario existed. */
function c3Ramp(r: LabResults): Judged {
  const hasSelect = resultsOf(r, 'select').length > 0;
  const hasPoll = resultsOf(r, 'poll').length > 0;
  if (!hasSelect && !hasPoll) return notMeasured('neither select nor poll is in these results');
  const ev: string[] = [heldLine(r, BASELINE)];
  const he = held(r, BASELINE);
  const epollHolds = he.maxOk != null && he.maxOk >= T.highConns;
  const epollBrokeEarly = he.brokeAt != null && he.brokeAt < T.highConns;
  const selectStops = selectStopsAt(r, ev);

  // poll vs epoll: CPU per request from the fewest to the most connections both measured.
  let pollGrows: boolean | null = null;
  let epollGrowsLikePoll = false;
  if (hasPoll) {
    const ps = pairsWith(r, 'poll', BASELINE).filter(([, a, b]) => a.median.cpuUsPerReq != null && b.median.cpuUsPerReq != null);
    const lo = ps[0];
    const hi = ps.at(-1);
    if (lo && hi && hi[0] / lo[0] >= T.c3Span) {
      const pg = hi[1].median.cpuUsPerReq! / lo[1].median.cpuUsPerReq!;
      const eg = hi[2].median.cpuUsPerReq! / lo[2].median.cpuUsPerReq!;
      ev.push(
        `CPU per request from ${conns(lo[0])} to ${conns(hi[0])} connections: poll ${us(lo[1].median.cpuUsPerReq)} -> ${us(hi[1].median.cpuUsPerReq)} (${ratio(pg)}), ` +
          `epoll ${us(lo[2].median.cpuUsPerReq)} -> ${us(hi[2].median.cpuUsPerReq)} (${ratio(eg)})`,
      );
      pollGrows = pg >= T.c3Growth && pg / eg >= T.c3Growth && eg < T.c3Growth;
      epollGrowsLikePoll = eg >= T.c3Growth && pg / eg < T.c3Growth;
      if (!pollGrows && !epollGrowsLikePoll) ev.push('poll\'s per-request cost did not grow apart from epoll\'s at these counts');
    } else {
      ev.push(`poll and epoll CPU per request not measured over a ${T.c3Span}x span of connections`);
    }
  }
  if (epollBrokeEarly || epollGrowsLikePoll) return judged('refuted', ev);
  if (selectStops == null && pollGrows == null) {
    return epollHolds ? judged('depends', ev) : notMeasured(...ev, `nothing decides it: select past ${T.fdSetsize}, or poll vs epoll over a ${T.c3Span}x span`);
  }
  if (epollHolds && selectStops !== false && pollGrows !== false) return judged('confirmed', ev);
  if (!epollHolds) ev.push(`epoll was not measured holding ${conns(T.highConns)} connections (the claimed sweet spot starts there)`);
  return judged('depends', ev);
}

function c4(r: LabResults): Judged {
  const iu = target(r, 'io_uring');
  if (!iu || !resultsOf(r, 'io_uring').some(isMeasured)) return notMeasured(missing(r, 'io_uring'));
  const ran = fellBack(r, 'io_uring');
  if (ran) {
    const why = r.machine.ioUring.reason ? `: ${r.machine.ioUring.reason}` : '';
    return notMeasured(`io_uring fell back to ${ran}${why}; nothing asynchronous was measured`);
  }
  if (!resultsOf(r, BASELINE).some(isMeasured)) return notMeasured(missing(r, BASELINE));
  const ev: string[] = [];
  const ps = pairsWith(r, 'io_uring', BASELINE);
  const sys = nearest(ps.filter(([, a, b]) => a.median.syscallsPerReq != null && b.median.syscallsPerReq != null), 100);
  let sysRatio: number | null = null;
  if (sys) {
    const [c, a, b] = sys;
    sysRatio = div(a.median.syscallsPerReq, b.median.syscallsPerReq);
    ev.push(`syscalls per request: io_uring ${num(a.median.syscallsPerReq)} vs epoll ${num(b.median.syscallsPerReq)} at ${conns(c)} connections (${ratio(sysRatio)})`);
    const top = (s: Sample): string =>
      Object.entries(s.syscallsByNamePerReq ?? {})
        .sort((x, y) => y[1] - x[1])
        .slice(0, 3)
        .map(([k, v]) => `${k} ${num(v)}`)
        .join(', ');
    if (a.median.syscallsByNamePerReq && b.median.syscallsByNamePerReq) ev.push(`per request, io_uring: ${top(a.median) || '-'}; epoll: ${top(b.median) || '-'}`);
  } else {
    ev.push('syscalls per request not measured for both io_uring and epoll at one connection count');
  }
  const rpsRatios: number[] = [];
  for (const c of T.c4Counts) {
    const pt = ps.find(([k]) => k === c);
    if (!pt) {
      ev.push(`at ${conns(c)} connections: not measured for both`);
      continue;
    }
    const [, a, b] = pt;
    rpsRatios.push(a.median.rps / b.median.rps);
    ev.push(`${rpsVs('io_uring', a.median, 'epoll', b.median, c)}; p99 ${us(p99(a.median))} vs ${us(p99(b.median))}`);
  }
  if (sysRatio == null && rpsRatios.length === 0) return notMeasured(...ev);
  if (sysRatio != null && sysRatio >= T.c4NoSaving) return judged('refuted', ev);
  if (sysRatio != null && sysRatio < T.c4FewerSyscalls && rpsRatios.length > 0 && rpsRatios.every((x) => x >= T.c4KeepsUp)) return judged('confirmed', ev);
  return judged('depends', ev);
}

/** Virtual memory per thread: the slope between two measurements with different thread counts, else VM / threads. */
function vmPerThread(r: LabResults, name: string): { bytes: number; how: string } | null {
  const pts = resultsOf(r, name)
    .filter(isMeasured)
    .map((s) => s.median)
    .filter((m) => m.vmBytes != null && m.threads != null && m.threads > 0)
    .sort((a, b) => a.threads! - b.threads!);
  const lo = pts[0];
  const hi = pts.at(-1);
  if (!lo || !hi) return null;
  if (hi.threads! - lo.threads! >= 10) {
    return { bytes: (hi.vmBytes! - lo.vmBytes!) / (hi.threads! - lo.threads!), how: `growth from ${int(lo.threads)} to ${int(hi.threads)} threads` };
  }
  return { bytes: hi.vmBytes! / hi.threads!, how: `${int(hi.threads)} threads, whole process` };
}

function c5(r: LabResults): Judged {
  const name = target(r, 'threads') ? 'threads' : targets(r).find((t) => t.model === BLOCKING_MODEL)?.name;
  if (!name) return notMeasured('no thread-per-connection target (threads) in these results');
  const ev: string[] = [];
  const ti = idleOf(r, name);
  let rssPerThread: number | null = null;
  if (ti && ti.threadsPerConn > 0) {
    rssPerThread = ti.userPerConn / ti.threadsPerConn;
    const vm = vmPerThread(r, name);
    ev.push(`${name}: ${bytes(rssPerThread)} resident per thread` + (vm ? ` vs ${bytes(vm.bytes)} virtual per thread (${vm.how})` : ' (virtual size not measured)'));
  }
  const ctx = nearest(pairsWith(r, name, BASELINE).filter(([, a, b]) => a.median.ctxSwitchesPerReq != null && b.median.ctxSwitchesPerReq != null), 100);
  let ctxRatio: number | null = null;
  if (ctx) {
    const [c, a, b] = ctx;
    ctxRatio = div(a.median.ctxSwitchesPerReq, b.median.ctxSwitchesPerReq);
    ev.push(`context switches per request: ${name} ${num(a.median.ctxSwitchesPerReq)} vs epoll ${num(b.median.ctxSwitchesPerReq)} at ${conns(c)} connections (${ratio(ctxRatio)})`);
  }
  const h = held(r, name);
  if (h.maxOk != null || h.brokeAt != null) ev.push(heldLine(r, name));
  if (rssPerThread == null && ctxRatio == null && h.maxOk == null && h.brokeAt == null) return notMeasured(missing(r, name));
  const dies = h.brokeAt != null && h.brokeAt <= T.c5Near * T.highConns;
  const stacks = rssPerThread != null && rssPerThread >= T.c5StackRss;
  const switches = ctxRatio != null && ctxRatio >= T.c5CtxRatio;
  const survives = h.maxOk != null && h.maxOk >= T.highConns && !dies;
  if (dies && (stacks || switches)) return judged('confirmed', ev);
  if (survives && !stacks) return judged('refuted', ev);
  if (!dies && !survives) ev.push(`${name} was not taken to ${conns(T.highConns)} connections or its breaking point`);
  return judged('depends', ev);
}

function c6(r: LabResults): Judged {
  const ts = targets(r);
  const best = (pred: (model: string) => boolean): { name: string; n: number } | null => {
    let b: { name: string; n: number } | null = null;
    for (const t of ts) {
      if (!pred(t.model)) continue;
      const h = held(r, t.name);
      if (h.maxOk != null && (!b || h.maxOk > b.n)) b = { name: t.name, n: h.maxOk };
    }
    return b;
  };
  const list = (pred: (model: string) => boolean): string =>
    ts
      .filter((t) => pred(t.model))
      .map((t) => ({ t, h: held(r, t.name) }))
      .filter(({ h }) => h.maxOk != null || h.brokeAt != null)
      .sort((a, b) => (b.h.maxOk ?? 0) - (a.h.maxOk ?? 0))
      .map(({ t, h }) => `${label(t)} ${conns(h.maxOk)}${h.brokeAt == null ? '+' : ` (broke at ${conns(h.brokeAt)})`}`)
      .join(', ');
  const ev = [
    `event loops held: ${list((m) => EVENT_LOOP_MODELS.has(m)) || 'none measured'}`,
    `blocking servers held: ${list((m) => m === BLOCKING_MODEL) || 'none measured'}`,
    '(+: did not break; the run stopped there)',
  ];
  const ev0 = best((m) => EVENT_LOOP_MODELS.has(m));
  const bl0 = best((m) => m === BLOCKING_MODEL);
  if (!ev0 || !bl0) return notMeasured(...ev, `no connection count held by ${!ev0 ? 'an event-loop' : 'a blocking'} server`);
  const x = ev0.n / bl0.n;
  const capped = held(r, ev0.name).brokeAt == null;
  ev.unshift(
    `most held: event loop ${ev0.name} ${conns(ev0.n)}${capped ? ' (did not break: a lower bound)' : ''} vs blocking ${bl0.name} ${conns(bl0.n)} (${ratio(x)}${capped ? ' or more' : ''})`,
  );
  if (x >= T.c6Confirm) return judged('confirmed', ev);
  if (x < T.c6Refute && !capped) return judged('refuted', ev);
  return judged('depends', ev);
}

function c7(r: LabResults): Judged {
  const thrName = idleOf(r, 'threads') ? 'threads' : targets(r).find((t) => t.model === BLOCKING_MODEL && idleOf(r, t.name))?.name;
  const thr = thrName ? idleOf(r, thrName) : undefined;
  const ep = idleOf(r, BASELINE);
  const iu = idleOf(r, 'io_uring');
  if (!thr || !ep) return notMeasured(...[!thr ? missing(r, 'threads', 'idle cost') : '', !ep ? missing(r, BASELINE, 'idle cost') : ''].filter(Boolean));
  const within = (v: number, ref: number): boolean => v >= ref / T.c7Tolerance && v <= ref * T.c7Tolerance;
  const gap = thr.totalPerConn / ep.totalPerConn;
  const ev = [
    `${idleLine(thrName!, thr)} (article: ~10 MB)`,
    `${idleLine(BASELINE, ep)} (article: ~10 KB)`,
    `${thrName} costs ${ratio(gap)} epoll's memory per idle connection`,
  ];
  let iuRatio: number | null = null;
  const iuRan = fellBack(r, 'io_uring');
  if (iu && !iuRan) {
    iuRatio = iu.totalPerConn / ep.totalPerConn;
    ev.push(`${idleLine('io_uring', iu)}: ${ratio(iuRatio)} of epoll (article: similar to epoll)`);
  } else {
    ev.push(iuRan ? `io_uring fell back to ${iuRan}: its idle cost was not measured` : missing(r, 'io_uring', 'idle cost'));
  }
  if (gap < T.c7GapRefute || (iuRatio != null && iuRatio > T.c7Far)) return judged('refuted', ev);
  const matches =
    within(thr.totalPerConn, T.c7ThreadBytes) &&
    within(ep.totalPerConn, T.c7EpollBytes) &&
    gap >= T.c7GapConfirm &&
    (iuRatio == null || (iuRatio <= T.c7Similar && iuRatio >= 1 / T.c7Similar));
  return judged(matches ? 'confirmed' : 'depends', ev);
}

function c8(r: LabResults): Judged {
  const bh = r.results.filter((s) => s.scenario === 'blocking-handler');
  if (bh.length === 0) return notMeasured('no blocking-handler results (a handler that blocks 1 ms, run on an event loop and on threads)');
  const kind = (s: (typeof bh)[number]): 'blocking' | 'async' | undefined => {
    const w = workOf(s);
    return w?.startsWith('blocking') ? 'blocking' : w?.startsWith('async') ? 'async' : undefined;
  };
  const find = (name: string, k: 'blocking' | 'async', c?: number): Measured | undefined =>
    bh.find((s): s is Measured => s.target.name === name && kind(s) === k && isMeasured(s) && (c == null || s.params.connections === c));
  const loops = targets(r).filter((t) => EVENT_LOOP_MODELS.has(t.model) && find(t.name, 'blocking'));
  const primary = loops.find((t) => t.name === BASELINE) ?? loops[0];
  if (!primary) {
    const why = bh.filter((s) => s.status !== 'ok').map((s) => `${s.target.name} ${workOf(s) ?? ''} ${s.status}${s.reason ? `: ${s.reason}` : ''}`);
    return notMeasured('no event-loop engine measured with a blocking handler', ...why.slice(0, 3));
  }
  const b = find(primary.name, 'blocking')!;
  const c = b.params.connections;
  const a = find(primary.name, 'async', c);
  const ev: string[] = [];
  let rpsRatio: number | null = null;
  let p99Ratio: number | null = null;
  if (a) {
    rpsRatio = b.median.rps / a.median.rps;
    p99Ratio = div(p99(b.median), p99(a.median));
    ev.push(
      `${primary.name}, ${c} connections: handler blocking 1 ms ${rps(b.median)}, p99 ${us(p99(b.median))} vs async 1 ms ${rps(a.median)}, p99 ${us(p99(a.median))} ` +
        `(${ratio(rpsRatio)} throughput, ${ratio(p99Ratio)} p99)`,
    );
  } else {
    ev.push(`${primary.name} with ${workOf(b)}: ${rps(b.median)}, p99 ${us(p99(b.median))}; the async variant was not measured`);
  }
  if (b.median.loopStalls != null) ev.push(`${primary.name} loop-stall warnings with ${workOf(b)}: ${conns(b.median.loopStalls)}`);
  let vsThreads: number | null = null;
  const thr = targets(r).find((t) => t.model === BLOCKING_MODEL && find(t.name, 'blocking', c));
  if (thr) {
    const tb = find(thr.name, 'blocking', c)!;
    vsThreads = b.median.rps / tb.median.rps;
    ev.push(`${thr.name} with ${workOf(tb)}: ${rps(tb.median)}, p99 ${us(p99(tb.median))}${coldIn(r, thr)}; ${primary.name} reaches ${ratio(vsThreads)} of that`);
  }
  for (const t of loops) {
    if (t === primary) continue;
    const tb = find(t.name, 'blocking')!;
    const ta = find(t.name, 'async', tb.params.connections);
    ev.push(`${t.name} with ${workOf(tb)}: ${rps(tb.median)}` + (ta ? ` vs async ${num(ta.median.rps)} (${ratio(tb.median.rps / ta.median.rps)})` : ''));
  }
  const penalty = (rpsRatio != null && rpsRatio <= T.c8RpsPenalty) || (p99Ratio != null && p99Ratio >= T.c8P99Penalty);
  const harmless = rpsRatio != null && rpsRatio >= T.c8Harmless && (p99Ratio == null || p99Ratio <= T.c8P99Harmless);
  const behindThreads = vsThreads != null && vsThreads <= T.c8RpsPenalty;
  if (penalty) return judged('confirmed', ev);
  if (harmless) return judged(behindThreads ? 'depends' : 'refuted', ev);
  if (behindThreads) return judged('confirmed', ev);
  if (rpsRatio == null && vsThreads == null) return notMeasured(...ev, 'neither the async variant nor threads were measured beside it');
  return judged('depends', ev);
}

function c9(r: LabResults): Judged {
  let most: { name: string; n: number; source: string | null } | null = null;
  for (const t of targets(r)) {
    const h = held(r, t.name);
    if (h.maxOk != null && (!most || h.maxOk > most.n)) most = { name: label(t), n: h.maxOk, source: h.source };
  }
  const ev: string[] = [];
  if (most) {
    ev.push(`most connections held on this machine: ${most.name} ${conns(most.n)}${most.source ? ` (${most.source})` : ''}; C10M is ${ratio(T.c9C10M / most.n)} that`);
  }
  const m = r.machine;
  ev.push(`this machine: ${m.cpus} CPUs, ${bytes(m.memBytes)} memory, ${conns(m.nofile.hard)} fds per process (hard limit)`);
  const he = held(r, BASELINE);
  if (he.maxOk != null || he.brokeAt != null) ev.push(heldLine(r, BASELINE));
  for (const name of ['io_uring']) if (resultsOf(r, name).length) ev.push(heldLine(r, name));

  // Zero-copy: the static app served with sendfile vs with read/write copies, same target and load.
  const stat = r.results.filter((s): s is Measured => isStatic(s) && isMeasured(s) && zeroCopyOf(s) != null);
  let gain: boolean | null = null;
  for (const zc of stat.filter((s) => zeroCopyOf(s) === true)) {
    const cp = stat.find((s) => zeroCopyOf(s) === false && s.target.name === zc.target.name && s.protocol === zc.protocol && s.params.connections === zc.params.connections && s.params.fileBytes === zc.params.fileBytes);
    if (!cp) continue;
    const rr = zc.median.rps / cp.median.rps;
    const cr = div(zc.median.cpuUsPerReq, cp.median.cpuUsPerReq);
    const size = typeof zc.params.fileBytes === 'number' ? `, ${bytes(zc.params.fileBytes)} file` : '';
    ev.push(
      `static on ${zc.target.name}${size}, ${conns(zc.params.connections)} connections: sendfile ${rps(zc.median)} vs copy ${num(cp.median.rps)} (${ratio(rr)})` +
        (cr != null ? `, CPU per request ${us(zc.median.cpuUsPerReq)} vs ${us(cp.median.cpuUsPerReq)} (${ratio(cr)})` : ''),
    );
    gain = (gain ?? false) || rr >= T.c9ZeroCopyGain || (cr != null && cr <= 1 / T.c9ZeroCopyGain);
  }
  if (gain == null) {
    return notMeasured(...ev, 'zero-copy not measured: needs the static app served with sendfile and with read/write copies (params.sendfile true / false) on one target at one load');
  }
  if (he.brokeAt != null && he.brokeAt < T.highConns) return judged('refuted', ev);
  if (he.maxOk != null && he.maxOk >= T.highConns && gain) return judged('confirmed', ev);
  if (!gain) ev.push(`sendfile gave less than ${T.c9ZeroCopyGain}x over copying here`);
  return judged('depends', ev);
}

// ---------------------------------------------------------------------------------------------

/** The claims, each with its rule in words and the function that applies it. */
export const RULES: Rule[] = [
  {
    id: 'C1',
    claim: 'Blocking with one thread per connection is simple, but stops scaling past a few thousand connections; best below 1,000',
    rule:
      `confirmed: a blocking server reaches >= ${T.c1KeepsUp}x epoll's req/s at <= ${conns(T.sweetSpotConns)} connections AND every blocking server measured large ` +
      `breaks (status broke: guard/SLO) at <= ${conns(T.highConns)}, falls below ${T.c1Collapses}x epoll at >= ${conns(T.highConns)}, or costs >= ${T.c1CostGap}x epoll's ` +
      `idle memory per connection; refuted: one holds >= ${conns(T.highConns)} within the SLO at >= ${T.c1Holds}x epoll; otherwise depends`,
    judge: c1,
  },
  {
    id: 'C2',
    claim: 'Non-blocking I/O on its own just returns EAGAIN, and polling for readiness burns CPU',
    rule:
      `confirmed: busypoll sees >= ${T.c2Eagain} EAGAIN per request AND spends >= ${T.c2CpuWaste}x epoll's CPU per request or >= ${T.c2IdleSpin}% of a core idle; ` +
      `refuted: CPU per request <= ${T.c2NoWaste}x epoll's and < ${T.c2IdleQuiet}% of a core idle; otherwise depends`,
    judge: c2,
  },
  {
    id: 'C3',
    claim: 'select/poll/epoll let one thread serve thousands of sockets; the sweet spot is 10k-1M',
    rule:
      `judged on idle+active (N idle connections held beside 100 busy): confirmed: poll's (and select's) CPU per request grows >= ${T.c3Growth}x ` +
      `from the fewest to the most idle (over >= ${T.c3IdleSpan}x the watched fds) while epoll's stays within ${T.c3EpollFlat}x, select stops at FD_SETSIZE ` +
      `${T.fdSetsize} and epoll holds >= ${conns(T.highConns)} connections (each where measured); refuted: epoll breaks below ${conns(T.highConns)} or its cost ` +
      `grows like poll's (>= ${T.c3Growth}x, without a ${T.c3Growth}x gap); otherwise depends. Without idle+active results: the same growth rule on the ` +
      `all-active ramp over a ${T.c3Span}x span, epoll holding >= ${conns(T.highConns)} required`,
    judge: c3,
  },
  {
    id: 'C4',
    claim: 'io_uring: the kernel does the I/O and the completion carries the data, with batched submission',
    rule:
      `confirmed: io_uring makes < ${T.c4FewerSyscalls}x epoll's syscalls per request and keeps >= ${T.c4KeepsUp}x its req/s at ${T.c4Counts.map(conns).join(' / ')} ` +
      `connections (where measured); refuted: >= ${T.c4NoSaving}x epoll's syscalls per request; otherwise depends; not measured when io_uring fell back`,
    judge: c4,
  },
  {
    id: 'C5',
    claim: 'Thread-per-connection dies near 10k connections, eaten by 8 MB stacks and context switches',
    rule:
      `confirmed: threads break at <= ${conns(T.c5Near * T.highConns)} connections AND resident memory per thread >= ${bytes(T.c5StackRss)} or context switches per request ` +
      `>= ${T.c5CtxRatio}x epoll's; refuted: threads hold >= ${conns(T.highConns)} without breaking with < ${bytes(T.c5StackRss)} resident per thread; otherwise depends`,
    judge: c5,
  },
  {
    id: 'C6',
    claim: 'Event loops (nginx, Node, Redis) hold ~100x the connections of thread-per-connection on the same box',
    rule:
      `ratio = most connections held by an event-loop server / by a blocking one. confirmed: >= ${T.c6Confirm}x; ` +
      `refuted: < ${T.c6Refute}x when the event loop's figure is its breaking point (not a lower bound); otherwise depends`,
    judge: c6,
  },
  {
    id: 'C7',
    claim: 'Per connection: a thread costs ~10 MB, epoll ~10 KB, io_uring about the same as epoll',
    rule:
      `idle cost per connection = user RSS + kernel socket memory. confirmed: threads within ${T.c7Tolerance}x of 10 MB, epoll within ${T.c7Tolerance}x of 10 KB, ` +
      `threads >= ${T.c7GapConfirm}x epoll, io_uring within ${T.c7Similar}x of epoll (when measured); refuted: threads < ${T.c7GapRefute}x epoll or io_uring > ${T.c7Far}x epoll; ` +
      `otherwise depends`,
    judge: c7,
  },
  {
    id: 'C8',
    claim: 'Never make a blocking call inside an event loop',
    rule:
      `event loop with a handler that blocks 1 ms vs one that waits 1 ms asynchronously. confirmed: req/s <= ${T.c8RpsPenalty}x or p99 >= ${T.c8P99Penalty}x ` +
      `(or <= ${T.c8RpsPenalty}x of threads running the same blocking handler); refuted: >= ${T.c8Harmless}x req/s and p99 <= ${T.c8P99Harmless}x (and not far behind threads); ` +
      `otherwise depends`,
    judge: c8,
  },
  {
    id: 'C9',
    claim: 'epoll solved C10K; C10M takes io_uring plus careful zero-copy',
    rule:
      `not measured without a sendfile vs copy comparison of the static app; confirmed: epoll holds >= ${conns(T.highConns)} and sendfile gives >= ${T.c9ZeroCopyGain}x ` +
      `req/s (or 1/${T.c9ZeroCopyGain} the CPU per request); refuted: epoll breaks below ${conns(T.highConns)}; otherwise depends. C10M itself is beyond one test machine`,
    judge: c9,
  },
];

/** A verdict for each claim C1-C9, decided only from the numbers in `r`. */
export function judgeClaims(r: LabResults): ClaimVerdict[] {
  return RULES.map((rule) => {
    let j: Judged;
    try {
      j = rule.judge(r);
    } catch (e) {
      // A malformed results file must not take the report down; say what failed instead.
      j = notMeasured(`could not judge: ${e instanceof Error ? e.message : String(e)}`);
    }
    return { id: rule.id, claim: rule.claim, verdict: j.verdict, evidence: j.evidence };
  });
}
