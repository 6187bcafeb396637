/**
 * `--workers` scaling: iolab's epoll and io_uring engines with 1 and with 2 event loops (threads of
 * one process sharing the port through SO_REUSEPORT), and nginx with 1 and 2 worker processes as the
 * reference for what this machine's cores can give. HTTP hello, wrk with --wrk-threads (1) thread
 * and 100 keep-alive connections, median of --runs rounds; each round visits every server in turn.
 *
 * The setup, as printed with the results: a 2-worker server cannot be held to one CPU, so NOTHING is
 * pinned here: servers and wrk share all the machine's CPUs (2 here). wrk's own CPU comes out of the
 * same cores, so a perfect 2.0x is out of reach; the nginx rows show what is reachable. The server's
 * CPU time per request (user + system of its whole tree over the run) and the cores it kept busy are
 * printed beside req/s, and the scaling factor w2/w1 per server.
 *
 *   npm run bench:workers -- [--duration 5] [--runs 3] [--connections 100] [--wrk-threads 1] [--servers epoll,io_uring,nginx] [--json]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnChild } from '../src/lab/children.js';
import { peerByName, type PeerSpec } from '../src/lab/peers.js';
import { startEngine, startPeer, type Running } from '../src/lab/targets.js';
import { cpuSeconds, has, machineCpu, median, usageOnHelp, wrkDuration } from './lib/util.js';

usageOnHelp(import.meta.url);
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    runs: { type: 'string', default: '3' },
    connections: { type: 'string', default: '100' },
    'wrk-threads': { type: 'string', default: '1' },
    servers: { type: 'string', default: 'epoll,io_uring,nginx' },
    json: { type: 'boolean', default: false },
  },
});
const DURATION = Number(values.duration), RUNS = Number(values.runs), CONNS = Number(values.connections), WT = Number(values['wrk-threads']);
const NCPU = cpus().length;
if (!has('wrk')) {
  process.stderr.write('bench:workers needs wrk (apt-get install wrk)\n');
  process.exit(2);
}
const wanted = values.servers!.split(',');

/** nginx from the lab's peer config with `worker_processes` rewritten: one config for every bench. */
function nginxWith(workers: number): PeerSpec {
  const base = peerByName('nginx')!;
  return {
    ...base,
    command(bin, dir, port) {
      const c = base.command(bin, dir, port);
      const conf = join(dir, 'nginx.conf');
      const text = readFileSync(conf, 'utf8');
      if (!/worker_processes 1;/.test(text)) throw new Error('the lab nginx config no longer says "worker_processes 1;": update bench/workers.ts');
      writeFileSync(conf, text.replace('worker_processes 1;', `worker_processes ${workers};`));
      return c;
    },
  };
}

interface Server { name: string; group: string; workers: number; run: Running }
const servers: Server[] = [];
const stopAll = async (): Promise<void> => {
  for (const s of servers) await s.run.stop();
};
try {
  for (const engine of ['epoll', 'io_uring']) {
    if (!wanted.includes(engine)) continue;
    for (const w of [1, 2]) {
      const run = await startEngine({ engine, protocol: 'http', cpu: null, extra: ['--workers', String(w)] });
      const name = run.target.ran === engine ? engine : `${engine} (ran ${run.target.ran})`;
      servers.push({ name: `iolab ${name} w${w}`, group: `iolab ${name}`, workers: w, run });
    }
  }
  if (wanted.includes('nginx')) {
    if (peerByName('nginx')!.binary()) {
      for (const w of [1, 2]) servers.push({ name: `nginx w${w}`, group: 'nginx', workers: w, run: await startPeer(nginxWith(w), null) });
    } else process.stderr.write('nginx not installed (apt-get install nginx-light): no reference rows\n');
  }
} catch (e) {
  await stopAll();
  throw e;
}

interface Run { rps: number; cpuUsPerReq: number; serverCores: number; wrkCores: number; otherCores: number; errors: string }

const TIME = has('/usr/bin/time') ? ['/usr/bin/time', '-f', 'IOLAB_TIME %U %S'] : [];

