/**
 * `iolab load closed` against wrk: same server, same connection count, server pinned to one CPU and
 * the client (wrk -t1, or iolab load in one process) to the other. Runs alternate (wrk, iolab, wrk,
 * iolab ...) so drift on a shared machine hits both; the median of `--runs` counts. Servers: iolab
 * epoll `hello` and nginx with one worker (when installed). Prints both req/s and iolab/wrk.
 * The issue's target: >= 1.0x wrk on nginx.
 *
 * Also printed: the client's CPU time per request (user + system; wrk's from /usr/bin/time, iolab's
 * over its measured window as it reports it). On a machine shared with other work the req/s of both
 * swing with the neighbours; CPU per request says which client would win once it is the bottleneck.
 *
 * `--backend` picks iolab load's I/O backend (auto: io_uring when the kernel allows it, else epoll);
 * the table says which one ran.
 *
 *   node dist/bench/load-vs-wrk.js [--duration 5] [--runs 3] [--connections 100] [--pipeline 1] [--backend auto|io_uring|epoll] [--only nginx] [--json]
 */
import { peerByName } from '../src/lab/peers.js';
import { startPeer } from '../src/lab/targets.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CLI, has, median, reapOnExit, spawnPinned, startIolab, stop, usageOnHelp, wrkDuration } from './lib/util.js';

usageOnHelp(import.meta.url);
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    runs: { type: 'string', default: '3' },
    connections: { type: 'string', default: '100' },
    pipeline: { type: 'string', default: '1' },
    'server-cpu': { type: 'string', default: '0' },
    'client-cpu': { type: 'string', default: '1' },
    only: { type: 'string' },
    backend: { type: 'string', default: 'auto' },
    json: { type: 'boolean', default: false },
  },
});
const DURATION = Number(values.duration), RUNS = Number(values.runs), CONNS = Number(values.connections), PIPE = Number(values.pipeline);
const SCPU = values['server-cpu']!, CCPU = values['client-cpu']!;
const BACKEND = values.backend!;
if (!['auto', 'io_uring', 'epoll'].includes(BACKEND)) {
  process.stderr.write(`--backend takes auto, io_uring or epoll (got ${BACKEND})\n`);
  process.exit(2);
}
/** The backend iolab load reported (auto resolves to one); the runs must agree. */
const ran = new Set<string>();
const children: ChildProcess[] = [];
reapOnExit(() => children);

if (!has('wrk')) {
  process.stderr.write('load-vs-wrk needs wrk (apt-get install wrk)\n');
  process.exit(2);
}

interface Server {
  name: string;
  start(): Promise<{ port: number; child: ChildProcess; cleanup?: () => void }>;
}

const servers: Server[] = [
  {
    name: 'iolab epoll',
    async start() {
      const s = await startIolab(SCPU, ['--engine', 'epoll', '--app', 'hello']);
      return { port: s.port, child: s.child };
    },
  },
];
// nginx from the lab's peer config (one worker, epoll, the hello body from memory): one config for every bench.
const nginxPeer = peerByName('nginx')!;
if (nginxPeer.binary()) {
  servers.push({
    name: 'nginx (1 worker)',
    async start() {
      const r = await startPeer(nginxPeer, Number(SCPU));
      return { port: r.port, child: r.child, cleanup: () => void r.stop() };
    },
  });
} else process.stderr.write('nginx not installed (apt-get install nginx-light): skipping the nginx row\n');

/** Run a command pinned to the client CPU under /usr/bin/time; stdout and the CPU seconds it used. */
function runTimed(cmd: string, args: string[]): Promise<{ out: string; cpuSec: number }> {
  const timed = has('/usr/bin/time') ? ['/usr/bin/time', '-f', 'IOLAB_TIME %U %S', cmd, ...args] : [cmd, ...args];
  const child = spawn('taskset', ['-c', CCPU, ...timed], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '', err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (err += d));
  return new Promise((resolve, reject) =>
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`${cmd} exited ${code}: ${out}${err}`));
      const m = /IOLAB_TIME ([\d.]+) ([\d.]+)/.exec(err);
      resolve({ out, cpuSec: m ? Number(m[1]) + Number(m[2]) : NaN });
    }),
  );
}

interface Run { rps: number; cpuUsPerReq: number; errors: number }

async function runWrk(port: number, seconds: number): Promise<Run> {
  // wrk pipelines only through a Lua script; at depth 1 it is the plain closed loop.
  const args = ['-t1', `-c${CONNS}`, wrkDuration(seconds)];
  let dir: string | null = null;
  if (PIPE > 1) {
    dir = mkdtempSync(join(tmpdir(), 'iolab-wrk-'));
    writeFileSync(join(dir, 'pipeline.lua'), `init = function(args) local r = {} for i = 1, ${PIPE} do r[i] = wrk.format(nil, "/") end req = table.concat(r) end\nrequest = function() return req end\n`);
    args.push('-s', join(dir, 'pipeline.lua'));
  }
  const { out, cpuSec } = await runTimed('wrk', [...args, `http://127.0.0.1:${port}/`]);
  if (dir) rmSync(dir, { recursive: true, force: true });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN) * (PIPE > 1 ? PIPE : 1); // a pipelined batch counts once in wrk
  const total = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN) * (PIPE > 1 ? PIPE : 1);
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)?.slice(1).reduce((a, x) => a + Number(x), 0) ?? 0;
  return { rps, cpuUsPerReq: (cpuSec / total) * 1e6, errors };
}

