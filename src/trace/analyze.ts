/**
 * From raw trace records (sys/trace.ts, every thread and process of a server) to one connection's
 * life: which calls concern it, which phase each belongs to, and what they add up to.
 *
 * The connection is the first one accepted (accept4 returning an fd, or an io_uring ACCEPT
 * completion), in the process that accepted it, until that fd is closed (close(2), or a CLOSE
 * completion). A call belongs to it when it names its fd (read, write, epoll_ctl, an SQE ...), when
 * it is the wait that reported the fd ready (the `ready` records after an epoll_wait/poll/select),
 * or the io_uring_enter that submitted an SQE for it or reaped a CQE for it, or the aio_suspend
 * after which a request of it was found complete.
 *
 * Phases: accept (the accept and the socket's setup), wait (waits that reported it, and reads that
 * said EAGAIN: polling by trying), read (calls that return request bytes, and read submissions),
 * app (no call: user-space time between the bytes arriving and the answer's first write), write,
 * close (the EOF, shutdown, close, cancels).
 */
import type { TracePhase, TraceStep, TraceSummary } from '../lab/results.js';
import type { TraceRecord } from '../sys/trace.js';

export const PHASES: TracePhase[] = ['accept', 'wait', 'read', 'app', 'write', 'close'];
export const PHASE_TITLE: Record<TracePhase, string> = {
  accept: 'accept', wait: 'wait for data', read: 'read', app: 'app', write: 'write', close: 'close',
};

const WAITS = new Set(['epoll_wait', 'epoll_pwait2', 'poll', 'select', 'aio_suspend']);
const READS = new Set(['read', 'recv', 'readv']);
const WRITES = new Set(['write', 'send', 'writev', 'sendfile']);
/** Records that are not kernel entries of their own. */
const SUBS = new Set(['ready', 'sqe', 'cqe', 'aio_done']);
const MAX_STEPS = 400;

export interface AnalyzeOptions {
  engine: string;
  ran: string;
  model: string;
  app: string;
  requests: number;
  connections: number;
}

type Rec = TraceRecord & { idx: number };

const thread = (r: TraceRecord): string => `${r.pid}/${r.tid}`;
const end = (r: TraceRecord): number => (r.tEnd ?? r.t + r.dur);

/** Sort records from all threads and processes by time (ties: per-thread order). */
export function ordered(records: TraceRecord[]): Rec[] {
  const rs = records.map((r, idx) => ({ ...r, idx }));
  rs.sort((a, b) => a.t - b.t || (thread(a) === thread(b) ? a.seq - b.seq : a.idx - b.idx));
  return rs;
}

function isAccept(r: TraceRecord): boolean {
  return (r.sys === 'accept4' && r.res >= 0) || (r.sys === 'cqe' && r.op === 'ACCEPT' && r.res >= 0);
}

function isClose(r: TraceRecord, fd: number): boolean {
  return r.fd === fd && ((r.sys === 'close' && r.res >= 0) || (r.sys === 'cqe' && r.op === 'CLOSE'));
}

export function emptySummary(o: AnalyzeOptions, status: TraceSummary['status'], reason: string): TraceSummary {
  return {
    engine: o.engine, ran: o.ran, model: o.model, app: o.app, requests: o.requests, connections: o.connections, status, reason,
    phases: PHASES.map((phase) => ({ phase, calls: 0, timeUs: 0 })),
    totals: { syscalls: 0, callsPerRequest: 0, eagain: 0, waits: 0, sqes: 0, cqes: 0, kernelUs: 0, userUs: 0, lifeUs: 0 },
    request: [],
    steps: [],
  };
}

