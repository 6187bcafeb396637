/**
 * Every engine side by side under the same wrk load: HTTP hello, keep-alive connections, the server
 * pinned to CPU 0 and wrk to CPU 1, median of --runs windows. Prints req/s, server CPU per request,
 * syscalls, context switches per request and server RSS, with ratios against epoll at the same
 * connection count; Apache's worker (a C thread per connection) and prefork (a C process per
 * connection) MPMs and nginx run beside them when installed, as the same models without a V8 isolate.
 *
 *   npm run bench:engines -- [--duration 5] [--runs 3] [--connections 100 | 4,16,50,100]
 *                            [--engines epoll,io_uring,...] [--peers nginx,apache2-worker,apache2-prefork | none]
 *                            [--warmup 2] [--blocking-warmup 45] [--json]
 *
 * The blocking engines are measured as Apache would be configured for the load: prefork with one
 * process per connection (--procs N, like MaxRequestWorkers), threads with N threads started before
 * the window (--spare-threads N, like StartServers x ThreadsPerChild), so the window measures
 * serving, not thread start-up (~65 ms of CPU each). Each thread or process is a V8 isolate that
 * compiles its own copy of the request path (~20 s of the core for 100 of them), so they get a longer
 * warm-up (--blocking-warmup), in two wrk runs: V8 recompiles each isolate's request path once, at its
 * first connection's end, and that belongs in the warm-up rather than the windows.
 *
 * Each window is bracketed by an L3 cache probe (src/lab/cacheprobe.ts): on a shared host another
 * tenant can take the last-level cache for seconds at a time, and a blocking engine's per-request
 * CPU triples while it does. Windows where the probe read more than twice the run's best get a second
 * table of their own (medians over the quiet windows only), and --json carries every reading.
 */
import { parseArgs } from 'node:util';
import { ENGINES } from '../src/engines/index.js';
import { contendedAbove } from '../src/lab/cacheprobe.js';
import { measureWindow, medianSample, settledCacheProbe, type LoadFn } from '../src/lab/measure.js';
import { peerByName } from '../src/lab/peers.js';
import { startEngine, startPeer, type Running } from '../src/lab/targets.js';
import type { Sample } from '../src/lab/results.js';
import { has, spawnPinned, usageOnHelp, wrkDuration } from './lib/util.js';

usageOnHelp(import.meta.url);
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    runs: { type: 'string', default: '3' },
    connections: { type: 'string', default: '100' },
    engines: { type: 'string', default: ENGINES.join(',') },
    peers: { type: 'string', default: 'nginx,apache2-worker,apache2-prefork' },
    warmup: { type: 'string', default: '2' },
    'blocking-warmup': { type: 'string', default: '45' },
    json: { type: 'boolean', default: false },
  },
});
if (!has('wrk')) {
  process.stderr.write('bench:engines needs wrk (apt-get install wrk)\n');
  process.exit(2);
}
const DURATION = Number(values.duration), RUNS = Number(values.runs);
const WARMUP = Number(values.warmup), BLOCKING_WARMUP = Number(values['blocking-warmup']);
const COUNTS = values.connections!.split(',').map(Number);
if (COUNTS.some((c) => !Number.isInteger(c) || c < 1) || ![DURATION, RUNS, WARMUP, BLOCKING_WARMUP].every((x) => Number.isFinite(x) && x >= 0)) {
  process.stderr.write('bench:engines: --connections takes positive integers (e.g. 100 or 4,16,50,100); --duration, --runs, --warmup numbers\n');
  process.exit(2);
}
const BLOCKING = new Set(['threads', 'prefork', 'apache2-worker', 'apache2-prefork']);

/** wrk as the lab's load function (closed loop, one thread, pinned to CPU 1). */
const wrk: LoadFn = (r) =>
  new Promise((resolve, reject) => {
    const w = spawnPinned('1', 'wrk', ['-t1', `-c${r.connections}`, wrkDuration(r.durationS), '--latency', r.url], { stdio: 'pipe' });
    let out = '';
    w.stdout!.on('data', (d: Buffer) => (out += d));
    w.on('exit', (code) => {
      // wrk's own complaint (stderr) is already on ours; its usage text goes to stdout.
      if (code !== 0) return reject(new Error(`wrk exited ${code}${out ? `: ${out.trim().split('\n')[0]}` : ''}`));
      const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? NaN);
      const ms = (m: RegExpExecArray | null): number => (m ? Number(m[1]) * ({ us: 1e-3, ms: 1, s: 1000 }[m[2] as 'us' | 'ms' | 's'] ?? 1) : NaN);
      const rps = num(/Requests\/sec:\s+([\d.]+)/);
      const total = num(/(\d+) requests in/);
      const socketErrs = (/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out) ?? []).slice(1).reduce((a, b) => a + Number(b), 0);
      const errs = socketErrs + (num(/Non-2xx or 3xx responses: (\d+)/) || 0);
      const p = (q: string): number => ms(new RegExp(`\\s${q}%\\s+([\\d.]+)(us|ms|s)`).exec(out)) * 1000;
      resolve({ rps, requests: total, errors: errs, errorsByKind: {}, latencyUs: { p50: p('50'), p90: p('90'), p99: p('99'), p999: p('99'), max: p('99') }, connected: r.connections });
    });
  });

