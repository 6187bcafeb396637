/**
 * The cost of an idle connection at 10k and 100k, on the epoll and io_uring engines. The server is
 * S processes of one engine sharing one port through SO_REUSEPORT (S = ceil(N / 17000): the
 * open-file limit is 20000 per process), pinned to --server-cpus (0); the client is `iolab load hold`
 * (one process per ~19k connections, source addresses spread on loopback) pinned to --client-cpus (1).
 * The connections open, sit idle for --duration seconds, and then the script reads:
 *
 *  - user RSS per idle connection = (server RSS with N idle - server RSS before connecting) / N,
 *    RSS summed over the S server processes, each read after a full GC in every server (garbage
 *    and a young generation grown while accepting are not per-connection costs). Target: <= 500 B
 *    at 10k and at 100k. Beside it, the JS heap + external memory still referenced per connection.
 *    At 100k each process holds ~17k: growth that small sits near the RSS noise of a Node process
 *    (a few hundred KB), so single runs can even come out negative; the median of --runs counts.
 *    --no-gc reads without the forced GC (as bench:idle does): measured here, that adds ~250 B per
 *    connection at 10k in one process, the young generation V8 grew while accepting 10k/s.
 *  - kernel slab per socket = growth of the socket slabs (TCP, sock_inode_cache, filp, dentry,
 *    eventpoll_epi, tcp_bind_bucket) / 2N: both ends of every connection live on this machine, and
 *    the client's sockets (with its epoll items) are in the same slabs, so this is the average of a
 *    server socket and a client socket. System-wide: another process opening sockets meanwhile shows.
 *    The client runs on --client-backend (epoll by default, so the slabs hold one epoll item per
 *    client socket whatever the server engine; io_uring there leaves them out).
 *
 * Each (engine, N) runs --runs times on fresh servers, engines alternating; the median counts.
 * bench:idle is the single-process version (client in the bench process, up to ~19k connections).
 *
 *   npm run bench:idle-scale -- [--engines epoll,io_uring] [--connections 10000,100000] [--runs 3]
 *     [--duration 3] [--connect-rate 10000] [--app echo] [--client-backend epoll] [--no-gc] [--json]
 */
