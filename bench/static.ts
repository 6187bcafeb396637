/**
 * Zero-copy: static files of 4 KB, 64 KB, 1 MB and 16 MB (random bytes) served by the `static` app
 * with the body sent from the page cache (--sendfile on: sendfile(2) on epoll, linked
 * IORING_OP_SPLICE file -> pipe -> socket on io_uring) and copied through user space (--sendfile off:
 * pread + write, pread + IORING_OP_SEND), and by nginx (1 worker, `sendfile on; tcp_nopush on;`,
 * and `sendfile off` as a control) when installed. wrk -t1 drives each; server on CPU 0, wrk on CPU 1,
 * median of --runs windows. Every server's body is checked once per size with curl + cmp.
 *
 * Prints per size and server: req/s, GB/s (1e9 bytes, heads included, as the client counts them),
 * the server's CPU seconds per GB sent and its CPU as % of its core (user + system of its process
 * tree over the window), syscalls per request (iolab engines' own counters), and the ratios
 * sendfile/copy per server, io_uring/epoll and epoll/nginx.
 *
 * Which figure to read: wrk reads 8 KB per read(2) (its RECVBUF), so from 1 MB files up wrk's core
 * is the limit and the server idles part of the time (srv CPU < 100%): req/s then ranks the client,
 * and CPU s/GB ranks the servers. `--client iolab` drives with `iolab load` instead (64 KB reads,
 * bodies counted off without copies), which leaves the server less idle at large sizes.
 *
 * Connections: 16 by default. Each connection keeps one request outstanding, so with 16 the one
 * server loop finds several ready sockets per wake-up (epoll_wait per request: 0.44 at 4
 * connections, 0.13 at 16, 0.06 at 64 in a trial here) and is never starved for work by the client's
 * round trips; past that, more connections mostly queue more bytes in socket buffers (16 x 16 MB in
 * flight is already 256 MB of kernel memory) and stretch every reply's latency. `--connections`
 * changes it.
 *
 *   npm run bench:static -- [--duration 5] [--runs 3] [--connections 16] [--sizes 4KB,64KB,1MB,16MB]
 *                           [--servers epoll,io_uring,nginx] [--client wrk|iolab] [--json]
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { makeStaticFiles, parseSize, sizeName, type StaticFiles } from '../src/lab/files.js';
import { measureWindow, medianSample, type LoadFn } from '../src/lab/measure.js';
import { makeTempDir, nginxStatic, peerByName } from '../src/lab/peers.js';
import { startEngine, startPeer, type Running } from '../src/lab/targets.js';
import type { Sample } from '../src/lab/results.js';
import { loadgen } from '../src/lab/load.js';
import { cpuSeconds, has, median, spawnPinned, usageOnHelp, wrkDuration } from './lib/util.js';

usageOnHelp(import.meta.url);
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    runs: { type: 'string', default: '3' },
    connections: { type: 'string', default: '16' },
    sizes: { type: 'string', default: '4KB,64KB,1MB,16MB' },
    servers: { type: 'string', default: 'epoll,io_uring,nginx' },
    client: { type: 'string', default: 'wrk' },
    'server-cpu': { type: 'string', default: '0' },
    'client-cpu': { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  },
});
const DURATION = Number(values.duration), RUNS = Number(values.runs), CONNS = Number(values.connections);
const SCPU = Number(values['server-cpu']), CCPU = Number(values['client-cpu']);
const SIZES = values.sizes!.split(',').map(parseSize);
const WANT = new Set(values.servers!.split(',').map((s) => s.trim()));
if (values.client !== 'wrk' && values.client !== 'iolab') {
  process.stderr.write('--client is wrk or iolab\n');
  process.exit(2);
}
for (const tool of [...(values.client === 'wrk' ? ['wrk'] : []), 'curl', 'cmp']) {
  if (!has(tool)) {
    process.stderr.write(`bench:static needs ${tool} (apt-get install ${tool === 'cmp' ? 'diffutils' : tool})\n`);
    process.exit(2);
  }
}

interface Server {
  /** Row name, e.g. `epoll sendfile`. */
  name: string;
  /** epoll, io_uring or nginx: the pair a sendfile/copy ratio is taken within. */
  base: string;
  sendfile: boolean;
  start(files: StaticFiles): Promise<Running>;
}

