/**
 * RESP: iolab's `kv` app on the epoll and io_uring engines against redis-server, all driven by
 * redis-benchmark (SET and GET, 50 connections, 3 B values, random keys over a 100k keyspace) at
 * pipeline 1 and 16. Each server is pinned to --server-cpu (0), redis-benchmark to --client-cpu (1);
 * the servers run side by side (an idle one costs nothing) and each measured round visits every
 * server in turn, so a noisy neighbour hits them alike. The median of --runs rounds counts.
 *
 * Prints req/s for SET and GET per server and pipeline, the server's CPU time per request (user +
 * system of its whole process tree over the run: it ranks servers even when the client is the
 * bottleneck), and kv/redis ratios beside the targets: >= 1.0x at -P 1, >= 0.5x at -P 16.
 *
 * Requests per run: --requests if given (-P 1; -P 16 runs 10x as many), otherwise what the warm-up
 * rate says fills --duration seconds, the same for every server.
 *
 * `--client iolab` runs the same tests with iolab's load generator (SET or GET alone, the same keys and
 * values, --duration seconds a run) instead of redis-benchmark: redis-benchmark on one core tops out
 * near 90k req/s at -P 1, where every server here waits for it; iolab's client needs less CPU per
 * request, so the servers can be the limit.
 *
 *   npm run bench:resp -- [--duration 5] [--runs 3] [--connections 50] [--data-size 3] [--keyspace 100000]
 *     [--requests N] [--servers epoll,io_uring,redis] [--client redis-benchmark|iolab] [--pipelines 1,16] [--json]
 */
import { parseArgs } from 'node:util';
import { spawnChild } from '../src/lab/children.js';
import { peerByName } from '../src/lab/peers.js';
import { startEngine, startPeer, type Running } from '../src/lab/targets.js';
import { runLoad } from '../src/loadgen/index.js';
import { cpuSeconds, has, median, usageOnHelp } from './lib/util.js';

usageOnHelp(import.meta.url);
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    runs: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    'data-size': { type: 'string', default: '3' },
    keyspace: { type: 'string', default: '100000' },
    requests: { type: 'string' },
    servers: { type: 'string', default: 'epoll,io_uring,redis' },
    'server-cpu': { type: 'string', default: '0' },
    'client-cpu': { type: 'string', default: '1' },
    client: { type: 'string', default: 'redis-benchmark' },
    pipelines: { type: 'string', default: '1,16' },
    json: { type: 'boolean', default: false },
  },
});
const CLIENT = values.client!;
if (CLIENT !== 'redis-benchmark' && CLIENT !== 'iolab') {
  process.stderr.write(`bench:resp: --client is redis-benchmark or iolab (got ${JSON.stringify(CLIENT)})\n`);
  process.exit(2);
}
const DURATION = Number(values.duration), RUNS = Number(values.runs), CONNS = values.connections!, DATA = values['data-size']!, KEYS = values.keyspace!;
const SCPU = Number(values['server-cpu']), CCPU = values['client-cpu']!;
const PIPELINES = values.pipelines!.split(',').map(Number);
if (PIPELINES.some((p) => !Number.isInteger(p) || p < 1)) {
  process.stderr.write(`bench:resp: --pipelines takes positive integers, e.g. 1,16 (got ${values.pipelines})\n`);
  process.exit(2);
}
const TESTS = ['set', 'get'] as const;
/** Issue 7's targets: >= 1.0x redis-server at -P 1, >= 0.5x when pipelined. */
const target = (pipeline: number): number => (pipeline === 1 ? 1.0 : 0.5);

for (const c of CLIENT === 'iolab' ? ['taskset'] : ['redis-benchmark', 'taskset']) {
  if (!has(c)) {
    process.stderr.write(`bench:resp needs ${c} (apt-get install ${c === 'taskset' ? 'util-linux' : 'redis-tools'})\n`);
    process.exit(2);
  }
}

interface Server { name: string; run: Running }
const servers: Server[] = [];
const wanted = values.servers!.split(',');
const stopAll = async (): Promise<void> => {
  for (const s of servers) await s.run.stop();
};
try {
  for (const engine of ['epoll', 'io_uring']) {
    if (!wanted.includes(engine)) continue;
    const run = await startEngine({ engine, protocol: 'resp', cpu: SCPU });
    // io_uring falls back to epoll where the kernel refuses it: say so in the row's name.
    servers.push({ name: run.target.ran === engine ? `kv ${engine}` : `kv ${engine} (ran ${run.target.ran})`, run });
  }
  if (wanted.includes('redis')) {
    const spec = peerByName('redis-server')!;
    if (spec.binary()) servers.push({ name: 'redis-server', run: await startPeer(spec, SCPU) });
    else process.stderr.write('redis-server not installed (apt-get install redis-server): no redis row, no ratios\n');
  }
} catch (e) {
  await stopAll();
  throw e;
}

interface Run { rps: number; cpuUsPerReq: number; requests: number }

/** The redis-benchmark test as the load generator's command template. */
const COMMAND: Record<string, string> = { set: 'SET key:__rand_int__ __data__', get: 'GET key:__rand_int__' };

/** One run of iolab's load generator (in this process, pinned to the client CPU) for `seconds`. */
async function benchIolab(s: Server, test: string, pipeline: number, seconds: number): Promise<Run> {
  const c0 = cpuSeconds(s.run.pid);
  const r = await runLoad({
    mode: 'closed', targets: s.run.url, protocol: 'resp', connections: Number(CONNS), pipeline, duration: seconds, cpus: CCPU,
    commands: [COMMAND[test]!], keyspace: Number(KEYS), dataSize: Number(DATA), deadline: seconds + 15, maxErrors: '1%',
  });
  const c1 = cpuSeconds(s.run.pid);
  if (r.errors.total > 0 || r.requests.completed === 0) throw new Error(`iolab load against ${s.name}: ${r.errors.total} errors, ${r.requests.completed} replies`);
  return { rps: r.requests.perSec, cpuUsPerReq: ((c1 - c0) / r.requests.completed) * 1e6, requests: r.requests.completed };
}