async function runIolab(port: number, seconds: number): Promise<Run> {
  const { out, cpuSec } = await runTimed(process.execPath, [
    CLI, 'load', 'closed', `http://127.0.0.1:${port}/`, '-c', String(CONNS), '-p', String(PIPE), '-d', `${seconds}s`, '--backend', BACKEND,
    '--json', '--quiet', '--max-errors', '1000000',
  ]);
  const j = JSON.parse(out) as {
    backend: string; requests: { perSec: number; completed: number }; errors: { total: number }; client: { userSec: number; systemSec: number };
  };
  ran.add(j.backend);
  // CPU over the measured window (all threads; iolab measures it itself): Node's start-up and JIT
  // warm-up (~0.2 s of CPU, cpuSec here) would otherwise weigh on short runs; wrk starts in ~1 ms.
  void cpuSec;
  return { rps: j.requests.perSec, cpuUsPerReq: ((j.client.userSec + j.client.systemSec) / j.requests.completed) * 1e6, errors: j.errors.total };
}

interface Row {
  server: string; wrk: number; iolab: number; ratio: number; wrkRuns: number[]; iolabRuns: number[];
  wrkCpuUsPerReq: number; iolabCpuUsPerReq: number; wrkErrors: number; iolabErrors: number;
}
const rows: Row[] = [];
for (const srv of servers) {
  if (values.only && !srv.name.includes(values.only)) continue;
  const s = await srv.start();
  children.push(s.child);
  try {
    await runWrk(s.port, 1); // warm-up: the server's JIT, connection setup
    await runIolab(s.port, 1);
    const w: Run[] = [], i: Run[] = [];
    for (let k = 0; k < RUNS; k++) {
      w.push(await runWrk(s.port, DURATION));
      i.push(await runIolab(s.port, DURATION));
      process.stderr.write(
        `  ${srv.name} run ${k + 1}/${RUNS}: wrk ${w[k]!.rps.toFixed(0)} req/s (${w[k]!.cpuUsPerReq.toFixed(2)} us CPU/req), ` +
          `iolab load (${[...ran].join(', ')}) ${i[k]!.rps.toFixed(0)} req/s (${i[k]!.cpuUsPerReq.toFixed(2)} us CPU/req)\n`,
      );
    }
    const mw = median(w.map((r) => r.rps)), mi = median(i.map((r) => r.rps));
    rows.push({
      server: srv.name, wrk: mw, iolab: mi, ratio: mi / mw, wrkRuns: w.map((r) => r.rps), iolabRuns: i.map((r) => r.rps),
      wrkCpuUsPerReq: median(w.map((r) => r.cpuUsPerReq)), iolabCpuUsPerReq: median(i.map((r) => r.cpuUsPerReq)),
      wrkErrors: w.reduce((a, r) => a + r.errors, 0), iolabErrors: i.reduce((a, r) => a + r.errors, 0),
    });
  } finally {
    await stop(s.child);
    s.cleanup?.();
  }
}

const backendRan = [...ran].join(', ');
if (values.json) {
  process.stdout.write(JSON.stringify({ duration: DURATION, runs: RUNS, connections: CONNS, pipeline: PIPE, backend: { asked: BACKEND, ran: backendRan }, rows }, null, 2) + '\n');
} else {
  process.stdout.write(`\nclosed loop, ${CONNS} connections, pipeline ${PIPE}, ${DURATION} s, median of ${RUNS}; server on CPU ${SCPU}, client on CPU ${CCPU}\n`);
  process.stdout.write(`iolab load backend: ${backendRan || 'none ran'}${BACKEND !== 'auto' || ran.size !== 1 ? ` (asked: ${BACKEND})` : ' (auto)'}\n`);
  process.stdout.write(`${'server'.padEnd(18)} ${'wrk req/s'.padStart(11)} ${'iolab req/s'.padStart(12)} ${'iolab/wrk'.padStart(10)} ${'CPU us/req: wrk'.padStart(16)} ${'iolab'.padStart(6)}\n`);
  for (const r of rows) {
    const errs = r.wrkErrors + r.iolabErrors > 0 ? `  (errors: wrk ${r.wrkErrors}, iolab ${r.iolabErrors})` : '';
    process.stdout.write(
      `${r.server.padEnd(18)} ${r.wrk.toFixed(0).padStart(11)} ${r.iolab.toFixed(0).padStart(12)} ${`${r.ratio.toFixed(2)}x`.padStart(10)} ` +
        `${r.wrkCpuUsPerReq.toFixed(2).padStart(16)} ${r.iolabCpuUsPerReq.toFixed(2).padStart(6)}${errs}\n`,
    );
  }
}
