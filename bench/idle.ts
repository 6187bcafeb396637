/**
 * Cost of an idle connection: open N connections to `iolab serve --engine epoll` from this process
 * (through iolab's own sys layer, so the client costs little), wait until the server holds them all,
 * and print the server's RSS growth per connection and the kernel's TCP memory.
 *
 *   npm run bench:idle -- [--connections 10000] [--engine epoll] [--app echo]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connectTcp, ffi, raiseNofile } from '../src/sys/index.js';
import { reapOnExit, rssBytes, socketSlabBytes, startIolab, stop, tcpMemBytes, usageOnHelp } from './lib/util.js';
import { servedConnections, type EngineStats } from '../src/engines/types.js';
import type { ChildProcess } from 'node:child_process';

usageOnHelp(import.meta.url);
const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '10000' },
    engine: { type: 'string', default: 'epoll' },
    app: { type: 'string', default: 'echo' },
    json: { type: 'boolean', default: false },
  },
});
const N = Number(values.connections);
const lim = raiseNofile();
if (N + 100 > lim.soft) {
  process.stderr.write(`bench:idle: ${N} connections need an open-file limit above ${N + 100} (have ${lim.soft}); use fewer or raise ulimit -n\n`);
  process.exit(2);
}
const children: ChildProcess[] = [];
reapOnExit(() => children);
const dir = mkdtempSync(join(tmpdir(), 'iolab-idle-'));
const statsFile = join(dir, 'stats.json');
const srv = await startIolab('0', ['--engine', values.engine!, '--app', values.app!, '--stats-file', statsFile]);
children.push(srv.child);
const readStats = (): EngineStats => JSON.parse(readFileSync(statsFile, 'utf8')) as EngineStats;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

await sleep(1000); // let the server settle (JIT, first GC) before the baseline
const rss0 = rssBytes(srv.child.pid!);
const tcp0 = tcpMemBytes();
const slab0 = socketSlabBytes();
const fds: number[] = [];
const t0 = performance.now();
for (let i = 0; i < N; i++) {
  fds.push(connectTcp('127.0.0.1', srv.port, { nonBlocking: true }));
  // Pace in batches so the listen backlog (somaxconn) never overflows.
  if (i % 500 === 499) await sleep(20);
}
let held = 0;
for (let i = 0; i < 200; i++) {
  held = servedConnections(readStats()); // threads: not those still waiting for their thread to start
  if (held >= N) break;
  await sleep(100);
}
const connectMs = performance.now() - t0;
await sleep(1500);
const rss1 = rssBytes(srv.child.pid!);
const tcp1 = tcpMemBytes();
const slab1 = socketSlabBytes();
const perConn = (rss1 - rss0) / N;
const result = {
  engine: srv.engine,
  connections: N,
  held,
  connectMs: Math.round(connectMs),
  rssBeforeKB: Math.round(rss0 / 1024),
  rssAfterKB: Math.round(rss1 / 1024),
  rssPerConnBytes: Math.round(perConn),
  // Both ends of each connection live on this machine, so kernel figures are halved per socket.
  kernelTcpBufferPerSocketBytes: Math.round((tcp1 - tcp0) / N / 2),
  kernelSlabPerSocketBytes: Math.round((slab1 - slab0) / N / 2),
};
for (const fd of fds) ffi.close(fd);
await stop(srv.child);
rmSync(dir, { recursive: true, force: true });
if (values.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
else {
  process.stdout.write(
    `${result.engine}: ${held}/${N} idle connections held; server RSS ${result.rssBeforeKB} KB -> ${result.rssAfterKB} KB, ` +
      `${result.rssPerConnBytes} B per connection (user space); kernel: ~${result.kernelSlabPerSocketBytes} B of slab per socket ` +
      `(socket, inode, file, epoll item), ${result.kernelTcpBufferPerSocketBytes} B of TCP buffers\n`,
  );
}
if (held < N) process.exitCode = 1;