/** One run against `s` with the chosen client; `n` requests (redis-benchmark) or DURATION seconds (iolab). */
function bench(s: Server, test: string, pipeline: number, n: number, warm = false): Promise<Run> {
  if (CLIENT === 'iolab') return benchIolab(s, test, pipeline, warm ? 1 : DURATION);
  return benchRedis(s, test, pipeline, n);
}

/** One redis-benchmark run against `s`; the server's CPU time is read around it. */
function benchRedis(s: Server, test: string, pipeline: number, n: number): Promise<Run> {
  const args = ['-c', CCPU, 'redis-benchmark', '-p', String(s.run.port), '-t', test, '-n', String(n), '-c', CONNS, '-P', String(pipeline), '-r', KEYS, '-d', DATA, '--csv'];
  const c0 = cpuSeconds(s.run.pid);
  const child = spawnChild('taskset', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (err += d));
  return new Promise((resolve, reject) =>
    child.once('exit', (code) => {
      const c1 = cpuSeconds(s.run.pid);
      // --csv: a header, then "SET","123456.79",... per test.
      const row = out.split('\n').find((l) => l.toUpperCase().startsWith(`"${test.toUpperCase()}"`));
      const rps = Number(row?.split(',')[1]?.replace(/"/g, '') ?? NaN);
      if (code !== 0 || !Number.isFinite(rps)) return reject(new Error(`redis-benchmark against ${s.name} exited ${code}: ${(out + err).trim().slice(-400)}`));
      resolve({ rps, cpuUsPerReq: ((c1 - c0) / n) * 1e6, requests: n });
    }),
  );
}

interface Row {
  test: string; pipeline: number; server: string; requests: number; rps: number; cpuUsPerReq: number; runs: number[];
  /** rps / redis-server's rps (null for redis itself, or without redis). */
  vsRedis: number | null; target: number;
}
const rows: Row[] = [];
try {
  for (const pipeline of PIPELINES) {
    for (const test of TESTS) {
      // Warm-up (JIT, keyspace filled by SET) and the rate that sizes the measured runs.
      const warm: number[] = [];
      for (const s of servers) warm.push((await bench(s, test, pipeline, 20_000 * Math.min(pipeline, 8), true)).rps);
      const n = values.requests ? Number(values.requests) * (pipeline > 1 ? 10 : 1) : Math.max(10_000, Math.round((median(warm) * DURATION) / 1000) * 1000);
      const runs = new Map<Server, Run[]>(servers.map((s) => [s, []]));
      for (let k = 0; k < RUNS; k++) {
        for (const s of servers) {
          const r = await bench(s, test, pipeline, n);
          runs.get(s)!.push(r);
          process.stderr.write(`  ${test.toUpperCase()} -P ${pipeline} run ${k + 1}/${RUNS} ${s.name}: ${r.rps.toFixed(0)} req/s, ${r.cpuUsPerReq.toFixed(2)} us CPU/req\n`);
        }
      }
      const redisRps = servers.find((s) => s.name === 'redis-server');
      const redisMedian = redisRps ? median(runs.get(redisRps)!.map((r) => r.rps)) : null;
      for (const s of servers) {
        const rs = runs.get(s)!;
        const rps = median(rs.map((r) => r.rps));
        rows.push({
          test: test.toUpperCase(), pipeline, server: s.name, requests: median(rs.map((r) => r.requests)), rps, cpuUsPerReq: median(rs.map((r) => r.cpuUsPerReq)), runs: rs.map((r) => r.rps),
          vsRedis: redisMedian && s.name !== 'redis-server' ? rps / redisMedian : null, target: target(pipeline),
        });
      }
    }
  }
} finally {
  await stopAll();
}

if (values.json) {
  process.stdout.write(JSON.stringify({ client: CLIENT, duration: DURATION, runs: RUNS, connections: Number(CONNS), dataSize: Number(DATA), keyspace: Number(KEYS), serverCpu: SCPU, clientCpu: CCPU, rows }, null, 2) + '\n');
} else {
  process.stdout.write(
    `\n${CLIENT === 'iolab' ? `iolab load -c ${CONNS} -d ${DURATION}, SET or GET of ${DATA} B over ${KEYS} keys` : `redis-benchmark -c ${CONNS} -d ${DATA} -r ${KEYS} -t set|get`}, -P ${PIPELINES.join(' and -P ')}; ` +
      `median of ${RUNS} rounds; every server on CPU ${SCPU}, ${CLIENT} on CPU ${CCPU}\n`,
  );
  process.stdout.write(`${'test'.padEnd(9)}${'server'.padEnd(16)}${'requests'.padStart(10)}${'req/s'.padStart(10)}${'CPU us/req'.padStart(12)}${'kv/redis'.padStart(10)}${'  target'}\n`);
  for (const r of rows) {
    const ratio = r.vsRedis === null ? '' : `${r.vsRedis.toFixed(2)}x`;
    const verdict = r.vsRedis === null ? '' : `>= ${r.target.toFixed(1)}x ${r.vsRedis >= r.target ? 'met' : 'not met'}`;
    process.stdout.write(
      `${`${r.test} -P${r.pipeline}`.padEnd(9)}${r.server.padEnd(16)}${String(r.requests).padStart(10)}${r.rps.toFixed(0).padStart(10)}${r.cpuUsPerReq.toFixed(2).padStart(12)}` +
        `${ratio.padStart(10)}  ${verdict}\n`,
    );
  }
}
