/**
 * `iolab load` against redis-benchmark on the same redis-server: SET and GET, pipeline 1 and 16,
 * same connections, keyspace and value size. redis-server pinned to one CPU, the client to the other;
 * runs alternate and the median of `--runs` counts. Prints both req/s and iolab/redis-benchmark.
 * The issue's target: within 10%.
 *
 *   node dist/bench/load-vs-redis-benchmark.js [--requests 200000] [--runs 3] [--connections 50] [--json]
 */
import type { ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import { CLI, freePort, has, median, reapOnExit, spawnPinned, stop, waitPort } from './lib/util.js';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '200000' },
    runs: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    keyspace: { type: 'string', default: '100000' },
    'data-size': { type: 'string', default: '3' },
    'server-cpu': { type: 'string', default: '0' },
    'client-cpu': { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  },
});
const N = Number(values.requests), RUNS = Number(values.runs), CONNS = values.connections!, KEYS = values.keyspace!, DATA = values['data-size']!;
const SCPU = values['server-cpu']!, CCPU = values['client-cpu']!;
const children: ChildProcess[] = [];
reapOnExit(() => children);

for (const c of ['redis-server', 'redis-benchmark']) {
  if (!has(c)) {
    process.stderr.write(`load-vs-redis-benchmark needs ${c} (apt-get install redis-server redis-tools)\n`);
    process.exit(2);
  }
}

function collect(child: ChildProcess): Promise<string> {
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  return new Promise((resolve, reject) =>
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${child.spawnargs.join(' ')} exited ${code}: ${out}`)))),
  );
}

// redis-benchmark's commands for -t set / -t get with -r: `SET key:__rand_int__ <data>` and `GET key:__rand_int__`.
const TESTS: Record<string, string> = { set: 'SET key:__rand_int__ __data__', get: 'GET key:__rand_int__' };

async function redisBenchmark(port: number, test: string, pipeline: number, n: number): Promise<number> {
  const out = await collect(
    spawnPinned(CCPU, 'redis-benchmark', ['-p', String(port), '-t', test, '-n', String(n), '-c', CONNS, '-P', String(pipeline), '-r', KEYS, '-d', DATA, '--csv'], { stdio: 'pipe' }),
  );
  // --csv: "test","rps",... then one row per test: "SET","123456.79",...
  const row = out.split('\n').find((l) => l.toUpperCase().startsWith(`"${test.toUpperCase()}"`));
  return Number(row?.split(',')[1]?.replace(/"/g, '') ?? NaN);
}

async function iolab(port: number, test: string, pipeline: number, n: number): Promise<{ rps: number; errors: number }> {
  const out = await collect(
    spawnPinned(CCPU, process.execPath, [CLI, 'load', `redis://127.0.0.1:${port}`, '--command', TESTS[test]!, '-c', CONNS, '-p', String(pipeline),
      '-n', String(n), '--keyspace', KEYS, '--data-size', DATA, '--json', '--quiet', '--max-errors', '1000000000'], { stdio: 'pipe' }),
  );
  const j = JSON.parse(out) as { requests: { perSec: number }; errors: { total: number } };
  return { rps: j.requests.perSec, errors: j.errors.total };
}

const port = await freePort();
const redis = spawnPinned(SCPU, 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
children.push(redis);
await waitPort(port);

interface Row { test: string; pipeline: number; redisBenchmark: number; iolab: number; ratio: number; rbRuns: number[]; iolabRuns: number[]; errors: number }
const rows: Row[] = [];
try {
  for (const pipeline of [1, 16]) {
    const n = pipeline === 1 ? N : N * 5;
    for (const test of ['set', 'get']) {
      await redisBenchmark(port, test, pipeline, Math.ceil(n / 10)); // warm-up
      await iolab(port, test, pipeline, Math.ceil(n / 10));
      const rb: number[] = [], io: number[] = [];
      let errors = 0;
      for (let k = 0; k < RUNS; k++) {
        rb.push(await redisBenchmark(port, test, pipeline, n));
        const r = await iolab(port, test, pipeline, n);
        io.push(r.rps);
        errors += r.errors;
        process.stderr.write(`  ${test.toUpperCase()} -P ${pipeline} run ${k + 1}/${RUNS}: redis-benchmark ${rb[k]!.toFixed(0)}, iolab load ${r.rps.toFixed(0)} req/s\n`);
      }
      const a = median(rb), b = median(io);
      rows.push({ test: test.toUpperCase(), pipeline, redisBenchmark: a, iolab: b, ratio: b / a, rbRuns: rb, iolabRuns: io, errors });
    }
  }
} finally {
  await stop(redis);
}

if (values.json) process.stdout.write(JSON.stringify({ requests: N, runs: RUNS, connections: Number(CONNS), rows }, null, 2) + '\n');
else {
  process.stdout.write(`\nredis-server on CPU ${SCPU}, client on CPU ${CCPU}; ${CONNS} connections, keyspace ${KEYS}, ${DATA} B values, median of ${RUNS}\n`);
  process.stdout.write(`${'test'.padEnd(10)} ${'redis-benchmark'.padStart(16)} ${'iolab load'.padStart(11)} ${'iolab/rb'.padStart(9)} errors\n`);
  for (const r of rows) {
    process.stdout.write(`${`${r.test} -P${r.pipeline}`.padEnd(10)} ${r.redisBenchmark.toFixed(0).padStart(16)} ${r.iolab.toFixed(0).padStart(11)} ${`${r.ratio.toFixed(2)}x`.padStart(9)} ${r.errors}\n`);
  }
}
