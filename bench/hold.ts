/**
 * C100K and beyond: hold N concurrent connections (default 100,000) to an iolab epoll or io_uring
 * server for --duration seconds (default 30), multi-process on both sides, and print how many were
 * held, the failures by cause, the server's RSS and the machine's memory per connection. With a list
 * (`--connections 100000,200000,300000`) the counts run in order and the script stops at the first one
 * that is not held, or that the memory guard stops, and prints the most reached and what limited it.
 *
 * Why several server processes: the open-file limit here is 20000 per process, and `iolab serve
 * --workers N` runs N loops as threads of ONE process (one fd table, one limit). So this script
 * starts S server processes (auto: one per 17k connections) that share ONE port through SO_REUSEPORT
 * (the engines' own `reusePort` option; bench/lib/server-group.ts), and the kernel spreads the
 * connections over them. The client is `iolab load hold` with one process per ~19k connections and
 * source addresses spread over 127.0.0.1-127.0.0.K (~6k per source): one (source, destination) pair
 * has only ~28k ephemeral ports, and connect() slows to a crawl well before that (CONNS_PER_SOURCE
 * in src/loadgen/options.ts). Each connection costs one fd on each side, so N connections take
 * S + ceil(N / 19000) processes: 100k -> 6 + 6, 200k -> 12 + 11.
 *
 * Memory guard: before each count the script estimates the machine's memory at that count (from the
 * previous count's measured cost per connection, or 12 KB per connection at first) and does not
 * start it past --max-memory (default 50% of RAM); while connecting and holding it stops the run as
 * soon as the machine's used memory (MemTotal - MemAvailable) passes that share.
 *
 * Measured here (2 cores, 24 GiB): 1,000,000 held for 30 s on both engines with --connect-rate 6000
 * (~7.5 KB of machine memory per connection, both ends); at 10000/s the 2 cores connect slower than
 * asked past ~600k and the load's connect phase (N / rate + connect timeout) ends first. Past 1M on
 * one machine three limits meet: fs.file-max 2,466,170 (two fds per connection, one per end: ~1.23M),
 * `iolab load --procs` <= 64 (x 19k = 1.216M), and the 50% memory guard (~1.25M).
 *
 * Servers are pinned to --server-cpus (default 0), the load to --client-cpus (default 1); the load runs
 * on --client-backend (epoll by default: the long-proven client, whatever the server engine).
 *
 *   npm run bench:hold -- [--engine epoll|io_uring] [--connections 100000[,200000,...]] [--servers S]
 *     [--connect-rate 10000] [--duration 30] [--interval 0] [--runs 1] [--max-memory 0.5] [--client-backend epoll] [--json]
 */