const servers: Server[] = [];
for (const engine of ['epoll', 'io_uring']) {
  if (!WANT.has(engine)) continue;
  for (const sendfile of [true, false]) {
    servers.push({
      name: `${engine} ${sendfile ? (engine === 'io_uring' ? 'splice' : 'sendfile') : 'copy'}`,
      base: engine,
      sendfile,
      start: (files) => startEngine({ engine, protocol: 'http', cpu: SCPU, app: `static:${files.dir}`, extra: ['--sendfile', sendfile ? 'on' : 'off'] }),
    });
  }
}
if (WANT.has('nginx')) {
  if (peerByName('nginx')!.binary()) {
    for (const sendfile of [true, false]) {
      servers.push({ name: `nginx ${sendfile ? 'sendfile' : 'copy'}`, base: 'nginx', sendfile, start: (files) => startPeer(nginxStatic(files.dir, sendfile), SCPU) });
    }
  } else process.stderr.write('nginx not installed (apt-get install nginx-light): skipping the nginx rows\n');
}

// wrk's Lua `done` hook prints the exact byte count and error counts (its summary rounds bytes to 2 digits).
const work = makeTempDir('bench-static');
const SCRIPT = join(work.dir, 'count.lua');
writeFileSync(
  SCRIPT,
  `done = function(s, latency, requests)
  io.write(string.format("IOLAB bytes=%d requests=%d connect=%d read=%d write=%d status=%d timeout=%d p50=%d p90=%d p99=%d p999=%d max=%d\\n",
    s.bytes, s.requests, s.errors.connect, s.errors.read, s.errors.write, s.errors.status, s.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max))
end
`,
);

/** wrk as the lab's load function (closed loop, one thread, pinned to the client CPU). */
const wrk: LoadFn = (r) =>
  new Promise((resolve, reject) => {
    const w = spawnPinned(String(CCPU), 'wrk', ['-t1', `-c${r.connections}`, wrkDuration(r.durationS), '--timeout', '10s', '-s', SCRIPT, r.url], { stdio: 'pipe' });
    let out = '';
    w.stdout!.on('data', (d: Buffer) => (out += d));
    w.on('exit', (code) => {
      const m = /IOLAB (.*)/.exec(out);
      if (code !== 0 || !m) return reject(new Error(`wrk exited ${code}: ${out.trim().split('\n').pop() ?? ''}`));
      const f = Object.fromEntries(m[1]!.trim().split(' ').map((kv) => kv.split('=')).map(([k, v]) => [k!, Number(v)]));
      const socket = f.connect! + f.read! + f.write! + f.timeout!;
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
      const secs = f.requests! / rps;
      resolve({
        rps,
        requests: f.requests!,
        errors: socket + f.status!,
        errorsByKind: { ...(socket ? { socket } : {}), ...(f.status ? { status: f.status } : {}) },
        latencyUs: { p50: f.p50!, p90: f.p90!, p99: f.p99!, p999: f.p999!, max: f.max! },
        connected: r.connections,
        bytesPerSec: f.bytes! / secs,
        bytes: f.bytes!,
      });
    });
  });

/** curl the file once and cmp it with the original: a rate of wrong bytes is worthless. */
function verify(url: string, files: StaticFiles, bytes: number): string | null {
  const got = join(work.dir, 'got.bin');
  const c = spawnSync('curl', ['-s', '-o', got, '-w', '%{http_code} %{size_download}', '--max-time', '20', url], { encoding: 'utf8' });
  if (c.status !== 0) return `curl exited ${c.status}`;
  if (c.stdout !== `200 ${bytes}`) return `curl: status and size ${c.stdout}, expected 200 ${bytes}`;
  const d = spawnSync('cmp', [got, join(files.dir, files.path(bytes).slice(1))], { encoding: 'utf8' });
  return d.status === 0 ? null : `cmp: ${d.stdout.trim() || d.stderr.trim()}`;
}