import type { ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import { spawnChild, stopChild } from '../src/lab/children.js';
import { CLI, median, sleep, socketSlabBytes, tcpMemBytes, usageOnHelp } from './lib/util.js';
import { CONNS_PER_SERVER, startServerGroup } from './lib/server-group.js';

usageOnHelp(import.meta.url);
const { values } = parseArgs({
  options: {
    engines: { type: 'string', default: 'epoll,io_uring' },
    connections: { type: 'string', default: '10000,100000' },
    runs: { type: 'string', default: '3' },
    duration: { type: 'string', default: '3' },
    'connect-rate': { type: 'string', default: '10000' },
    app: { type: 'string', default: 'echo' },
    'server-cpus': { type: 'string', default: '0' },
    'client-cpus': { type: 'string', default: '1' },
    'client-backend': { type: 'string', default: 'epoll' },
    'no-gc': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const ENGINES = values.engines!.split(',');
const COUNTS = values.connections!.split(',').map((s) => Math.round(Number(s.replace(/k$/i, '')) * (/k$/i.test(s) ? 1000 : 1)));
const RUNS = Number(values.runs), IDLE_S = Number(values.duration), RATE = Number(values['connect-rate']);
const TARGET_BYTES = 500;
const NO_GC = values['no-gc']!;
if (COUNTS.some((n) => !(n > 0)) || !(RUNS >= 1) || !(IDLE_S >= 0)) {
  process.stderr.write('bench:idle-scale: --connections takes counts like 10000,100k; --runs >= 1; --duration >= 0 seconds\n');
  process.exit(2);
}

interface Sample {
  /** Asked for, and what ran (io_uring falls back to epoll where the kernel refuses it). */
  requested: string; engine: string; connections: number; servers: number; held: number;
  rssBeforeMB: number; rssAfterMB: number; userBytesPerConn: number; heapBytesPerConn: number; slabBytesPerSocket: number; tcpBufferBytesPerSocket: number; connectSeconds: number;
}

async function once(engine: string, N: number): Promise<Sample> {
  const S = Math.ceil(N / CONNS_PER_SERVER);
  const group = await startServerGroup({ engine, app: values.app!, processes: S, cpus: values['server-cpus']!, idleTimeoutMs: 3_600_000 });
  let client: ChildProcess | null = null;
  try {
    await sleep(1000); // JIT and the first GC settle before the baseline
    // A full GC in every server before each reading: what is left is what the connections retain, not
    // garbage or a young generation that grew while accepting (V8 sizes it by allocation rate).
    const heap0 = NO_GC ? NaN : await group.gc();
    const rss0 = group.rssBytes(), slab0 = socketSlabBytes(), tcp0 = tcpMemBytes();
    // The client holds far longer than needed and is stopped once memory is read.
    client = spawnChild(process.execPath, [CLI, 'load', 'hold', `tcp://127.0.0.1:${group.port}`, '-c', String(N), '--connect-rate', String(RATE),
      '-d', `${IDLE_S + 120}s`, '--json', '--quiet', '--connect-timeout', '10s', '--cpus', values['client-cpus']!, '--backend', values['client-backend']!], { stdio: ['ignore', 'ignore', 'inherit'] });
    let exited = false;
    client.once('exit', () => (exited = true));
    const t0 = performance.now();
    let held = 0;
    // Wait until the servers hold all N (or stop growing for 10 s: a failure to report).
    let last = -1, lastChange = performance.now();
    for (;;) {
      await sleep(250);
      held = (await group.stats()).current;
      if (held >= N || exited) break;
      if (held !== last) (last = held), (lastChange = performance.now());
      else if (performance.now() - lastChange > 10_000) break;
    }
    const connectSeconds = (performance.now() - t0) / 1000;
    await sleep(IDLE_S * 1000);
    held = (await group.stats()).current;
    const heap1 = NO_GC ? NaN : await group.gc();
    const rss1 = group.rssBytes(), slab1 = socketSlabBytes(), tcp1 = tcpMemBytes();
    return {
      requested: engine, engine: group.ran, connections: N, servers: S, held, rssBeforeMB: rss0 / 2 ** 20, rssAfterMB: rss1 / 2 ** 20,
      userBytesPerConn: (rss1 - rss0) / N, heapBytesPerConn: (heap1 - heap0) / N, slabBytesPerSocket: (slab1 - slab0) / (2 * N), tcpBufferBytesPerSocket: (tcp1 - tcp0) / (2 * N), connectSeconds,
    };
  } finally {
    if (client) await stopChild(client, 'SIGKILL', 100);
    await group.stop();
    await sleep(1000); // let the kernel free the sockets before the next baseline
  }
}

const samples: Sample[] = [];
for (let k = 0; k < RUNS; k++) {
  for (const N of COUNTS) {
    for (const engine of ENGINES) {
      const s = await once(engine, N);
      samples.push(s);
      process.stderr.write(
        `  run ${k + 1}/${RUNS} ${s.engine} ${N}: held ${s.held} (${s.servers} server processes), RSS ${s.rssBeforeMB.toFixed(0)} -> ${s.rssAfterMB.toFixed(0)} MB, ` +
          `${s.userBytesPerConn.toFixed(0)} B/conn user (JS heap ${s.heapBytesPerConn.toFixed(0)}), ${s.slabBytesPerSocket.toFixed(0)} B/socket slab\n`,
      );
    }
  }
}

interface Row { engine: string; connections: number; servers: number; held: number; userBytesPerConn: number; heapBytesPerConn: number; slabBytesPerSocket: number; tcpBufferBytesPerSocket: number; runs: number[]; met: boolean }
const rows: Row[] = [];
for (const N of COUNTS) {
  for (const engine of ENGINES) {
    const xs = samples.filter((s) => s.connections === N && s.requested === engine);
    if (xs.length === 0) continue;
    const user = median(xs.map((s) => s.userBytesPerConn));
    rows.push({
      engine: xs[0]!.engine === engine ? engine : `${engine} (ran ${xs[0]!.engine})`, connections: N, servers: xs[0]!.servers, held: Math.min(...xs.map((s) => s.held)), userBytesPerConn: user,
      heapBytesPerConn: median(xs.map((s) => s.heapBytesPerConn)),
      slabBytesPerSocket: median(xs.map((s) => s.slabBytesPerSocket)), tcpBufferBytesPerSocket: median(xs.map((s) => s.tcpBufferBytesPerSocket)),
      runs: xs.map((s) => Math.round(s.userBytesPerConn)), met: user <= TARGET_BYTES && xs.every((s) => s.held >= N),
    });
  }
}

if (values.json) process.stdout.write(JSON.stringify({ runs: RUNS, idleSeconds: IDLE_S, app: values.app, targetBytes: TARGET_BYTES, rows, samples }, null, 2) + '\n');
else {
  process.stdout.write(
    `\nidle connections (${values.app}), idle ${IDLE_S} s before reading${NO_GC ? ' (no forced GC)' : ', after a full GC in every server'}; servers on CPU ${values['server-cpus']} (SO_REUSEPORT processes), ` +
      `iolab load hold (${values['client-backend']}) on CPU ${values['client-cpus']}; median of ${RUNS}\n`,
  );
  process.stdout.write(`${'engine'.padEnd(10)}${'conns'.padStart(8)}${'procs'.padStart(6)}${'held'.padStart(8)}${'user B/conn'.padStart(13)}${'JS heap'.padStart(9)}${'slab B/socket'.padStart(15)}  target <= ${TARGET_BYTES} B   runs\n`);
  for (const r of rows) {
    process.stdout.write(
      `${r.engine.padEnd(10)}${String(r.connections).padStart(8)}${String(r.servers).padStart(6)}${String(r.held).padStart(8)}${r.userBytesPerConn.toFixed(0).padStart(13)}${r.heapBytesPerConn.toFixed(0).padStart(9)}` +
        `${r.slabBytesPerSocket.toFixed(0).padStart(15)}  ${(r.met ? 'met' : 'not met').padEnd(16)}${r.runs.join(', ')}\n`,
    );
  }
}
if (rows.some((r) => r.held < r.connections)) process.exitCode = 1;
