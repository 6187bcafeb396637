/**
 * Fuzz every parser for as long as asked (test/fuzz/lib.ts has the targets, mutations and checks):
 *
 *   node dist/bench/fuzz.js [--seconds 60] [--targets http-request,http-response,resp-command,resp-reply]
 *                           [--seed N] [--max-input-ms 200] [--hang-ms 10000] [--heap-growth-mb 64]
 *
 * `--seconds` is per target; targets run one after another, each in a worker thread so that a hang
 * (an input the parser never returns from) can be detected and the worker replaced. Checked:
 *  - no throw and no contract violation (lib.ts), no input taking more than --max-input-ms of CPU;
 *  - no hang: the worker publishes each input to shared memory before parsing it, and the main thread
 *    saves the input it has been stuck on for --hang-ms;
 *  - bounded memory: the worker's V8 heap after a full GC, every ~5 s, stays within --heap-growth-mb
 *    of the first sample (taken after warm-up).
 * Every finding is saved under test/fuzz/corpus/<target>/ (a regression case `npm test` replays); a
 * target stops after MAX_FINDINGS (one systematic bug should not flood the corpus).
 * Exit code 1 when anything was found.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { run, save, targets, type Finding } from '../test/fuzz/lib.js';
import { usageOnHelp } from './lib/util.js';

/** Largest input the worker publishes (lib.ts caps inputs at 256 KB). */
const SHARED_INPUT = 512 * 1024;
/** How long each worker slice runs between progress messages. */
const SLICE_MS = 1000;
const HEAP_EVERY_MS = 5000;
/** The first heap sample is the baseline; before it the JIT and caches settle. */
const WARMUP_MS = 5000;
/** Past this many findings a target stops: a flood means one systematic bug, and the corpus should not fill with it. */
const MAX_FINDINGS = 20;

interface WorkerIn {
  target: string;
  ms: number;
  seed: number;
  maxInputMs: number;
  shared: SharedArrayBuffer;
}

type FromWorker =
  | { type: 'progress'; execs: number }
  | { type: 'heap'; bytes: number }
  | { type: 'finding'; kind: Finding['kind']; message: string; input: Uint8Array }
  | { type: 'done'; execs: number };

// Expose gc() to the isolates created from here on (the workers), without a command-line flag.
v8.setFlagsFromString('--expose-gc');

if (!isMainThread) await workerMain(workerData as WorkerIn);
else await main();

async function workerMain(w: WorkerIn): Promise<void> {
  const gc = runInNewContext('gc') as () => void;
  const t = (await targets()).find((x) => x.name === w.target)!;
  const beat = new Int32Array(w.shared, 0, 2); // [inputs started, length of the current input]
  const bytes = new Uint8Array(w.shared, 8);
  const port = parentPort!;
  const until = performance.now() + w.ms;
  let execs = 0, slice = 0, heapAt = performance.now() + WARMUP_MS;
  while (performance.now() < until) {
    const r = run(t, {
      ms: Math.min(SLICE_MS, until - performance.now()),
      seed: (w.seed + slice++ * 0x9e3779b1) >>> 0,
      maxInputMs: w.maxInputMs,
      onInput: (input) => {
        const n = Math.min(input.length, bytes.length);
        bytes.set(input.subarray(0, n));
        Atomics.store(beat, 1, n);
        Atomics.add(beat, 0, 1);
      },
      onFinding: (f) => port.postMessage({ type: 'finding', kind: f.kind, message: f.message, input: new Uint8Array(f.input) } satisfies FromWorker),
    });
    execs += r.execs;
    port.postMessage({ type: 'progress', execs } satisfies FromWorker);
    if (performance.now() >= heapAt) {
      heapAt = performance.now() + HEAP_EVERY_MS;
      gc();
      port.postMessage({ type: 'heap', bytes: v8.getHeapStatistics().used_heap_size } satisfies FromWorker);
    }
  }
  port.postMessage({ type: 'done', execs } satisfies FromWorker);
}

interface Report {
  target: string;
  seconds: number;
  execs: number;
  findings: { kind: string; message: string; saved: string }[];
  heapFirstMb: number;
  heapLastMb: number;
  heapMaxMb: number;
}