/** The first accepted connection's life, phase by phase. */
export function analyze(records: TraceRecord[], o: AnalyzeOptions): TraceSummary {
  const rs = ordered(records);
  const acc = rs.find(isAccept);
  if (!acc) {
    const io = records.some((r) => READS.has(r.sys) || WRITES.has(r.sys) || r.sys === 'accept4' || r.sys === 'cqe');
    return io
      ? emptySummary(o, 'failed', 'no accepted connection in the trace')
      : emptySummary(o, 'skipped', 'its connections make no call through iolab\'s sys layer (node: libuv makes them), so there is nothing to trace');
  }
  const pid = acc.pid, fd = acc.res;
  const start = acc.t;
  const startIdx = rs.indexOf(acc);
  let closeIdx = rs.findIndex((r, i) => i > startIdx && r.pid === pid && isClose(r, fd));
  if (closeIdx < 0) {
    // A CLOSE SQE whose completion was not recorded (the server stopped first), else the last record on the fd.
    closeIdx = rs.findIndex((r, i) => i > startIdx && r.pid === pid && r.fd === fd && r.sys === 'sqe' && r.op === 'CLOSE');
    for (let i = rs.length - 1; closeIdx < 0 && i > startIdx; i--) if (rs[i]!.pid === pid && rs[i]!.fd === fd) closeIdx = i;
    if (closeIdx < 0) closeIdx = startIdx;
  }
  // The wait that reported the listening socket (and its `ready`), or the io_uring_enter that reaped the
  // ACCEPT completion, just before the accept in the same thread: the first step of the connection.
  const prelude: Rec[] = [];
  for (let i = startIdx - 1; i >= 0 && startIdx - i < 64; i--) {
    const r = rs[i]!;
    if (thread(r) !== thread(acc)) continue;
    if (r.sys === 'ready' && r.fd === acc.fd) prelude.push(r);
    else if (WAITS.has(r.sys) || r.sys === 'io_uring_enter') {
      if (prelude.length > 0 || r.sys === 'io_uring_enter') prelude.push(r);
      break;
    } else break;
  }
  const life = [...prelude.reverse(), ...rs.slice(startIdx, closeIdx + 1).filter((r) => r.pid === pid)];
  const lifeEnd = end(life.at(-1)!);

  // Which records belong to the connection, and in which phase.
  const phase = new Map<Rec, TracePhase>();
  const byThread = new Map<string, Rec[]>();
  for (const r of life) {
    const k = thread(r);
    let list = byThread.get(k);
    if (!list) byThread.set(k, (list = []));
    list.push(r);
  }
  phase.set(acc, 'accept');
  // Batching: how many CQEs (for any connection) each io_uring_enter handed back.
  const cqesOut = new Map<Rec, number>();
  for (const list of byThread.values()) {
    list.sort((a, b) => a.seq - b.seq);
    for (let i = 0; i < list.length; i++) {
      if (list[i]!.sys !== 'io_uring_enter') continue;
      let n = 0;
      while (list[i + 1 + n]?.sys === 'cqe') n++;
      cqesOut.set(list[i]!, n);
    }
    let lastWait: Rec | null = null;
    let lastEnter: Rec | null = null;
    let pendingEnterFor: TracePhase | null = null;
    const enterPhase = new Map<Rec, TracePhase>();
    const setEnter = (e: Rec | null, p: TracePhase): void => {
      if (!e) return;
      const prev = enterPhase.get(e);
      // What an enter did for this connection, most telling first: delivered data > sent > closed > accepted > armed.
      const rank: Record<TracePhase, number> = { wait: 5, close: 4, write: 3, accept: 2, read: 1, app: 0 };
      if (!prev || rank[p] > rank[prev]) enterPhase.set(e, p);
    };
    for (const r of list) {
      if (WAITS.has(r.sys)) lastWait = r;
      if (r.sys === 'io_uring_enter') {
        lastEnter = r;
        if (pendingEnterFor) setEnter(r, pendingEnterFor);
        pendingEnterFor = null;
      }
      if (r === acc) continue;
      if (prelude.includes(r)) {
        if (r.sys !== 'io_uring_enter') phase.set(r, 'accept');
        else setEnter(r, 'accept');
        continue;
      }
      if (r.sys === 'ready') {
        if (r.fd === fd && lastWait) {
          phase.set(r, 'wait');
          phase.set(lastWait, 'wait');
        }
        continue;
      }
      if (r.sys === 'aio_done' && r.fd === fd) {
        const p: TracePhase = r.op === 'READ' ? (r.res > 0 ? 'read' : 'close') : 'write';
        phase.set(r, p);
        if (lastWait?.sys === 'aio_suspend' && !phase.has(lastWait)) phase.set(lastWait, 'wait');
        continue;
      }
      if (r.sys === 'sqe' && r.fd === fd) {
        const p = sqePhase(r.op);
        phase.set(r, p);
        pendingEnterFor = pendingEnterFor && rankOf(pendingEnterFor) > rankOf(p) ? pendingEnterFor : p;
        continue;
      }
      if (r.sys === 'cqe') {
        if (r.fd === fd || (r.op === 'ACCEPT' && r.res === fd)) {
          const p: TracePhase = r.op === 'RECV' ? (r.res > 0 ? 'read' : r.res === 0 ? 'close' : 'wait')
            : r.op === 'ACCEPT' ? 'accept' : sqePhase(r.op);
          phase.set(r, p);
          setEnter(lastEnter, r.op === 'RECV' && r.res > 0 ? 'wait' : p);
        }
        continue;
      }
      if (r.fd !== fd) continue;
      phase.set(r, callPhase(r));
    }
    for (const [e, p] of enterPhase) phase.set(e, p);
  }

  // Steps in time order, with the app gaps: from the end of a data-bearing read to the next write in that thread.
  const mine = life.filter((r) => phase.has(r));
  const steps: TraceStep[] = [];
  // Times count from the moment the connection exists: when the accept returned (or its CQE was seen).
  const t0 = end(acc);
  const us = (ns: number): number => Math.round(ns / 10) / 100;
  let openRead: Rec | null = null;
  const dataRead = (r: Rec): boolean =>
    (READS.has(r.sys) && r.res > 0) || (r.sys === 'cqe' && r.op === 'RECV' && r.res > 0) || (r.sys === 'aio_done' && r.op === 'READ' && r.res > 0);
  const writeStart = (r: Rec): boolean => WRITES.has(r.sys) || (r.sys === 'sqe' && r.op === 'SEND') || r.sys === 'aio_write';
  let requestsSeen = 0;
  const reqStarts: number[] = [];
  for (const r of mine) {
    if (openRead && writeStart(r) && thread(r) === thread(openRead)) {
      const from = end(openRead);
      steps.push({ atUs: us(from - t0), durUs: us(Math.max(0, r.t - from)), phase: 'app', sys: 'app', text: '(user space: parse, app, encode)', res: 0, pid: r.pid, tid: r.tid });
      openRead = null;
    }
    if (dataRead(r)) {
      if (!openRead) {
        requestsSeen++;
        reqStarts.push(steps.length);
      }
      openRead = r;
    }
    const step = toStep(r, phase.get(r)!, t0);
    const out = cqesOut.get(r);
    if (out !== undefined) step.text += `  [${r.submit ?? 0} SQE${r.submit === 1 ? '' : 's'} in, ${out} CQE${out === 1 ? '' : 's'} out]`;
    steps.push(step);
  }

  // Totals
  const phases = PHASES.map((p) => ({ phase: p, calls: 0, timeUs: 0 }));
  let syscalls = 0, eagain = 0, waits = 0, sqes = 0, cqes = 0;
  for (const s of steps) {
    const ph = phases[PHASES.indexOf(s.phase)]!;
    ph.timeUs += s.durUs;
    if (s.sys === 'app') {
      ph.calls++;
      continue;
    }
    const n = s.n ?? 1;
    if (s.sys === 'sqe') sqes += n;
    if (s.sys === 'cqe') cqes += n;
    if (SUBS.has(s.sys)) continue;
    ph.calls += n;
    syscalls += n;
    if (s.err === 'EAGAIN') eagain += n;
    if (s.phase === 'wait' && (WAITS.has(s.sys) || s.sys === 'io_uring_enter')) waits += n;
  }
  for (const p of phases) p.timeUs = Math.round(p.timeUs * 100) / 100;

  // Kernel vs user time in the thread that served the data (its calls for any fd, within the life).
  const server = mine.find(dataRead) ?? mine.find((r) => r !== acc) ?? acc;
  const st = thread(server);
  const from = thread(acc) === st ? end(acc) : (mine.find((r) => thread(r) === st)?.t ?? end(acc));
  let kernel = 0;
  for (const r of life) {
    if (thread(r) !== st || SUBS.has(r.sys)) continue;
    const a = Math.max(r.t, from), b = Math.min(end(r), lifeEnd);
    if (b <= a) continue;
    const span = end(r) - r.t;
    kernel += span > 0 ? (r.dur * (b - a)) / span : 0;
  }
  const lifeNs = lifeEnd - from;

  // One steady-state request (the second, if any): from the wait (or EAGAINs) that led to its bytes, to
  // its last write before the next request's wait or the close.
  const backUp = (i: number): number => {
    while (i > 0 && !['write', 'accept', 'read'].includes(steps[i - 1]!.phase)) i--;
    return i;
  };
  const k = reqStarts.length >= 2 ? 1 : 0;
  const request: string[] = [];
  if (reqStarts.length > 0) {
    const a = backUp(reqStarts[k]!);
    let b = k + 1 < reqStarts.length ? backUp(reqStarts[k + 1]!) : steps.length;
    const c = steps.findIndex((s, i) => i > a && s.phase === 'close');
    if (c >= 0 && c < b) b = c;
    for (let i = a; i < b; i++) request.push(stepName(steps[i]!));
  }

  const threads = new Set(mine.map(thread)).size;
  const processes = new Set(mine.map((r) => r.pid)).size;
  const sum: TraceSummary = {
    engine: o.engine, ran: o.ran, model: o.model, app: o.app, requests: o.requests, connections: o.connections,
    status: 'ok', fd, threads, processes, phases,
    totals: {
      syscalls, callsPerRequest: o.requests > 0 ? Math.round((syscalls / o.requests) * 100) / 100 : syscalls, eagain, waits, sqes, cqes,
      kernelUs: us(kernel), userUs: us(Math.max(0, lifeNs - kernel)), lifeUs: us(lifeNs),
    },
    request,
    steps: steps.slice(0, MAX_STEPS),
  };
  if (requestsSeen < o.requests) sum.reason = `saw ${requestsSeen} of ${o.requests} requests arrive on the traced connection`;
  if (steps.length > MAX_STEPS) sum.truncated = steps.length - MAX_STEPS;
  return sum;
}