/** One wrk run; the server's CPU, wrk's CPU (/usr/bin/time) and the whole machine's are read around it. */
function wrk(s: Server, seconds: number): Promise<Run> {
  const c0 = cpuSeconds(s.run.pid);
  const m0 = machineCpu();
  const t0 = performance.now();
  const argv = [...TIME, 'wrk', `-t${WT}`, `-c${CONNS}`, wrkDuration(seconds), s.run.url];
  const w = spawnChild(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  w.stdout!.on('data', (d: Buffer) => (out += d));
  w.stderr!.on('data', (d: Buffer) => (err += d));
  return new Promise((resolve, reject) =>
    w.once('exit', (code) => {
      const c1 = cpuSeconds(s.run.pid);
      const m1 = machineCpu();
      const wall = (performance.now() - t0) / 1000;
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
      const total = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
      if (code !== 0 || !Number.isFinite(rps)) return reject(new Error(`wrk against ${s.name} exited ${code}: ${(out + err).trim().slice(-300)}`));
      const t = /IOLAB_TIME ([\d.]+) ([\d.]+)/.exec(err);
      const wrkCores = t ? (Number(t[1]) + Number(t[2])) / wall : NaN;
      const serverCores = (c1 - c0) / wall;
      const errors = [/Socket errors:.*/.exec(out)?.[0], /Non-2xx.*/.exec(out)?.[0]].filter(Boolean).join('; ');
      resolve({ rps, cpuUsPerReq: ((c1 - c0) / total) * 1e6, serverCores, wrkCores, otherCores: Math.max(0, (m1.busyS - m0.busyS) / wall - serverCores - (wrkCores || 0)), errors });
    }),
  );
}

interface Row {
  name: string; group: string; workers: number; rps: number; cpuUsPerReq: number; serverCores: number; wrkCores: number; otherCores: number;
  runs: number[]; errors: string; scaling: number | null;
}
const rows: Row[] = [];
try {
  for (const s of servers) await wrk(s, 1); // warm-up: JIT, connection setup
  const runs = new Map<Server, Run[]>(servers.map((s) => [s, []]));
  for (let k = 0; k < RUNS; k++) {
    for (const s of servers) {
      const r = await wrk(s, DURATION);
      runs.get(s)!.push(r);
      process.stderr.write(
        `  round ${k + 1}/${RUNS} ${s.name}: ${r.rps.toFixed(0)} req/s, ${r.cpuUsPerReq.toFixed(2)} us CPU/req; cores busy: server ${r.serverCores.toFixed(2)}, wrk ${r.wrkCores.toFixed(2)}, others ${r.otherCores.toFixed(2)}\n`,
      );
    }
  }
  for (const s of servers) {
    const rs = runs.get(s)!;
    rows.push({
      name: s.name, group: s.group, workers: s.workers, rps: median(rs.map((r) => r.rps)), cpuUsPerReq: median(rs.map((r) => r.cpuUsPerReq)),
      serverCores: median(rs.map((r) => r.serverCores)), wrkCores: median(rs.map((r) => r.wrkCores)), otherCores: median(rs.map((r) => r.otherCores)),
      runs: rs.map((r) => r.rps), errors: rs.map((r) => r.errors).filter(Boolean)[0] ?? '', scaling: null,
    });
  }
  for (const r of rows) {
    const w1 = rows.find((x) => x.group === r.group && x.workers === 1);
    if (r.workers === 2 && w1) r.scaling = r.rps / w1.rps;
  }
} finally {
  await stopAll();
}

const setup =
  `wrk -t${WT} -c${CONNS} -d${DURATION}s, HTTP hello, median of ${RUNS} rounds. Nothing pinned: servers and wrk share the machine's ${NCPU} CPUs ` +
  `(a 2-worker server cannot be held to one CPU), so wrk's CPU comes out of the same cores and 2.0x is out of reach; nginx shows what is reachable.`;
if (values.json) {
  process.stdout.write(JSON.stringify({ setup, cpus: NCPU, duration: DURATION, runs: RUNS, connections: CONNS, wrkThreads: WT, rows }, null, 2) + '\n');
} else {
  process.stdout.write(`\n${setup}\n`);
  process.stdout.write(`${'server'.padEnd(22)}${'req/s'.padStart(10)}${'CPU us/req'.padStart(12)}${'w2/w1'.padStart(8)}   cores busy: server / wrk / others\n`);
  for (const r of rows) {
    process.stdout.write(
      `${r.name.padEnd(22)}${r.rps.toFixed(0).padStart(10)}${r.cpuUsPerReq.toFixed(2).padStart(12)}${(r.scaling === null ? '' : `${r.scaling.toFixed(2)}x`).padStart(8)}` +
        `   ${r.serverCores.toFixed(2)} / ${r.wrkCores.toFixed(2)} / ${r.otherCores.toFixed(2)}${r.errors ? `  (${r.errors})` : ''}\n`,
    );
  }
}
