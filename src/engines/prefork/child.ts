/**
 * A prefork child: one process that parks in accept() on the listening socket it shares with its
 * siblings (fd 3, handed over by the parent's spawn stdio), serves that ONE connection with blocking
 * read()/write() until it ends, then accepts again, as an Apache prefork child does.
 *
 * The listening socket carries SO_RCVTIMEO/SO_SNDTIMEO of `tickMs` (set by the parent; accepted
 * sockets inherit them), so a parked accept(), read() or write() returns EAGAIN that often and the
 * child lets Node's loop run: the parent's stats requests (IPC) and SIGTERM get through, and a dead
 * parent (IPC EOF) is noticed. PR_SET_PDEATHSIG makes the kernel SIGKILL it if the parent dies first,
 * even by SIGKILL, even while it is stuck in a long call.
 */
import { loadApp } from '../../apps/index.js';
import { applyTiering } from '../tiering.js';
import { FeedResult, createService } from '../../apps/service.js';
import {
  EAGAIN, ECONNABORTED, EINVAL, PR_SET_PDEATHSIG, SIGKILL, SOCK_CLOEXEC, errnoName, ffi,
} from '../../sys/index.js';
import { BlockingConn, ROW_WAKEUPS, ROW_WIDTH } from '../threads/blocking.js';
import type { ChildConfig, FromChild, ToChild } from './messages.js';
import { performance } from 'node:perf_hooks'; // the global is a lazy accessor: a getter call per use

/** The listening socket, placed at fd 3 by the parent's stdio array. */
const LISTEN_FD = 3;
const YIELD_MS = 50;

const cfg = JSON.parse(process.env.IOLAB_PREFORK_CHILD ?? 'null') as ChildConfig | null;
if (cfg === null) {
  process.stderr.write('iolab prefork child: started without IOLAB_PREFORK_CHILD; it is run by the prefork engine only\n');
  process.exit(2);
}
ffi.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
if (process.ppid !== cfg.ppid) process.exit(0);

const send = (m: FromChild, cb?: () => void): void => {
  if (process.connected) process.send!(m, undefined, {}, cb);
  else cb?.();
};

/** 0 serving; 1 draining (SIGTERM/SIGINT: finish the request in flight); 2 the parent is gone. */
let stopLevel = 0;
const onStop = (): void => {
  if (stopLevel === 0) stopLevel = 1;
};
// SIGINT too: Ctrl-C in a terminal signals the whole process group, children included.
process.on('SIGTERM', onStop);
process.on('SIGINT', onStop);
process.on('disconnect', () => {
  stopLevel = 2;
});

const app = await loadApp(cfg.app);
const service = createService(app, cfg.service);
const row = new Float64Array(ROW_WIDTH);
let current = 0;
// An async answer is encoded when its handler settles, while serve() sits in `await`; encode() reads
// `draining` then to add Connection: close. Signals are handled while we await, so set it here.
const drain = (): void => {
  service.draining = true;
};
process.on('SIGTERM', drain);
process.on('SIGINT', drain);
const conn = new BlockingConn(service, new FeedResult(), row, {
  stopLevel: () => stopLevel,
  tickMs: cfg.tickMs,
  limits: cfg.limits,
});
process.on('message', (m: ToChild) => {
  if (m.type === 'stats') {
    send({ type: 'stats', id: m.id, row: Array.from(row), current });
  }
});

const tick = (): Promise<void> => new Promise((res) => setImmediate(res));
const warned = new Set<string>();
// Lower V8's tier-up thresholds now that the modules are loaded (tiering.ts): start-up code is not hot.
applyTiering();
send({ type: 'ready' });

let lastYield = performance.now();
while (stopLevel === 0) {
  const fd = ffi.accept4(LISTEN_FD, null, null, SOCK_CLOEXEC);
  row[ROW_WAKEUPS]!++;
  if (fd < 0) {
    const e = -fd;
    if (e === EAGAIN) {
      // SO_RCVTIMEO tick with no connection: let IPC and signals in, then park again.
      await tick();
      lastYield = performance.now();
      continue;
    }
    if (e === EINVAL) break; // the parent shut the listening socket down: we are stopping
    if (e === ECONNABORTED) continue;
    if (!cfg.quiet && !warned.has(String(e))) {
      warned.add(String(e));
      process.stderr.write(`iolab prefork[${process.pid}]: accept4() failed: ${errnoName(e)}\n`);
    }
    await new Promise((res) => setTimeout(res, 10));
    continue;
  }
  current = 1;
  try {
    await conn.serve(fd);
  } catch (e) {
    if (!cfg.quiet) process.stderr.write(`iolab prefork[${process.pid}]: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  }
  ffi.close(fd);
  current = 0;
  if (performance.now() - lastYield >= YIELD_MS) {
    await tick();
    lastYield = performance.now();
  }
}

send({ type: 'final', row: Array.from(row) }, () => process.exit(0));
