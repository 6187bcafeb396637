/**
 * Running a load: in this process (one loop), or over `--procs` child processes (child.ts), each
 * with its share of the connections, started together after all have connected, their results
 * merged exactly. Progress from every process is summed for the live line and the HDR log.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readdirSync, writeFileSync, appendFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { raiseNofile, setAffinity } from '../sys/index.js';
import { decodeHistogram } from './histogram.js';
import { chooseBackend, noticeOnce } from './io.js';
import { LoadLoop, type ProcResult, type ProcShare, type ProgressSnapshot } from './loop.js';
import type { ResolvedOptions } from './options.js';
import { mergeResults, type LoadResult } from './result.js';
import hdr from 'hdr-histogram-js';
import { performance } from 'node:perf_hooks'; // the global is a lazy accessor: a getter call per use

/** Summed over processes, once per progress interval. */
export interface LoadProgress {
  phase: 'connect' | 'ready' | 'run' | 'done';
  elapsedMs: number;
  completed: number;
  /** Replies per second over the last interval. */
  perSec: number;
  errors: number;
  open: number;
}

export interface RunControl {
  signal?: AbortSignal;
  onProgress?: (p: LoadProgress) => void;
  progressMs?: number;
  /** A notice for the user (the I/O backend asked for is not the one that runs). Default: stderr, once. */
  onNotice?: (msg: string) => void;
}

export type ChildMessage =
  | { type: 'ready'; established: number; failed: number; connectMs: number }
  | { type: 'progress'; p: ProgressSnapshot }
  | { type: 'result'; result: ProcResult }
  | { type: 'error'; message: string };

export type ParentMessage =
  | { type: 'run'; options: ResolvedOptions; share: ProcShare; hdrIntervals: boolean; progressMs: number }
  | { type: 'go' }
  | { type: 'stop' };

/** Split `total` into `parts` near-equal integers. */
export function split(total: number, parts: number): number[] {
  const base = Math.floor(total / parts);
  const extra = total % parts;
  return Array.from({ length: parts }, (_, i) => base + (i < extra ? 1 : 0));
}

export function shares(o: ResolvedOptions): ProcShare[] {
  const conns = split(o.connections, o.procs);
  const reqs = o.requests > 0 ? split(o.requests, o.procs) : conns.map(() => 0);
  let base = 0;
  return conns.map((c, i) => {
    const s: ProcShare = {
      index: i,
      slotBase: base,
      slots: c,
      rate: (o.rate * c) / o.connections,
      requests: reqs[i]!,
      connectRate: (o.connectRate * c) / o.connections,
    };
    base += c;
    return s;
  });
}

/** Pin every thread of this process (threads made later inherit the mask from the main thread). */
export function pinProcess(cpus: number[]): void {
  if (cpus.length === 0) return;
  let tids: number[] = [];
  try {
    tids = readdirSync('/proc/self/task').map(Number);
  } catch {
    tids = [0];
  }
  for (const t of tids) {
    try {
      setAffinity(cpus, t);
    } catch {
      /* a thread that just exited */
    }
  }
}

/** Writes an HdrHistogram interval log (text, as HistogramLogWriter produces; values µs, max column ms). */
class HdrLog {
  private readonly path: string;
  private readonly writer: InstanceType<typeof hdr.HistogramLogWriter>;
  private readonly tagged: boolean;
  private buf = '';
  constructor(path: string, tagged: boolean) {
    this.path = path;
    this.tagged = tagged;
    writeFileSync(path, '');
    this.writer = new hdr.HistogramLogWriter((s: string) => (this.buf += s));
    this.writer.outputComment('iolab load: latency in microseconds; the interval max column in milliseconds');
    this.writer.outputLogFormatVersion();
    const now = Date.now();
    this.writer.baseTime = now;
    this.writer.outputStartTime(now);
    this.writer.outputLegend();
    this.flush();
  }
  add(index: number, iv: NonNullable<ProgressSnapshot['interval']>): void {
    const h = decodeHistogram(iv.histogram);
    if (this.tagged) h.tag = `p${index}`;
    this.writer.outputIntervalHistogram(h, (iv.startMs - this.writer.baseTime) / 1000, (iv.endMs - this.writer.baseTime) / 1000, 1000);
    this.flush();
  }
  private flush(): void {
    if (this.buf) appendFileSync(this.path, this.buf);
    this.buf = '';
  }
}

class ProgressSum {
  private readonly last = new Map<number, ProgressSnapshot>();
  private prevCompleted = 0;
  private prevAt = performance.now();
  constructor(private readonly ctl: RunControl, private readonly log: HdrLog | null) {}
  add(p: ProgressSnapshot): void {
    if (p.interval && this.log) this.log.add(p.index, p.interval);
    this.last.set(p.index, p);
  }
  /** Emit one summed snapshot (called once per interval). */
  emit(): void {
    if (!this.ctl.onProgress || this.last.size === 0) return;
    const all = [...this.last.values()];
    const completed = all.reduce((a, p) => a + p.completed, 0);
    const now = performance.now();
    const phases = ['connect', 'ready', 'run', 'done'] as const;
    const phase = phases[Math.min(...all.map((p) => phases.indexOf(p.phase)))]!;
    const dt = (now - this.prevAt) / 1000;
    const perSec = phase === 'run' && dt > 0 ? Math.max(0, completed - this.prevCompleted) / dt : 0;
    this.prevCompleted = completed;
    this.prevAt = now;
    this.ctl.onProgress({
      phase,
      elapsedMs: Math.max(...all.map((p) => p.elapsedMs)),
      completed,
      perSec,
      errors: all.reduce((a, p) => a + p.errors, 0),
      open: all.reduce((a, p) => a + p.open, 0),
    });
  }
}