const rankOf = (p: TracePhase): number => ({ wait: 5, close: 4, write: 3, accept: 2, read: 1, app: 0 })[p];

function sqePhase(op: string | undefined): TracePhase {
  switch (op) {
    case 'RECV': case 'READ': case 'READV': case 'RECVMSG': return 'read';
    case 'SEND': case 'WRITE': case 'WRITEV': case 'SENDMSG': return 'write';
    case 'ACCEPT': return 'accept';
    default: return 'close'; // CLOSE, SHUTDOWN, ASYNC_CANCEL
  }
}

function callPhase(r: TraceRecord): TracePhase {
  if (READS.has(r.sys)) return r.res > 0 ? 'read' : r.err === 'EAGAIN' ? 'wait' : 'close';
  if (WRITES.has(r.sys)) return 'write';
  if (r.sys === 'aio_read') return 'read';
  if (r.sys === 'aio_write') return 'write';
  if (r.sys === 'epoll_ctl') return r.op === 'DEL' ? 'close' : r.op === 'ADD' ? 'accept' : 'wait';
  if (r.sys === 'close' || r.sys === 'shutdown' || r.sys === 'aio_cancel') return 'close';
  return 'accept'; // setsockopt, fcntl, getpeername ...: setting the new socket up
}

/** A short name for the one-request picture: `read`, `read EAGAIN x12`, `cqe RECV 79`, `epoll_wait`. */
function stepName(s: TraceStep): string {
  const n = s.n && s.n > 1 ? ` x${s.n}` : '';
  if (s.sys === 'app') return 'app';
  if (s.sys === 'sqe') return `sqe ${s.op}`;
  if (s.sys === 'cqe') return `cqe ${s.op} ${s.res}`;
  if (s.sys === 'ready') return `ready ${s.events}`;
  if (s.sys === 'aio_done') return `aio_done ${s.op} ${s.res}`;
  if (s.err) return `${s.sys} ${s.err}${n}`;
  return `${s.sys}${n}`;
}

