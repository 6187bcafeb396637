/**
 * Every engine side by side under the same wrk load: HTTP hello, 100 keep-alive connections, the
 * server pinned to CPU 0 and wrk to CPU 1, median of --runs windows. Prints req/s, server CPU per
 * request, syscalls, context switches per request and server RSS, with ratios against epoll.
 *
 *   npm run bench:engines -- [--duration 5] [--runs 3] [--connections 100] [--engines epoll,io_uring,...]
 */
import { parseArgs } from 'node:util';
import { ENGINES } from '../src/engines/index.js';
import { measureWindow, medianSample, type LoadFn } from '../src/lab/measure.js';
import { startEngine } from '../src/lab/targets.js';
import type { Sample } from '../src/lab/results.js';
import { has, spawnPinned, usageOnHelp } from './lib/util.js';

usageOnHelp(import.meta.url);
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    runs: { type: 'string', default: '3' },
    connections: { type: 'string', default: '100' },
    engines: { type: 'string', default: ENGINES.join(',') },
    json: { type: 'boolean', default: false },
  },
});
if (!has('wrk')) {
  process.stderr.write('bench:engines needs wrk (apt-get install wrk)\n');
  process.exit(2);
}
const DURATION = Number(values.duration), RUNS = Number(values.runs), CONNS = Number(values.connections);

/** wrk as the lab's load function (closed loop, one thread, pinned to CPU 1). */
const wrk: LoadFn = (r) =>
  new Promise((resolve, reject) => {
    const w = spawnPinned('1', 'wrk', ['-t1', `-c${r.connections}`, `-d${r.durationS}s`, '--latency', r.url], { stdio: 'pipe' });
    let out = '';
    w.stdout!.on('data', (d: Buffer) => (out += d));
    w.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`wrk exited ${code}`));
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

const rows: { engine: string; ran: string; m: Sample }[] = [];
for (const engine of values.engines!.split(',')) {
  const srv = await startEngine({ engine, protocol: 'http', cpu: 0 });
  try {
    const req = { url: srv.url, protocol: 'http' as const, connections: CONNS, pipeline: 1, durationS: DURATION, cpu: 1 };
    await wrk({ ...req, durationS: 1 }); // warm-up
    const samples: Sample[] = [];
    for (let i = 0; i < RUNS; i++) samples.push(await measureWindow(srv, wrk, req));
    const m = medianSample(samples)!;
    rows.push({ engine, ran: srv.target.ran, m });
    process.stderr.write(`  ${engine}: ${samples.map((s) => Math.round(s.rps)).join(', ')} req/s\n`);
  } catch (e) {
    process.stderr.write(`  ${engine}: failed: ${(e as Error).message}\n`);
  } finally {
    await srv.stop();
  }
}

if (values.json) {
  process.stdout.write(JSON.stringify({ duration: DURATION, runs: RUNS, connections: CONNS, rows }, null, 2) + '\n');
} else {
  const base = rows.find((r) => r.engine === 'epoll')?.m;
  const f = (n: number | null, d = 2): string => (n === null || !Number.isFinite(n) ? '-' : n.toFixed(d));
  process.stdout.write(`\nwrk -t1 -c${CONNS} -d${DURATION}s, HTTP hello, median of ${RUNS}; server on CPU 0, wrk on CPU 1\n`);
  process.stdout.write(`${'engine'.padEnd(20)}${'req/s'.padStart(10)}${'vs epoll'.padStart(10)}${'p99 ms'.padStart(9)}${'CPU us/req'.padStart(12)}${'syscalls/req'.padStart(14)}${'ctxsw/req'.padStart(11)}${'RSS MB'.padStart(9)}${'threads'.padStart(9)}\n`);
  for (const { engine, ran, m } of rows) {
    const name = ran === engine ? engine : `${engine} (ran ${ran})`;
    process.stdout.write(
      `${name.padEnd(20)}${Math.round(m.rps).toString().padStart(10)}${(base ? `${(m.rps / base.rps).toFixed(2)}x` : '').padStart(10)}` +
        `${f(m.latencyUs ? m.latencyUs.p99 / 1000 : null).padStart(9)}${f(m.cpuUsPerReq).padStart(12)}${f(m.syscallsPerReq).padStart(14)}` +
        `${f(m.ctxSwitchesPerReq, 3).padStart(11)}${f(m.rssBytes !== null ? m.rssBytes / 2 ** 20 : null, 0).padStart(9)}${String(m.threads ?? '-').padStart(9)}\n`,
    );
  }
}