/** Start one target sized for `conns` connections (see the header comment for the blocking engines). */
async function startTarget(name: string, conns: number): Promise<Running> {
  const peer = peerByName(name);
  if (peer) return startPeer(peer, 0);
  if (name === 'prefork') return startEngine({ engine: name, protocol: 'http', cpu: 0, extra: ['--procs', String(conns)] });
  if (name === 'threads') return startEngine({ engine: name, protocol: 'http', cpu: 0, extra: ['--spare-threads', String(conns)] });
  return startEngine({ engine: name, protocol: 'http', cpu: 0 });
}

/** One window: its sample, and the cache probe's reading (ns per load) just before and just after it. */
interface Window { s: Sample; cacheNs: [number, number] }
interface Row { target: string; ran: string; conns: number; m: Sample; errors: number; windows: Window[] }
const rows: Row[] = [];
/** Windows further apart than this (max/min req/s) are reported under the table. */
const SPREAD = 1.3;
const spread: string[] = [];
const peers = values.peers === 'none' ? [] : values.peers!.split(',').filter(Boolean);
for (const p of peers) if (!peerByName(p)) process.stderr.write(`bench:engines: unknown peer ${p} (skipped)\n`);
const targets = [...values.engines!.split(','), ...peers.filter((p) => peerByName(p))];
for (const conns of COUNTS) {
  for (const name of targets) {
    let srv: Running;
    try {
      srv = await startTarget(name, conns);
    } catch (e) {
      process.stderr.write(`  ${name} @${conns}: skipped: ${(e as Error).message}\n`);
      continue;
    }
    try {
      const req = { url: srv.url, protocol: 'http' as const, connections: conns, pipeline: 1, durationS: DURATION, cpu: 1 };
      if (BLOCKING.has(name)) {
        // Two runs: the second's new connections take the paths a connection's end and start take
        // (EOF, the next accept), which the first run's optimised code had never seen; V8 deoptimises
        // and recompiles there once per isolate, and that belongs in the warm-up, not the window.
        if (BLOCKING_WARMUP > 0) {
          await wrk({ ...req, durationS: BLOCKING_WARMUP * 0.7 });
          await wrk({ ...req, durationS: BLOCKING_WARMUP * 0.3 });
        }
      } else if (WARMUP > 0) await wrk({ ...req, durationS: WARMUP });
      // The L3 probe brackets each window (src/lab/cacheprobe.ts): measureWindow reads it before each
      // (once the load before has settled: read at once, it took in our own server's cache traffic,
      // 17 ns before a window and 61-77 after), so a window's "after" is the next one's "before".
      const samples: Sample[] = [];
      for (let i = 0; i < RUNS; i++) samples.push(await measureWindow(srv, wrk, req, { cacheProbe: true }));
      const last = await settledCacheProbe();
      const windows: Window[] = samples.map((s, i) => ({ s, cacheNs: [s.cacheNs ?? NaN, samples[i + 1]?.cacheNs ?? last] }));
      const m = medianSample(samples)!;
      rows.push({ target: name, ran: srv.target.ran, conns, m, errors: samples.reduce((a, s) => a + s.errors, 0), windows });
      process.stderr.write(
        `  ${name} @${conns}: ${samples.map((s) => Math.round(s.rps)).join(', ')} req/s, ${samples.map((s) => s.cpuUsPerReq?.toFixed(1)).join(', ')} us CPU/req; ` +
          `L3 probe ${windows.map((w) => w.cacheNs.map((x) => x.toFixed(0)).join('/')).join(', ')} ns\n`,
      );
      const rates = samples.map((s) => s.rps).filter((x) => x > 0);
      if (rates.length > 1 && Math.max(...rates) > SPREAD * Math.min(...rates)) {
        // A warm blocking server at 100 connections has two speeds here (PERFORMANCE.md, "Steady state"):
        // say so rather than let a median of disagreeing windows pass for a steady figure.
        spread.push(`${name} @${conns}: windows from ${Math.round(Math.min(...rates))} to ${Math.round(Math.max(...rates))} req/s`);
      }
    } catch (e) {
      process.stderr.write(`  ${name} @${conns}: failed: ${(e as Error).message}\n`);
    } finally {
      await srv.stop();
    }
  }
}