interface Row {
  size: number;
  server: string;
  base: string;
  sendfile: boolean;
  ran: string;
  rps: number;
  gbPerSec: number;
  cpuSecPerGB: number | null;
  syscallsPerReq: number | null;
  /** The engine's syscalls per request by name (iolab engines). */
  syscalls: Record<string, number> | null;
  p99Ms: number | null;
  /** Server CPU (user + system) as % of one core over the window. */
  cpuPercent: number | null;
  errors: number;
  runs: number[];
  failed?: string;
}

/**
 * The load function, with the server tree's CPU time read around each call: CPU per byte from the
 * client's own byte count (requests counted by the server and by the client differ by the replies
 * in flight at the edges: up to 16 of ~100 at 16 MB).
 */
function metered(pid: number, windows: { cpuS: number; wallS: number; bytes: number }[]): LoadFn {
  return async (r) => {
    const c0 = cpuSeconds(pid), t0 = performance.now();
    const out = await load(r);
    const c1 = cpuSeconds(pid), t1 = performance.now();
    windows.push({ cpuS: c1 - c0, wallS: (t1 - t0) / 1000, bytes: out.bytes ?? NaN });
    return out;
  };
}

const load: LoadFn = values.client === 'wrk' ? wrk : loadgen;
const CLIENT = values.client === 'wrk' ? `wrk -t1 -c${CONNS}` : `iolab load -c ${CONNS}`;
const rows: Row[] = [];
const files = makeStaticFiles(SIZES);
try {
  for (const size of SIZES) {
    for (const srv of servers) {
      const row: Row = {
        size, server: srv.name, base: srv.base, sendfile: srv.sendfile, ran: srv.base, rps: NaN, gbPerSec: NaN, cpuSecPerGB: null,
        syscallsPerReq: null, syscalls: null, p99Ms: null, cpuPercent: null, errors: 0, runs: [],
      };
      let run: Running | null = null;
      try {
        run = await srv.start(files);
        row.ran = run.target.ran;
        const url = `http://127.0.0.1:${run.port}${files.path(size)}`;
        const wrong = verify(url, files, size);
        if (wrong) throw new Error(`served the wrong bytes: ${wrong}`);
        const req = { url, protocol: 'http' as const, connections: CONNS, pipeline: 1, durationS: DURATION, cpu: CCPU };
        await load({ ...req, durationS: 1 }); // warm-up: JIT, connections, page cache
        const samples: Sample[] = [];
        const windows: { cpuS: number; wallS: number; bytes: number }[] = [];
        const meter = metered(run.pid, windows);
        for (let i = 0; i < RUNS; i++) samples.push(await measureWindow(run, meter, req));
        const m = medianSample(samples)!;
        row.rps = m.rps;
        row.gbPerSec = (m.bytesPerSec ?? NaN) / 1e9;
        const perGB = windows.filter((w) => w.bytes > 0).map((w) => w.cpuS / (w.bytes / 1e9));
        row.cpuSecPerGB = perGB.length ? median(perGB) : null;
        row.cpuPercent = median(windows.map((w) => (w.cpuS / w.wallS) * 100));
        row.syscallsPerReq = m.syscallsPerReq;
        row.syscalls = m.syscallsByNamePerReq;
        row.p99Ms = m.latencyUs ? m.latencyUs.p99 / 1000 : null;
        row.errors = m.errors;
        row.runs = samples.map((s) => s.rps);
        process.stderr.write(`  ${sizeName(size).padStart(5)} ${srv.name.padEnd(16)} ${samples.map((s) => Math.round(s.rps)).join(', ')} req/s, ${row.gbPerSec.toFixed(2)} GB/s\n`);
      } catch (e) {
        row.failed = (e as Error).message;
        process.stderr.write(`  ${sizeName(size).padStart(5)} ${srv.name.padEnd(16)} failed: ${row.failed}\n`);
      } finally {
        await run?.stop();
      }
      rows.push(row);
    }
  }
} finally {
  files.remove();
  work.remove();
}