import type { ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import { spawnChild, stopChild } from '../src/lab/children.js';
import { gb, memInfo } from '../src/lab/guard.js';
import { processTree } from '../src/probe/index.js';
import { CLI, rssBytes, sleep, tcpMemBytes, usageOnHelp } from './lib/util.js';
import { CONNS_PER_SERVER, startServerGroup } from './lib/server-group.js';

usageOnHelp(import.meta.url);
const { values } = parseArgs({
  options: {
    engine: { type: 'string', default: 'epoll' },
    connections: { type: 'string', default: '100000' },
    servers: { type: 'string' },
    'connect-rate': { type: 'string', default: '10000' },
    duration: { type: 'string', default: '30' },
    interval: { type: 'string', default: '0' },
    runs: { type: 'string', default: '1' },
    app: { type: 'string', default: 'hello' },
    'server-cpus': { type: 'string', default: '0' },
    'client-cpus': { type: 'string', default: '1' },
    'client-backend': { type: 'string', default: 'epoll' },
    'max-memory': { type: 'string', default: '0.5' },
    json: { type: 'boolean', default: false },
  },
});
const ENGINE = values.engine!;
if (ENGINE !== 'epoll' && ENGINE !== 'io_uring') {
  process.stderr.write(`bench:hold: --engine is epoll or io_uring (got ${JSON.stringify(ENGINE)})\n`);
  process.exit(2);
}
const COUNTS = values.connections!.split(',').map((s) => Math.round(Number(s.replace(/k$/i, '')) * (/k$/i.test(s) ? 1000 : 1)));
if (COUNTS.some((n) => !(n > 0))) {
  process.stderr.write(`bench:hold: --connections takes counts like 100000 or 100k,200k (got ${values.connections})\n`);
  process.exit(2);
}
const HOLD_S = Number(values.duration), RUNS = Number(values.runs), MAX_MEM = Number(values['max-memory']);
const RATE = Number(values['connect-rate']);
/**
 * First guess of the machine's memory per held connection (both ends, kernel and user, the load's
 * processes included), until a count measures it: measured here 10 KB at 100k, 8.7 KB at 400k,
 * 7.8 KB at 600k (io_uring server, epoll load).
 */
const FIRST_GUESS_PER_CONN = 12 * 1024;

const usedBytes = (): number => {
  const m = memInfo();
  return m.totalBytes - m.availableBytes;
};
const { totalBytes } = memInfo();
const memLimit = totalBytes * MAX_MEM;

interface Attempt {
  engine: string;
  connections: number;
  serverProcesses: number;
  clientProcesses: number;
  clientBackend: string;
  sources: string;
  held: number;
  serverPeakConnections: number;
  serverSecondsAtFullCount: number;
  failures: number;
  byErrno: Record<string, number>;
  refused: number;
  reset: number;
  timeout: number;
  lost: number;
  /** Connections the load never opened: its connect phase (N / rate + connect timeout) ended first. */
  neverOpened: number;
  connectSeconds: number;
  heldSeconds: number;
  serverRssBeforeMB: number;
  serverRssPeakMB: number;
  serverRssPerConnBytes: number;
  clientRssPeakMB: number;
  /** Machine memory (MemTotal - MemAvailable) per connection at the peak: both ends, kernel and user. */
  machinePerConnBytes: number;
  machineUsedPeakGB: number;
  kernelTcpBufferMB: number;
  ok: boolean;
  /** Why it was not held (null when it was). */
  limit: string | null;
  samples: string[];
}

async function attempt(N: number): Promise<Attempt> {
  const S = values.servers ? Number(values.servers) : Math.ceil(N / CONNS_PER_SERVER);
  const group = await startServerGroup({ engine: ENGINE, app: values.app!, processes: S, cpus: values['server-cpus']!, idleTimeoutMs: 3_600_000 });
  let client: ChildProcess | null = null;
  try {
    await sleep(1000); // JIT and first GC settle before the baseline
    const rss0 = group.rssBytes();
    const tcp0 = tcpMemBytes();
    const used0 = usedBytes();
    process.stderr.write(
      `hold: ${S} ${group.ran} server processes on 127.0.0.1:${group.port} (SO_REUSEPORT), ${(rss0 / 1048576).toFixed(0)} MB RSS in total; ` +
        `opening ${N} connections at ${RATE}/s, holding ${HOLD_S} s; machine ${gb(used0)} used of ${gb(totalBytes)}, guard at ${gb(memLimit)}\n`,
    );
    const args = [CLI, 'load', 'hold', `http://127.0.0.1:${group.port}/`, '-c', String(N), '--connect-rate', String(RATE), '-d', `${HOLD_S}s`,
      '--json', '--quiet', '--connect-timeout', '10s', '--cpus', values['client-cpus']!, '--backend', values['client-backend']!,
      // A busy machine connects slower than --connect-rate: give the load room to report its errors
      // instead of being killed at the default deadline (plan + 20 s).
      '--deadline', `${Math.ceil((3 * N) / RATE + HOLD_S + 60)}s`];
    if (Number(values.interval) > 0) args.push('--interval', `${values.interval}s`);
    client = spawnChild(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    client.stdout!.on('data', (d: Buffer) => (out += d));
    const clientDone = new Promise<number | null>((r) => client!.once('exit', (c) => r(c)));

    // Watch both sides while the client connects and holds; the memory guard acts here.
    let peakServer = 0, peakRss = rss0, peakClientRss = 0, peakUsed = used0, heldSeconds = 0, lastTick = performance.now();
    let finished = false, guard: string | null = null, serversDown = 0;
    void clientDone.then(() => (finished = true));
    const t0 = performance.now();
    let lastPrint = 0;
    while (!finished) {
      await Promise.race([sleep(500), clientDone]);
      if (finished) break;
      const used = usedBytes();
      peakUsed = Math.max(peakUsed, used);
      if (used > memLimit) {
        guard = `memory guard: machine at ${gb(used)} used, past ${Math.round(MAX_MEM * 100)}% of ${gb(totalBytes)}`;
        await stopChild(client, 'SIGKILL', 100);
        break;
      }
      const now = performance.now();
      if (now - lastPrint < 2000) continue;
      lastPrint = now;
      const st = await group.stats();
      serversDown = S - st.alive;
      if (st.current >= N) heldSeconds += (now - lastTick) / 1000;
      lastTick = now;
      peakServer = Math.max(peakServer, st.current);
      peakRss = Math.max(peakRss, group.rssBytes());
      peakClientRss = Math.max(peakClientRss, processTree(client.pid!).reduce((a, p) => a + rssBytes(p), 0));
      process.stderr.write(
        `  ${((now - t0) / 1000).toFixed(0).padStart(3)} s: server holds ${st.current} (refused ${st.refused}${serversDown ? `, ${serversDown} server processes gone` : ''}), ` +
          `server RSS ${(group.rssBytes() / 1048576).toFixed(0)} MB, machine ${gb(used)} used\n`,
      );
    }
    const tcp1 = tcpMemBytes();
    const code = await clientDone;
    const base = {
      engine: group.ran, connections: N, serverProcesses: S, serverPeakConnections: peakServer, serverSecondsAtFullCount: Math.round(heldSeconds),
      serverRssBeforeMB: Math.round(rss0 / 1048576), serverRssPeakMB: Math.round(peakRss / 1048576), serverRssPerConnBytes: Math.round((peakRss - rss0) / Math.max(1, peakServer)),
      clientRssPeakMB: Math.round(peakClientRss / 1048576), machinePerConnBytes: Math.round((peakUsed - used0) / Math.max(1, peakServer)),
      machineUsedPeakGB: Math.round((peakUsed / 2 ** 30) * 10) / 10, kernelTcpBufferMB: Math.round(Math.max(0, tcp1 - tcp0) / 1048576),
    };
    if (guard !== null || !out.trim()) {
      return {
        ...base, clientProcesses: 0, clientBackend: values['client-backend']!, sources: '', held: 0, failures: 0, byErrno: {}, refused: 0, reset: 0, timeout: 0, lost: 0, neverOpened: 0, connectSeconds: 0, heldSeconds: 0,
        ok: false, limit: guard ?? `iolab load exited ${code} without a result`, samples: [],
      };
    }
    const r = JSON.parse(out) as {
      ok: boolean; hold: { held: number; established: number; lost: number; refused: number; reset: number; timeout: number };
      connections: { target: number; established: number; failed: number };
      errors: { total: number; samples: string[]; byErrno: Record<string, number> }; connectMs: number; durationMs: number;
      client: { processes: number; perProcess: { index: number; connections: number; errors: number }[] }; settings: { sources: string[] }; backend: string;
    };
    // A slot that was never opened is neither an error nor lost: count it apart.
    const neverOpened = Math.max(0, r.connections.failed - r.errors.total);
    const failures = r.errors.total + r.hold.lost + neverOpened;
    const ok = r.hold.held >= N && failures === 0 && serversDown === 0;
    const src = r.settings.sources;
    return {
      ...base,
      clientProcesses: r.client.processes,
      clientBackend: r.backend,
      sources: src.length > 0 ? `${src[0]}-${src[src.length - 1]} (${src.length})` : 'default',
      held: r.hold.held, failures, byErrno: r.errors.byErrno, refused: r.hold.refused, reset: r.hold.reset, timeout: r.hold.timeout, lost: r.hold.lost, neverOpened,
      connectSeconds: r.connectMs / 1000, heldSeconds: r.durationMs / 1000,
      ok, limit: ok ? null : explain(r, serversDown, S, neverOpened),
      samples: ok ? r.errors.samples : [...r.errors.samples, `client processes' connections: ${r.client.perProcess.map((p) => `${p.connections}${p.errors ? ` (${p.errors} errors)` : ''}`).join(', ')}`],
    };
  } finally {
    if (client) await stopChild(client, 'SIGKILL', 100);
    await group.stop();
  }
}

/** Name what stopped a count from being held, from the errno the client saw most. */
function explain(r: { hold: { held: number; lost: number }; errors: { byErrno: Record<string, number> } }, serversDown: number, S: number, neverOpened: number): string {
  if (serversDown > 0) return `${serversDown} of ${S} server processes died (see their stderr above)`;
  if (neverOpened > 0 && Object.keys(r.errors.byErrno).length === 0) {
    return `connect rate: ${neverOpened} connections were never opened: the load could not keep --connect-rate ${RATE}/s (CPU-bound on this machine) ` +
      `and its connect phase (N / rate + connect timeout) ended first; a lower --connect-rate gives it the time`;
  }
  const top = Object.entries(r.errors.byErrno).sort((a, b) => b[1] - a[1])[0];
  const why: Record<string, string> = {
    EADDRNOTAVAIL: 'ephemeral ports: a source address ran out of local ports (more --sources, or a wider ip_local_port_range)',
    EMFILE: 'open files per process (RLIMIT_NOFILE): more processes on that side',
    ENFILE: 'open files system-wide (fs.file-max)',
    ETIMEDOUT: 'connects timed out: the accept queue overflowed (SYNs dropped) or the machine was too busy to answer in 10 s; a lower --connect-rate',
    ECONNREFUSED: 'connection refused: the listen backlog overflowed or a server went away',
    ECONNRESET: 'connections reset by the server',
    ENOMEM: 'kernel memory (ENOMEM)',
    ENOBUFS: 'kernel buffers (ENOBUFS)',
  };
  if (top) return `${top[1]} x ${top[0]}: ${why[top[0]] ?? 'see the samples'}`;
  if (r.hold.lost > 0) return `${r.hold.lost} connections lost during the hold`;
  return `held ${r.hold.held}: see the samples`;
}

const attempts: Attempt[] = [];
let stoppedBy: string | null = null;
let perConnGuess = FIRST_GUESS_PER_CONN;
outer: for (const N of COUNTS) {
  const estimate = usedBytes() + N * perConnGuess;
  if (estimate > memLimit) {
    stoppedBy = `${N} not attempted: at ~${(perConnGuess / 1024).toFixed(1)} KB per connection it would need ~${gb(estimate)}, past the ${gb(memLimit)} guard`;
    break;
  }
  for (let k = 0; k < RUNS; k++) {
    const a = await attempt(N);
    attempts.push(a);
    if (a.machinePerConnBytes > 0) perConnGuess = Math.max(perConnGuess * 0.5, a.machinePerConnBytes * 1.2);
    process.stderr.write(`  ${N}: ${a.ok ? 'held' : `NOT held (${a.limit})`}\n`);
    if (!a.ok) {
      stoppedBy = `${N}: ${a.limit}`;
      break outer;
    }
    // The kernel frees 100k+ sockets (and the client's TIME_WAIT entries, to another port than the next
    // count's) over a moment after the processes exit; start the next count on a quieter machine.
    await sleep(3000);
  }
}

const reached = Math.max(0, ...attempts.filter((a) => a.ok).map((a) => a.connections));
if (values.json) process.stdout.write(JSON.stringify({ engine: ENGINE, holdSeconds: HOLD_S, connectRate: RATE, reached, stoppedBy, attempts }, null, 2) + '\n');
else {
  process.stdout.write(`\n${ENGINE}: hold ${HOLD_S} s after connecting at ${RATE}/s; servers on CPU ${values['server-cpus']}, load on CPU ${values['client-cpus']}\n`);
  for (const a of attempts) {
    process.stdout.write(
      `\n${a.connections} connections (${a.engine}): ${a.ok ? 'HELD' : 'NOT HELD'}: held ${a.held} for ${a.heldSeconds.toFixed(1)} s (after ${a.connectSeconds.toFixed(1)} s connecting), ` +
        `${a.failures} failures (refused ${a.refused}, reset ${a.reset}, timeout ${a.timeout}, lost ${a.lost}, never opened ${a.neverOpened})${a.limit ? `\n  limit: ${a.limit}` : ''}\n` +
        `  client: ${a.clientProcesses} processes (${a.clientBackend}), sources ${a.sources}, peak RSS ${a.clientRssPeakMB} MB\n` +
        `  server: ${a.serverProcesses} processes (SO_REUSEPORT), peak ${a.serverPeakConnections} connections (${a.serverSecondsAtFullCount} s at the full count), ` +
        `RSS ${a.serverRssBeforeMB} MB -> ${a.serverRssPeakMB} MB (${a.serverRssPerConnBytes} B per connection)\n` +
        `  machine: ${a.machineUsedPeakGB} GB used at the peak, ${(a.machinePerConnBytes / 1024).toFixed(1)} KB per connection (both ends, kernel + user), TCP buffers ${a.kernelTcpBufferMB} MB\n`,
    );
    for (const s of a.samples) process.stdout.write(`  e.g. ${s}\n`);
  }
  process.stdout.write(`\nmost held: ${reached > 0 ? reached : 'none'}${stoppedBy ? `; stopped at ${stoppedBy}` : '; every count asked for was held'}\n`);
}
if (attempts.length === 0 || !attempts[0]!.ok) process.exitCode = 1;