async function main(): Promise<void> {
usageOnHelp(import.meta.url);
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '60' },
      targets: { type: 'string' },
      seed: { type: 'string' },
      'max-input-ms': { type: 'string', default: '200' },
      'hang-ms': { type: 'string', default: '10000' },
      'heap-growth-mb': { type: 'string', default: '64' },
      json: { type: 'boolean', default: false },
    },
  });
  const all = (await targets()).map((t) => t.name);
  const names = values.targets ? values.targets.split(',') : all;
  for (const n of names) if (!all.includes(n)) throw new Error(`unknown target ${n}; targets: ${all.join(', ')}`);
  const seconds = Number(values.seconds);
  const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 0x7fffffff);
  const maxInputMs = Number(values['max-input-ms']);
  const hangMs = Number(values['hang-ms']);
  const growthMb = Number(values['heap-growth-mb']);
  if (!(seconds > 0) || !(maxInputMs > 0) || !(hangMs > 0) || !(growthMb > 0)) throw new Error('--seconds, --max-input-ms, --hang-ms and --heap-growth-mb must be > 0');
  process.stderr.write(`fuzz: ${names.join(', ')}, ${seconds} s each, seed ${seed} (--seed ${seed} replays the mutations)\n`);

  const reports: Report[] = [];
  for (const [i, name] of names.entries()) reports.push(await fuzzTarget(name, seconds * 1000, (seed + i * 7919) >>> 0, maxInputMs, hangMs, growthMb));

  if (values.json) process.stdout.write(JSON.stringify({ seed, reports }, null, 2) + '\n');
  else {
    for (const r of reports) {
      process.stdout.write(
        `${r.target.padEnd(14)} ${r.seconds.toFixed(0).padStart(5)} s  ${String(r.execs).padStart(10)} inputs  ` +
          `${Math.round(r.execs / r.seconds).toString().padStart(7)}/s  ` +
          (r.heapMaxMb > 0 ? `heap after GC ${r.heapFirstMb.toFixed(1)} -> ${r.heapLastMb.toFixed(1)} MB (max ${r.heapMaxMb.toFixed(1)})` : `heap not sampled (runs under ${WARMUP_MS / 1000} s)`) +
          `  findings: ${r.findings.length}\n`,
      );
      for (const f of r.findings) process.stdout.write(`  ${f.kind}: ${f.message.split('\n')[0]}\n    saved: ${f.saved}\n`);
    }
  }
  process.exitCode = reports.some((r) => r.findings.length > 0) ? 1 : 0;
}

/** Run one target for `ms`, replacing the worker after a hang. */
async function fuzzTarget(name: string, ms: number, seed: number, maxInputMs: number, hangMs: number, growthMb: number): Promise<Report> {
  const t0 = performance.now();
  const report: Report = { target: name, seconds: 0, execs: 0, findings: [], heapFirstMb: 0, heapLastMb: 0, heapMaxMb: 0 };
  let firstHeap = -1, memoryFlagged = false, restarts = 0;
  const keep = (f: Finding): void => {
    const saved = f.input.length > 0 ? save(f) : '(no input: a property of the run)';
    report.findings.push({ kind: f.kind, message: f.message, saved });
    process.stderr.write(`fuzz ${name}: ${f.kind}: ${f.message.split('\n')[0]} (saved: ${saved})\n`);
  };
  while (performance.now() - t0 < ms - 100) {
    const left = ms - (performance.now() - t0);
    const shared = new SharedArrayBuffer(8 + SHARED_INPUT);
    const beat = new Int32Array(shared, 0, 2);
    const w = new Worker(fileURLToPath(import.meta.url), { workerData: { target: name, ms: left, seed: (seed + restarts * 104729) >>> 0, maxInputMs, shared } satisfies WorkerIn });
    let execsBefore = report.execs;
    const outcome = await new Promise<'done' | 'hang' | 'error'>((resolve) => {
      let last = -1, lastMoved = performance.now();
      const watch = setInterval(() => {
        const now = Atomics.load(beat, 0);
        if (now !== last) {
          last = now;
          lastMoved = performance.now();
        } else if (performance.now() - lastMoved > hangMs) {
          clearInterval(watch);
          const n = Atomics.load(beat, 1);
          const input = Buffer.from(new Uint8Array(shared, 8, n));
          keep({ target: name, kind: 'hang', message: `no return for ${hangMs} ms on a ${n}-byte input`, input });
          void w.terminate();
          resolve('hang');
        }
      }, 250);
      w.on('message', (m: FromWorker) => {
        if (m.type === 'progress' || m.type === 'done') report.execs = execsBefore + m.execs;
        if (m.type === 'finding') {
          keep({ target: name, kind: m.kind, message: m.message, input: Buffer.from(m.input) });
          if (report.findings.length >= MAX_FINDINGS) {
            clearInterval(watch);
            void w.terminate();
            resolve('done');
          }
        }
        if (m.type === 'heap') {
          const mb = m.bytes / (1024 * 1024);
          if (firstHeap < 0) firstHeap = mb;
          report.heapLastMb = mb;
          report.heapMaxMb = Math.max(report.heapMaxMb, mb);
          if (mb - firstHeap > growthMb && !memoryFlagged) {
            memoryFlagged = true;
            keep({ target: name, kind: 'memory', message: `heap after GC grew from ${firstHeap.toFixed(1)} to ${mb.toFixed(1)} MB`, input: Buffer.alloc(0) });
          }
        }
        if (m.type === 'done') {
          clearInterval(watch);
          resolve('done');
        }
      });
      w.on('error', (e) => {
        clearInterval(watch);
        keep({ target: name, kind: 'crash', message: `the worker died: ${e.stack ?? e.message}`, input: Buffer.from(new Uint8Array(shared, 8, Atomics.load(beat, 1))) });
        resolve('error');
      });
    });
    if (outcome === 'done') break;
    restarts++;
    execsBefore = report.execs;
  }
  report.seconds = (performance.now() - t0) / 1000;
  report.heapFirstMb = Math.max(0, firstHeap);
  return report;
}