function fmtRes(r: TraceRecord): string {
  return r.res < 0 ? `-${r.err ?? r.res}` : String(r.res);
}

/** The call in strace's words. */
export function callText(r: TraceRecord): string {
  const n = r.n && r.n > 1 ? ` x ${r.n} over ${((end(r) - r.t) / 1e6).toFixed(2)} ms` : '';
  switch (r.sys) {
    case 'ready':
      return `  -> fd ${r.fd} ${r.events}`;
    case 'sqe':
      return `  sqe ${r.op} fd ${r.fd}${r.len ? ` len ${r.len}` : ''}${r.flags && r.flags !== '0' ? ` [${r.flags}]` : ''}`;
    case 'cqe':
      return `  cqe ${r.op} fd ${r.fd} res ${fmtRes(r)}${r.flags && r.flags !== '0' ? ` [${r.flags}]` : ''}`;
    case 'aio_done':
      return `  aio_done ${r.op} fd ${r.fd} res ${fmtRes(r)}`;
    case 'io_uring_enter':
      return `io_uring_enter(${r.fd}, submit ${r.submit}, wait ${r.wait}) = ${fmtRes(r)}${n}`;
    case 'epoll_wait': case 'epoll_pwait2':
      return `${r.sys}(${r.fd}, ${r.nfds}, ${r.timeout}) = ${fmtRes(r)}${n}`;
    case 'poll': case 'select':
      return `${r.sys}(${r.nfds} fds, ${r.timeout}) = ${fmtRes(r)}${n}`;
    case 'aio_suspend':
      return `aio_suspend(${r.nfds} in flight, ${r.timeout}) = ${r.res ? 'woken' : 'timeout'}${n}`;
    case 'epoll_ctl':
      return `epoll_ctl(${r.op}, ${r.fd}${r.events ? `, ${r.events}` : ''}) = ${fmtRes(r)}${n}`;
    case 'accept4':
      return `accept4(${r.fd}, ${r.flags}) = ${fmtRes(r)}${n}`;
    case 'shutdown':
      return `shutdown(${r.fd}, ${r.op}) = ${fmtRes(r)}${n}`;
    default:
      return `${r.sys}(${r.fd ?? ''}${r.len !== undefined ? `, ${r.len}` : ''}) = ${fmtRes(r)}${n}`;
  }
}

function toStep(r: TraceRecord, phase: TracePhase, t0: number): TraceStep {
  const s: TraceStep = {
    atUs: Math.round((r.t - t0) / 10) / 100,
    durUs: Math.round(r.dur / 10) / 100,
    phase,
    sys: r.sys,
    text: callText(r),
    res: r.res,
    pid: r.pid,
    tid: r.tid,
  };
  if (r.err) s.err = r.err;
  if (r.n && r.n > 1) s.n = r.n;
  if (r.fd !== undefined) s.fd = r.fd;
  if (r.op) s.op = r.op;
  if (r.events) s.events = r.events;
  return s;
}
