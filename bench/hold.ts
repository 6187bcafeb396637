/**
 * Hold N concurrent connections (default 100,000) to an iolab epoll server for 30 s, multi-process on
 * both sides, and print how many were held, the failures, and the server's RSS.
 *
 * Why several server processes: the open-file limit here is 20000 per process, and `iolab serve
 * --workers N` runs N loops as threads of ONE process (one fd table, one limit). So this script
 * starts S epoll servers as separate processes that share ONE port through SO_REUSEPORT (the
 * engines' own `reusePort` option, which `iolab serve` does not expose for a single loop), and the
 * kernel spreads the connections over them. The client is `iolab load hold` with enough processes
 * (auto: ~19k connections each) and source addresses spread over 127.0.0.1-127.0.0.N (auto: ~6k
 * per source): one (source, destination) pair has only ~28k ephemeral ports, and connect() slows to
 * a crawl well before that (see CONNS_PER_SOURCE in src/loadgen/options.ts).
 *
 *   node dist/bench/hold.js [--connections 100000] [--servers 6] [--connect-rate 10000] [--duration 30] [--interval 0] [--json]
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CLI, freePort, reapOnExit, rssBytes, tcpMemBytes } from './lib/util.js';
import { processTree } from '../src/probe/index.js';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '100000' },
    servers: { type: 'string' },
    'connect-rate': { type: 'string', default: '10000' },
    duration: { type: 'string', default: '30' },
    interval: { type: 'string', default: '0' },
    app: { type: 'string', default: 'hello' },
    'serve-child': { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});

// ---- server child: one epoll loop on the shared port ----
if (values['serve-child'] !== undefined) {
  const { createEngine, engineOptions } = await import('../src/engines/index.js');
  const { raiseNofile } = await import('../src/sys/index.js');
  raiseNofile();
  const engine = await createEngine('epoll', engineOptions({ app: values.app!, port: Number(values['serve-child']), quiet: true }), { reusePort: true });
  const at = await engine.start();
  process.send!({ type: 'listening', port: at.port, engine: at.engine });
  process.on('message', (m: { type: string }) => {
    if (m.type === 'stats') void engine.stats().then((s) => process.send!({ type: 'stats', current: s.connections.current, peak: s.connections.peak, refused: s.connections.refused }));
    else if (m.type === 'stop') void engine.stop().then(() => process.exit(0));
  });
  process.on('disconnect', () => process.exit(0));
} else {
  await main();
}

async function main(): Promise<void> {
  const N = Number(values.connections);
  const S = values.servers ? Number(values.servers) : Math.ceil(N / 17_000);
  const HOLD_S = Number(values.duration);
  const children: ChildProcess[] = [];
  reapOnExit(() => children);
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  const port = await freePort();
  const self = fileURLToPath(import.meta.url);

  type Stats = { current: number; peak: number; refused: number };
  const servers: { child: ChildProcess; stats: () => Promise<Stats> }[] = [];
  for (let i = 0; i < S; i++) {
    const child = fork(self, ['--serve-child', String(port), '--app', values.app!], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
    children.push(child);
    child.on('error', () => {}); // EPIPE from a send to a server that died: its exit says so
    await new Promise<void>((resolve, reject) => {
      child.once('message', (m: { type: string }) => (m.type === 'listening' ? resolve() : reject(new Error('server did not start'))));
      child.once('exit', (c) => reject(new Error(`server exited ${c}`)));
    });
    servers.push({
      child,
      stats: () =>
        new Promise<Stats>((resolve) => {
          const on = (m: { type: string } & Stats): void => {
            if (m.type !== 'stats') return;
            child.off('message', on);
            resolve(m);
          };
          child.on('message', on);
          child.send({ type: 'stats' });
        }),
    });
  }
  const serverPids = servers.map((s) => s.child.pid!);
  const serverRss = (): number => serverPids.reduce((a, p) => a + rssBytes(p), 0);
  const allStats = async (): Promise<Stats> => {
    const xs = await Promise.all(servers.map((s) => s.stats()));
    return { current: xs.reduce((a, x) => a + x.current, 0), peak: xs.reduce((a, x) => a + x.peak, 0), refused: xs.reduce((a, x) => a + x.refused, 0) };
  };
  await sleep(1000); // JIT and first GC settle before the baseline
  const rss0 = serverRss();
  const tcp0 = tcpMemBytes();
  process.stderr.write(`hold: ${S} epoll server processes on 127.0.0.1:${port} (SO_REUSEPORT), ${(rss0 / 1048576).toFixed(0)} MB RSS in total; opening ${N} connections at ${values['connect-rate']}/s, holding ${HOLD_S} s\n`);

  const args = ['load', 'hold', `http://127.0.0.1:${port}/`, '-c', String(N), '--connect-rate', values['connect-rate']!, '-d', `${HOLD_S}s`, '--json', '--quiet', '--connect-timeout', '10s'];
  if (Number(values.interval) > 0) args.push('--interval', `${values.interval}s`);
  const client = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(client);
  let out = '';
  client.stdout!.on('data', (d: Buffer) => (out += d));
  const clientDone = new Promise<number | null>((r) => client.on('exit', (c) => r(c)));

  // Watch the servers while the client connects and holds.
  let peakServer = 0, peakRss = rss0, peakClientRss = 0, heldSeconds = 0, lastTick = performance.now();
  let finished = false;
  void clientDone.then(() => (finished = true));
  const t0 = performance.now();
  while (!finished) {
    await sleep(2000);
    if (finished) break;
    const st = await allStats();
    const now = performance.now();
    if (st.current >= N) heldSeconds += (now - lastTick) / 1000;
    lastTick = now;
    peakServer = Math.max(peakServer, st.current);
    peakRss = Math.max(peakRss, serverRss());
    peakClientRss = Math.max(peakClientRss, processTree(client.pid!).reduce((a, p) => a + rssBytes(p), 0));
    process.stderr.write(`  ${((now - t0) / 1000).toFixed(0).padStart(3)} s: server holds ${st.current} (refused ${st.refused}), server RSS ${(serverRss() / 1048576).toFixed(0)} MB\n`);
  }
  const tcp1 = tcpMemBytes();
  const code = await clientDone;
  if (!out.trim()) throw new Error(`iolab load exited ${code} without a result`);
  const r = JSON.parse(out) as {
    ok: boolean; hold: { held: number; established: number; lost: number; refused: number; reset: number; timeout: number };
    errors: { total: number; samples: string[] }; connectMs: number; durationMs: number; client: { processes: number }; settings: { sources: string[] };
  };
  for (const s of servers) s.child.send({ type: 'stop' });
  await sleep(500);

  const result = {
    connections: N,
    serverProcesses: S,
    clientProcesses: r.client.processes,
    sources: r.settings.sources,
    held: r.hold.held,
    established: r.hold.established,
    failures: r.errors.total + r.hold.lost,
    refused: r.hold.refused,
    reset: r.hold.reset,
    timeout: r.hold.timeout,
    connectSeconds: r.connectMs / 1000,
    heldSeconds: r.durationMs / 1000,
    serverPeakConnections: peakServer,
    serverSecondsAtFullCount: Math.round(heldSeconds),
    serverRssBeforeMB: Math.round(rss0 / 1048576),
    serverRssPeakMB: Math.round(peakRss / 1048576),
    serverRssPerConnBytes: Math.round((peakRss - rss0) / N),
    clientRssPeakMB: Math.round(peakClientRss / 1048576),
    kernelTcpMemMB: Math.round(Math.max(0, tcp1 - tcp0) / 1048576),
    clientExit: code,
  };
  if (values.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  else {
    process.stdout.write(
      `\nheld ${result.held} of ${N} connections for ${result.heldSeconds.toFixed(1)} s (after ${result.connectSeconds.toFixed(1)} s connecting), ` +
        `${result.failures} failures (refused ${result.refused}, reset ${result.reset}, timeout ${result.timeout})\n` +
        `  client: ${result.clientProcesses} processes, sources ${result.sources.length > 0 ? `${result.sources[0]}-${result.sources[result.sources.length - 1]}` : 'default'}, peak RSS ${result.clientRssPeakMB} MB\n` +
        `  server: ${S} epoll processes (SO_REUSEPORT), peak ${result.serverPeakConnections} connections, RSS ${result.serverRssBeforeMB} MB -> ${result.serverRssPeakMB} MB ` +
        `(${result.serverRssPerConnBytes} B per connection)\n`,
    );
    for (const s of r.errors.samples) process.stdout.write(`  e.g. ${s}\n`);
  }
  if (result.held < N || result.failures > 0) process.exitCode = 1;
}
