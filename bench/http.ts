/**
 * HTTP plaintext keep-alive: wrk (1 thread, 100 connections) against iolab epoll and io_uring `hello`,
 * node:http, and nginx with one worker when installed. Every server is pinned to one CPU and wrk to
 * the other. All servers start first; then each round measures every server once, in turn, so a noisy
 * moment of a shared machine lands on all of them rather than on one; the median of `--runs` rounds
 * counts. Prints req/s, the server's CPU time per request (which ranks servers even when the client
 * is the bottleneck) with its user-space part (the server's own code; the rest is the kernel's
 * TCP, about the same for every server), and the ratios issue 7 sets targets for (epoll >= 1.0x nginx, io_uring >= 1.1x
 * epoll, both >= 2.5x node:http). `--pipeline 16` sends 16 requests per round trip (a wrk Lua script).
 * `--baseline <dir>` adds the epoll and io_uring rows of another build (its `dist` directory, e.g. a
 * copy made before a change) to the same interleaved rounds: a before/after comparison that a busy
 * machine cannot skew one way, since both sides see the same moments.
 *
 * `--client iolab` drives the servers with iolab's load generator instead of wrk: it needs less CPU
 * per request than wrk, so where wrk's one core is the limit the servers can be.
 *
 *   npm run bench:http -- [--duration 5] [--runs 3] [--connections 100] [--pipeline 1] [--only epoll]
 *                         [--baseline /tmp/iolab-before/dist] [--client wrk|iolab] [--json]
 */
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadgen } from '../src/lab/load.js';
import { peerByName } from '../src/lab/peers.js';
import { startPeer } from '../src/lab/targets.js';
import { parseArgs } from 'node:util';
import { sampleTree } from '../src/probe/index.js';
import { freePort, has, median, reapOnExit, spawnPinned, startIolab, stop, waitPort, usageOnHelp, wrkDuration } from './lib/util.js';

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
    baseline: { type: 'string' },
    client: { type: 'string', default: 'wrk' },
    json: { type: 'boolean', default: false },
  },
});
const CLIENT = values.client!;
if (CLIENT !== 'wrk' && CLIENT !== 'iolab') {
  process.stderr.write(`bench:http: --client is wrk or iolab (got ${JSON.stringify(CLIENT)})\n`);
  process.exit(2);
}
const DURATION = Number(values.duration), RUNS = Number(values.runs), CONNS = Number(values.connections);
const PIPELINE = Number(values.pipeline);
const SCPU = values['server-cpu']!, CCPU = values['client-cpu']!;
const children: ChildProcess[] = [];
reapOnExit(() => children);