/** Run one load (closed, rate or hold) as `o` says. */
export async function runResolved(asked: ResolvedOptions, ctl: RunControl = {}): Promise<LoadResult> {
  // Resolve the backend here, once, so every process runs the same one and the notice shows once.
  const choice = await chooseBackend(asked.backend);
  if (choice.notice !== null) (ctl.onNotice ?? noticeOnce)(choice.notice);
  const o: ResolvedOptions = { ...asked, backend: choice.backend };
  const log = o.hdrLog ? new HdrLog(o.hdrLog, o.procs > 1) : null;
  const sum = new ProgressSum(ctl, log);
  const progressMs = ctl.progressMs ?? 1000;
  const parts = o.procs === 1 ? await runHere(o, ctl, sum, progressMs, log !== null) : await runChildren(o, ctl, sum, progressMs, log !== null);
  return mergeResults(o, parts, choice.notice !== null ? [choice.notice] : []);
}

async function runHere(o: ResolvedOptions, ctl: RunControl, sum: ProgressSum, progressMs: number, hdrIntervals: boolean): Promise<ProcResult[]> {
  raiseNofile();
  pinProcess(o.cpus);
  const [share] = shares(o);
  const loop = new LoadLoop(o, share!, {
    progressMs,
    hdrIntervals,
    onProgress: (p) => {
      sum.add(p);
      sum.emit();
    },
  });
  const onAbort = (): void => loop.stop();
  if (ctl.signal?.aborted) loop.stop();
  ctl.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return [await loop.run()];
  } finally {
    ctl.signal?.removeEventListener('abort', onAbort);
  }
}

const CHILD = fileURLToPath(new URL('./child.js', import.meta.url));
/**
 * Load processes compile optimised code on their own thread. With V8's background compile jobs, a
 * process ending its run now and then never exited: its main thread waited in the platform's
 * BlockingDrain for the jobs to finish while a job waited in CollectionBarrier::AwaitCollectionBackground
 * for a GC only the main thread can run (Node's issue #54918, fixed after Node 20; gdb showed both
 * stacks). An aborted 2-process hold on io_uring hung until the hard kill in 4 of 20 runs, and in
 * 0 of 40 with these flags; req/s and p99 of a 2-process closed loop did not move beyond the noise.
 * IOLAB_LOAD_CHILD_CONCURRENT_JIT=1 restores V8's default, to see the hang (test/loadgen/backends.test.ts).
 */
const CHILD_V8_FLAGS = process.env.IOLAB_LOAD_CHILD_CONCURRENT_JIT === '1' ? [] : ['--no-concurrent-recompilation', '--no-concurrent-osr'];
/** Children get this long past the run's own deadline before they are killed. */
const KILL_GRACE_MS = 10_000;

async function runChildren(o: ResolvedOptions, ctl: RunControl, sum: ProgressSum, progressMs: number, hdrIntervals: boolean): Promise<ProcResult[]> {
  pinProcess(o.cpus);
  const list = shares(o);
  const children: ChildProcess[] = [];
  const results = new Map<number, ProcResult>();
  const ready = new Set<number>();
  let failure: Error | null = null;
  let stopped = false;
  const killAll = (): void => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };
  process.once('exit', killAll);
  const stopAll = (): void => {
    stopped = true;
    for (const c of children) if (c.connected) c.send({ type: 'stop' } satisfies ParentMessage, (e) => void e);
  };
  if (ctl.signal?.aborted) stopped = true;
  ctl.signal?.addEventListener('abort', stopAll, { once: true });

  let resolveAll!: () => void;
  const allDone = new Promise<void>((r) => (resolveAll = r));
  let exited = 0;
  const timer = setInterval(() => sum.emit(), progressMs);
  const hardKill = setTimeout(() => {
    failure ??= new Error(`load processes did not finish within the deadline (${Math.round(o.deadlineMs / 1000)} s): killed`);
    killAll();
  }, o.deadlineMs + KILL_GRACE_MS);

  try {
    for (const share of list) {
      const cpus = o.cpus.length > 0 ? [o.cpus[share.index % o.cpus.length]!] : [];
      const child = fork(CHILD, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: CHILD_V8_FLAGS, serialization: 'json' });
      children.push(child);
      child.on('message', (m: ChildMessage) => {
        if (m.type === 'ready') {
          ready.add(share.index);
          if (ready.size === list.length) for (const c of children) if (c.connected) c.send({ type: 'go' } satisfies ParentMessage, (e) => void e);
        } else if (m.type === 'progress') sum.add(m.p);
        else if (m.type === 'result') results.set(share.index, m.result);
        else if (m.type === 'error') failure ??= new Error(`load process ${share.index}: ${m.message}`);
      });
      // A send to a child that just died reports EPIPE here; its 'close' below says the rest.
      child.on('error', () => {});
      // 'close', not 'exit': 'exit' can come before the last IPC messages (the result) are read.
      child.on('close', (code, sig) => {
        if (!results.has(share.index)) {
          failure ??= new Error(`load process ${share.index} exited (${sig ?? code}) without a result`);
          // Without it the others would wait for the go signal forever: stop them.
          stopAll();
        }
        if (++exited === list.length) resolveAll();
      });
      child.send({ type: 'run', options: { ...o, cpus }, share, hdrIntervals, progressMs } satisfies ParentMessage);
    }
    if (stopped) stopAll();
    await allDone;
  } finally {
    clearInterval(timer);
    clearTimeout(hardKill);
    ctl.signal?.removeEventListener('abort', stopAll);
    killAll();
    process.removeListener('exit', killAll);
  }
  if (results.size < list.length) {
    if (stopped && results.size > 0) return [...results.values()];
    throw failure ?? new Error('load processes failed');
  }
  return list.map((s) => results.get(s.index)!);
}