const find = (size: number, base: string, sendfile: boolean): Row | undefined => rows.find((r) => r.size === size && r.base === base && r.sendfile === sendfile && !r.failed);
const x = (a: number | null | undefined, b: number | null | undefined): number | null => (a != null && b != null && Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : null);

interface Ratios { size: number; what: string; rps: number | null; cpuPerGB: number | null }
const ratios: Ratios[] = [];
for (const size of SIZES) {
  for (const base of ['epoll', 'io_uring', 'nginx']) {
    const on = find(size, base, true), off = find(size, base, false);
    if (on && off) ratios.push({ size, what: `${base} ${base === 'io_uring' ? 'splice' : 'sendfile'}/copy`, rps: x(on.rps, off.rps), cpuPerGB: x(on.cpuSecPerGB, off.cpuSecPerGB) });
  }
  for (const sendfile of [true, false]) {
    const u = find(size, 'io_uring', sendfile), e = find(size, 'epoll', sendfile);
    if (u && e) ratios.push({ size, what: `io_uring/epoll (${sendfile ? 'zero-copy' : 'copy'})`, rps: x(u.rps, e.rps), cpuPerGB: x(u.cpuSecPerGB, e.cpuSecPerGB) });
    const n = find(size, 'nginx', sendfile);
    if (e && n) ratios.push({ size, what: `epoll/nginx (${sendfile ? 'sendfile' : 'copy'})`, rps: x(e.rps, n.rps), cpuPerGB: x(e.cpuSecPerGB, n.cpuSecPerGB) });
  }
}

if (values.json) {
  process.stdout.write(JSON.stringify({ client: values.client, duration: DURATION, runs: RUNS, connections: CONNS, serverCpu: SCPU, clientCpu: CCPU, rows, ratios }, null, 2) + '\n');
} else {
  const f = (n: number | null | undefined, d = 2): string => (n == null || !Number.isFinite(n) ? '-' : n.toFixed(d));
  const fx = (n: number | null): string => (n == null ? '-' : `${n.toFixed(2)}x`);
  const out: string[] = [
    '',
    `${CLIENT} -d${DURATION}s, GET one file, median of ${RUNS}; server on CPU ${SCPU}, client on CPU ${CCPU}. GB = 1e9 bytes; srv CPU: % of one core.`,
    `${'size'.padStart(5)}  ${'server'.padEnd(16)}${'req/s'.padStart(10)}${'GB/s'.padStart(7)}${'CPU s/GB'.padStart(10)}${'srv CPU'.padStart(9)}${'syscalls/req'.padStart(14)}${'p99 ms'.padStart(9)}  syscalls by name (per request)`,
  ];
  for (const r of rows) {
    const name = r.ran === r.base || r.base === 'nginx' ? r.server : `${r.server} (ran ${r.ran})`;
    if (r.failed) {
      out.push(`${sizeName(r.size).padStart(5)}  ${name.padEnd(16)}  failed: ${r.failed}`);
      continue;
    }
    const by = r.syscalls ? Object.entries(r.syscalls).filter(([, v]) => v >= 0.05).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ') : '';
    out.push(
      `${sizeName(r.size).padStart(5)}  ${name.padEnd(16)}${Math.round(r.rps).toString().padStart(10)}${f(r.gbPerSec).padStart(7)}${f(r.cpuSecPerGB, 3).padStart(10)}${(r.cpuPercent == null ? '-' : `${Math.round(r.cpuPercent)}%`).padStart(9)}` +
        `${f(r.syscallsPerReq).padStart(14)}${f(r.p99Ms).padStart(9)}  ${by}${r.errors ? `  (${r.errors} errors)` : ''}`,
    );
  }
  out.push('', `${'size'.padStart(5)}  ${'ratio'.padEnd(28)}${'req/s'.padStart(8)}${'CPU/GB'.padStart(9)}`);
  for (const q of ratios) out.push(`${sizeName(q.size).padStart(5)}  ${q.what.padEnd(28)}${fx(q.rps).padStart(8)}${fx(q.cpuPerGB).padStart(9)}`);
  process.stdout.write(out.join('\n') + '\n');
}