// A window is "contended" when either probe beside it read more than twice the best of the whole run
// (the cache as this machine gives it when no neighbour wants it). The median of the quiet windows is
// the figure to compare engines by; the median of all is kept beside it.
const allProbes = rows.flatMap((r) => r.windows.flatMap((w) => w.cacheNs));
const above = contendedAbove(allProbes);
const quiet = new Map<Row, { n: number; rps: number | null; cpu: number | null }>();
for (const r of rows) {
  const q = r.windows.filter((w) => w.cacheNs.every((x) => !(x > above)));
  const qm = medianSample(q.map((w) => w.s));
  quiet.set(r, { n: q.length, rps: qm?.rps ?? null, cpu: qm?.cpuUsPerReq ?? null });
}
const nContended = rows.reduce((a, r) => a + r.windows.length - quiet.get(r)!.n, 0);
const bestProbe = allProbes.length > 0 ? Math.min(...allProbes) : NaN;

if (values.json) {
  const out = rows.map((r) => ({
    ...r,
    windows: r.windows.map((w) => ({ rps: w.s.rps, cpuUsPerReq: w.s.cpuUsPerReq, cacheNs: w.cacheNs })),
    quietWindows: quiet.get(r)!.n,
    quietRps: quiet.get(r)!.rps,
    quietCpuUsPerReq: quiet.get(r)!.cpu,
  }));
  process.stdout.write(JSON.stringify({ duration: DURATION, runs: RUNS, connections: COUNTS, cacheProbeBestNs: bestProbe, rows: out, disagreeing: spread }, null, 2) + '\n');
} else {
  const f = (n: number | null | undefined, d = 2): string => (n === null || n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(d));
  process.stdout.write(`\nwrk -t1 -d${DURATION}s, HTTP hello, median of ${RUNS}; server on CPU 0, wrk on CPU 1; "vs epoll" at the same connection count\n`);
  process.stdout.write(`${'target'.padEnd(20)}${'conns'.padStart(6)}${'req/s'.padStart(10)}${'vs epoll'.padStart(10)}${'p99 ms'.padStart(9)}${'CPU us/req'.padStart(12)}${'vs epoll'.padStart(10)}` +
    `${'syscalls/req'.padStart(14)}${'ctxsw/req'.padStart(11)}${'RSS MB'.padStart(9)}${'threads'.padStart(9)}${'errors'.padStart(8)}\n`);
  for (const { target, ran, conns, m, errors } of rows) {
    const base = rows.find((r) => r.target === 'epoll' && r.conns === conns)?.m;
    const name = ran === target ? target : `${target} (ran ${ran})`;
    process.stdout.write(
      `${name.padEnd(20)}${String(conns).padStart(6)}${Math.round(m.rps).toString().padStart(10)}${(base ? `${(m.rps / base.rps).toFixed(2)}x` : '').padStart(10)}` +
        `${f(m.latencyUs ? m.latencyUs.p99 / 1000 : null).padStart(9)}${f(m.cpuUsPerReq).padStart(12)}` +
        `${(base && m.cpuUsPerReq && base.cpuUsPerReq ? `${(m.cpuUsPerReq / base.cpuUsPerReq).toFixed(2)}x` : '').padStart(10)}${f(m.syscallsPerReq).padStart(14)}` +
        `${f(m.ctxSwitchesPerReq, 3).padStart(11)}${f(m.rssBytes !== null ? m.rssBytes / 2 ** 20 : null, 0).padStart(9)}${String(m.threads ?? '-').padStart(9)}${String(errors).padStart(8)}\n`,
    );
  }
  if (nContended > 0) {
    process.stdout.write(
      `\nthe same, over the windows with the L3 cache to ourselves (probe within 2x of the run's best, ${f(bestProbe, 1)} ns a load; ` +
        `${nContended} of ${rows.reduce((a, r) => a + r.windows.length, 0)} windows had a reading above it: another tenant of the host held the cache):\n`,
    );
    process.stdout.write(`${'target'.padEnd(20)}${'conns'.padStart(6)}${'windows'.padStart(9)}${'req/s'.padStart(10)}${'vs epoll'.padStart(10)}${'CPU us/req'.padStart(12)}${'vs epoll'.padStart(10)}\n`);
    for (const r of rows) {
      const q = quiet.get(r)!;
      const baseRow = rows.find((b) => b.target === 'epoll' && b.conns === r.conns);
      const base = baseRow ? quiet.get(baseRow)! : null;
      const ratio = (a: number | null, b: number | null | undefined): string => (a !== null && b !== null && b !== undefined && b > 0 ? `${(a / b).toFixed(2)}x` : '');
      process.stdout.write(
        `${r.target.padEnd(20)}${String(r.conns).padStart(6)}${`${q.n}/${r.windows.length}`.padStart(9)}${(q.rps === null ? '-' : Math.round(q.rps).toString()).padStart(10)}` +
          `${ratio(q.rps, base?.rps).padStart(10)}${f(q.cpu).padStart(12)}${ratio(q.cpu, base?.cpu).padStart(10)}\n`,
      );
    }
  }
  if (spread.length > 0) {
    process.stdout.write(`\nwindows that disagree by more than ${SPREAD}x (a noisy machine, or a blocking engine's two speeds: PERFORMANCE.md "Steady state"); more --runs narrow the median:\n`);
    for (const l of spread) process.stdout.write(`  ${l}\n`);
  }
}
