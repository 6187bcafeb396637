/**
 * HTTP plaintext keep-alive: wrk (1 thread, 100 connections) against iolab epoll `hello`, node:http,
 * and nginx with one worker when installed. Server on one CPU, wrk on the other; each server runs
 * `--runs` times and the median counts. Prints req/s, the server's CPU time per request (which ranks
 * servers even when the client is the bottleneck), and ratios against epoll.
 *
 *   npm run bench:http -- [--duration 5] [--runs 3] [--connections 100] [--json]
 */
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from 'node:url';
import { peerByName } from '../src/lab/peers.js';
import { startPeer } from '../src/lab/targets.js';
import { parseArgs } from 'node:util';
import { cpuSeconds, freePort, has, median, reapOnExit, spawnPinned, startIolab, stop, waitPort } from './lib/util.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    runs: { type: 'string', default: '3' },
    connections: { type: 'string', default: '100' },
    'server-cpu': { type: 'string', default: '0' },
    'client-cpu': { type: 'string', default: '1' },
    only: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const DURATION = Number(values.duration), RUNS = Number(values.runs), CONNS = Number(values.connections);
const SCPU = values['server-cpu']!, CCPU = values['client-cpu']!;
const children: ChildProcess[] = [];
reapOnExit(() => children);

if (!has('wrk')) {
  process.stderr.write('bench:http needs wrk (apt-get install wrk)\n');
  process.exit(2);
}

interface Server {
  name: string;
  start(): Promise<{ port: number; pids: () => number[]; child: ChildProcess; cleanup?: () => void }>;
}

const servers: Server[] = [
  {
    name: 'iolab epoll',
    async start() {
      const s = await startIolab(SCPU, ['--engine', 'epoll', '--app', 'hello']);
      return { port: s.port, child: s.child, pids: () => [s.child.pid!] };
    },
  },
  {
    name: 'node:http',
    async start() {
      const port = await freePort();
      const child = spawnPinned(SCPU, process.execPath, [fileURLToPath(new URL('./peers/node-http.js', import.meta.url)), String(port)]);
      await waitPort(port);
      return { port, child, pids: () => [child.pid!] };
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
      return { port: r.port, child: r.child, pids: () => [r.pid], cleanup: () => void r.stop() };
    },
  });
} else process.stderr.write('nginx not installed (apt-get install nginx-light): skipping the nginx row\n');

function runWrk(port: number, seconds: number): Promise<{ rps: number; errors: string }> {
  return new Promise((resolve, reject) => {
    const w = spawnPinned(CCPU, 'wrk', ['-t1', `-c${CONNS}`, `-d${seconds}s`, `http://127.0.0.1:${port}/`], { stdio: 'pipe' });
    children.push(w);
    let out = '';
    w.stdout!.on('data', (d: Buffer) => (out += d));
    w.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`wrk exited ${code}: ${out}`));
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
      const errors = [/Socket errors:.*/.exec(out)?.[0], /Non-2xx.*/.exec(out)?.[0]].filter(Boolean).join('; ');
      resolve({ rps, errors });
    });
  });
}

interface Row { name: string; rps: number; cpuUsPerReq: number; runs: number[]; errors: string }
const rows: Row[] = [];
for (const srv of servers) {
  if (values.only && !srv.name.includes(values.only)) continue;
  const s = await srv.start();
  children.push(s.child);
  try {
    await runWrk(s.port, 1); // warm-up: JIT, connection setup
    const rps: number[] = [], cpu: number[] = [];
    let errors = '';
    for (let i = 0; i < RUNS; i++) {
      const c0 = s.pids().reduce((a, p) => a + cpuSeconds(p), 0);
      const r = await runWrk(s.port, DURATION);
      const c1 = s.pids().reduce((a, p) => a + cpuSeconds(p), 0);
      rps.push(r.rps);
      cpu.push(((c1 - c0) / (r.rps * DURATION)) * 1e6);
      if (r.errors) errors = r.errors;
      process.stderr.write(`  ${srv.name} run ${i + 1}/${RUNS}: ${r.rps.toFixed(0)} req/s\n`);
    }
    rows.push({ name: srv.name, rps: median(rps), cpuUsPerReq: median(cpu), runs: rps, errors });
  } finally {
    await stop(s.child);
    s.cleanup?.();
  }
}

const base = rows.find((r) => r.name === 'iolab epoll');
if (values.json) {
  process.stdout.write(JSON.stringify({ duration: DURATION, runs: RUNS, connections: CONNS, rows }, null, 2) + '\n');
} else {
  process.stdout.write(`\nwrk -t1 -c${CONNS} -d${DURATION}s, median of ${RUNS}; server on CPU ${SCPU}, wrk on CPU ${CCPU}\n`);
  process.stdout.write(`${'server'.padEnd(20)} ${'req/s'.padStart(10)} ${'CPU us/req'.padStart(11)} ${'epoll is'.padStart(10)}\n`);
  for (const r of rows) {
    const ratio = base ? `${(base.rps / r.rps).toFixed(2)}x` : '';
    process.stdout.write(`${r.name.padEnd(20)} ${r.rps.toFixed(0).padStart(10)} ${r.cpuUsPerReq.toFixed(2).padStart(11)} ${ratio.padStart(10)}${r.errors ? `  (${r.errors})` : ''}\n`);
  }
}