if (CLIENT === 'wrk' && !has('wrk')) {
  process.stderr.write('bench:http needs wrk (apt-get install wrk), or --client iolab\n');
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
    name: 'iolab io_uring',
    async start() {
      const s = await startIolab(SCPU, ['--engine', 'io_uring', '--app', 'hello']);
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

// Another build's CLI (--baseline): started as startIolab() starts this one.
if (values.baseline) {
  const dir = resolve(values.baseline);
  const cli = [join(dir, 'src/cli/main.js'), join(dir, 'dist/src/cli/main.js')].find((f) => existsSync(f));
  if (!cli) {
    process.stderr.write(`--baseline ${values.baseline}: no src/cli/main.js there (give a build's dist directory)\n`);
    process.exit(2);
  }
  for (const engine of ['epoll', 'io_uring']) {
    servers.push({
      name: `iolab ${engine} (baseline)`,
      async start() {
        const child = spawnPinned(SCPU, process.execPath, [cli, 'serve', '--port', '0', '--json', '--quiet', '--engine', engine, '--app', 'hello'], { stdio: 'pipe' });
        const line = await new Promise<string>((res, rej) => {
          createInterface({ input: child.stdout! }).once('line', res);
          child.once('exit', (code) => rej(new Error(`baseline iolab serve exited with ${code}`)));
        });
        return { port: (JSON.parse(line) as { port: number }).port, child, pids: () => [child.pid!] };
      },
    });
  }
}

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

// wrk pipelines through a Lua script (its scripts/pipeline.lua): one buffer of N requests per round trip.
const luaDir = mkdtempSync(join(tmpdir(), 'iolab-bench-http-'));
const lua = join(luaDir, 'pipeline.lua');
// Built in init(): at the top level of the script wrk has not set the Host header yet.
writeFileSync(lua, `init = function(args)
  local r = {}
  for i = 1, ${PIPELINE} do r[i] = wrk.format(nil, "/") end
  req = table.concat(r)
end
request = function() return req end
`);
process.on('exit', () => rmSync(luaDir, { recursive: true, force: true }));

function runWrk(port: number, seconds: number): Promise<{ rps: number; errors: string }> {
  return new Promise((resolve, reject) => {
    const pipe = PIPELINE > 1 ? ['-s', lua] : [];
    const w = spawnPinned(CCPU, 'wrk', ['-t1', `-c${CONNS}`, wrkDuration(seconds), ...pipe, `http://127.0.0.1:${port}/`], { stdio: 'pipe' });
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

/**
 * iolab's own load generator as the client (--client iolab), in this process pinned to the client CPU:
 * it needs less CPU per request than wrk (io_uring: one syscall per loop turn), so where wrk on one
 * core is the limit (~130-140k req/s here) the servers can be.
 */
async function runIolab(port: number, seconds: number): Promise<{ rps: number; errors: string }> {
  const r = await loadgen({ url: `http://127.0.0.1:${port}/`, protocol: 'http', connections: CONNS, pipeline: PIPELINE, durationS: seconds, cpu: Number(CCPU) });
  const errors = Object.entries(r.errorsByKind).map(([k, n]) => `${k} ${n}`).join(', ');
  return { rps: r.rps, errors: errors ? `errors: ${errors}` : '' };
}

const runClient = (port: number, seconds: number): Promise<{ rps: number; errors: string }> => (CLIENT === 'iolab' ? runIolab(port, seconds) : runWrk(port, seconds));

/** CPU seconds of a set of process trees: [user + system, user]. */
function cpuOf(pids: number[]): [number, number] {
  let all = 0, user = 0;
  for (const p of pids) {
    const t = sampleTree(p);
    all += t.cpuUserS + t.cpuSysS;
    user += t.cpuUserS;
  }
  return [all, user];
}

/** cpuUsPerReq: user + system; userUsPerReq: user only (the server's own code, where the kernel's TCP is not). */
interface Row { name: string; rps: number; cpuUsPerReq: number; userUsPerReq: number; runs: number[]; errors: string }
type Started = Awaited<ReturnType<Server['start']>>;
const running: { srv: Server; s: Started; rps: number[]; cpu: number[]; user: number[]; errors: string }[] = [];
try {
  for (const srv of servers) {
    if (values.only && !srv.name.includes(values.only)) continue;
    const s = await srv.start();
    children.push(s.child);
    await runClient(s.port, 1); // warm-up: JIT, connection setup
    running.push({ srv, s, rps: [], cpu: [], user: [], errors: '' });
  }
  for (let i = 0; i < RUNS; i++) {
    for (const r of running) {
      const [c0, u0] = cpuOf(r.s.pids());
      const w = await runClient(r.s.port, DURATION);
      const [c1, u1] = cpuOf(r.s.pids());
      r.rps.push(w.rps);
      r.cpu.push(((c1 - c0) / (w.rps * DURATION)) * 1e6);
      r.user.push(((u1 - u0) / (w.rps * DURATION)) * 1e6);
      if (w.errors) r.errors = w.errors;
      process.stderr.write(`  round ${i + 1}/${RUNS} ${r.srv.name}: ${w.rps.toFixed(0)} req/s\n`);
    }
  }
} finally {
  for (const r of running) {
    await stop(r.s.child);
    r.s.cleanup?.();
  }
}
const rows: Row[] = running.map((r) => ({ name: r.srv.name, rps: median(r.rps), cpuUsPerReq: median(r.cpu), userUsPerReq: median(r.user), runs: r.rps, errors: r.errors }));

const by = (n: string): Row | undefined => rows.find((r) => r.name === n || (r.name.startsWith(`${n} (`) && !r.name.endsWith('(baseline)')));
const epoll = by('iolab epoll'), uring = by('iolab io_uring'), node = by('node:http'), nginx = by('nginx');
const epollBase = rows.find((r) => r.name === 'iolab epoll (baseline)'), uringBase = rows.find((r) => r.name === 'iolab io_uring (baseline)');
const ratios: { what: string; rps: number; cpu: number; target: number | null }[] = [];
const pair = (what: string, a: Row | undefined, b: Row | undefined, target: number | null): void => {
  if (a && b) ratios.push({ what, rps: a.rps / b.rps, cpu: b.cpuUsPerReq / a.cpuUsPerReq, target });
};
pair('epoll / nginx', epoll, nginx, PIPELINE === 1 ? 1.0 : null);
pair('io_uring / nginx', uring, nginx, null);
pair('io_uring / epoll', uring, epoll, PIPELINE === 1 ? 1.1 : null);
pair('epoll / node:http', epoll, node, PIPELINE === 1 ? 2.5 : null);
pair('io_uring / node:http', uring, node, PIPELINE === 1 ? 2.5 : null);
pair('epoll / its baseline', epoll, epollBase, null);
pair('io_uring / its baseline', uring, uringBase, null);

if (values.json) {
  process.stdout.write(JSON.stringify({ client: CLIENT, duration: DURATION, runs: RUNS, connections: CONNS, pipeline: PIPELINE, rows, ratios }, null, 2) + '\n');
} else {
  const client = CLIENT === 'wrk' ? `wrk -t1 -c${CONNS} -d${DURATION}s` : `iolab load -c ${CONNS} -d ${DURATION}`;
  process.stdout.write(`\n${client}${PIPELINE > 1 ? ` pipeline ${PIPELINE}` : ''}, median of ${RUNS} interleaved rounds; servers on CPU ${SCPU}, ${CLIENT} on CPU ${CCPU}\n`);
  process.stdout.write(`${'server'.padEnd(26)} ${'req/s'.padStart(10)} ${'CPU us/req'.padStart(11)} ${'(user)'.padStart(7)}   runs\n`);
  for (const r of rows) {
    process.stdout.write(`${r.name.padEnd(26)} ${r.rps.toFixed(0).padStart(10)} ${r.cpuUsPerReq.toFixed(2).padStart(11)} ${r.userUsPerReq.toFixed(2).padStart(7)}   ${r.runs.map((x) => x.toFixed(0)).join(' ')}${r.errors ? `  (${r.errors})` : ''}\n`);
  }
  process.stdout.write(`\n${'ratio'.padEnd(24)} ${'req/s'.padStart(7)} ${'1/CPU'.padStart(7)}  target (req/s)\n`);
  for (const x of ratios) {
    const t = x.target === null ? '' : `>= ${x.target.toFixed(1)}x ${x.rps >= x.target ? 'met' : 'missed'}`;
    process.stdout.write(`${x.what.padEnd(24)} ${(x.rps.toFixed(2) + 'x').padStart(7)} ${(x.cpu.toFixed(2) + 'x').padStart(7)}  ${t}\n`);
  }
}
