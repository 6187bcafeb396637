/**
 * The threads engine's acceptor: a worker thread parked in accept() on a BLOCKING listening socket,
 * so the main thread stays free for signals, stats and Node's own loop. Each accepted fd goes to
 * an idle connection thread through the shared control block (shared.ts), or, when none is idle,
 * to the main thread, which starts one (or queues it until a thread is free or has started).
 *
 * Bounded pool (Apache worker's MaxRequestWorkers): while every allowed thread is busy this thread
 * does not call accept() at all, so the excess waits in the kernel's listen backlog.
 * Unbounded: past the thread/memory limit a connection is accepted and refused (503 / -ERR); so is
 * one past --max-connections, bounded or not (the reactor's cap).
 * Stop: the main thread calls shutdown(SHUT_RD) on the listening socket, which makes a parked
 * accept() return EINVAL on Linux (inet_shutdown() on a TCP_LISTEN socket: tcp_disconnect()).
 */
import { parentPort, workerData } from 'node:worker_threads';
import {
  EAGAIN, ECONNABORTED, EINTR, EMFILE, ENFILE, O_CLOEXEC, O_RDONLY, SOCK_CLOEXEC, errnoName, ffi, getrlimit,
} from '../../sys/index.js';
import { ROW_WAKEUPS, countInto, refuse } from './blocking.js';
import {
  C_BOUNDED, C_CURRENT, C_HANDOFF, C_LIMIT, C_MAXCONN, C_PEAK, C_REFUSED, C_STOP, C_TOTAL, C_WAITING, START_FDS, claimIdle, handOver,
  rowOf, type AcceptorData, type FromAcceptor,
} from './shared.js';

const d = workerData as AcceptorData;
const port = parentPort!;
const ctl = new Int32Array(d.ctl);
const row = rowOf(d.stats, d.row);
countInto(row);
const send = (m: FromAcceptor): void => port.postMessage(m);
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms: number): void => void Atomics.wait(sleeper, 0, 0, ms);

const warned = new Set<string>();
function warnOnce(key: string, message: string): void {
  if (warned.has(key)) return;
  warned.add(key);
  send({ type: 'warn', message });
}

/** libuv's spare-fd trick (as in reactor.ts): on EMFILE free the spare, accept and close, re-take it. */
function openReserve(): number {
  try {
    return ffi.open('/dev/null', O_RDONLY | O_CLOEXEC, 0);
  } catch {
    return -1;
  }
}
let reserveFd = openReserve();
/** The open-file limit (serve raised soft to hard before we started). */
const fdLimit = getrlimit().soft;

send({ type: 'ready' });

for (;;) {
  if (Atomics.load(ctl, C_STOP) !== 0) break;
  if (Atomics.load(ctl, C_BOUNDED) === 1) {
    // Every allowed thread busy: leave the next connection in the backlog until one is free.
    let cur: number;
    while ((cur = Atomics.load(ctl, C_CURRENT)) >= Atomics.load(ctl, C_LIMIT) && Atomics.load(ctl, C_STOP) === 0) {
      Atomics.wait(ctl, C_CURRENT, cur, 100);
    }
    if (Atomics.load(ctl, C_STOP) !== 0) break;
  }
  const fd = ffi.accept4(d.listenFd, null, null, SOCK_CLOEXEC);
  row[ROW_WAKEUPS]!++;
  if (fd < 0) {
    const e = -fd;
    if (Atomics.load(ctl, C_STOP) !== 0) break; // EINVAL from the shutdown() that stops us
    // EAGAIN: the listener's SO_RCVTIMEO (the connections' idle timeout, engine.ts) passed with no
    // connection; park again.
    if (e === ECONNABORTED || e === EAGAIN || e === EINTR) continue;
    if (e === EMFILE || e === ENFILE) {
      warnOnce('emfile', `accept4() failed: ${errnoName(e)}: out of file descriptors; shedding new connections (raise ulimit -n)`);
      if (reserveFd >= 0) {
        ffi.close(reserveFd);
        const c = ffi.accept4(d.listenFd, null, null, SOCK_CLOEXEC);
        if (c >= 0) {
          ffi.close(c);
          Atomics.add(ctl, C_REFUSED, 1);
        }
        reserveFd = openReserve();
      }
      sleep(10); // do not spin while the table stays full
      continue;
    }
    warnOnce(`accept4:${e}`, `accept4() failed: ${errnoName(e)}`);
    sleep(10);
    continue;
  }
  const cur = Atomics.add(ctl, C_CURRENT, 1) + 1;
  if (Atomics.load(ctl, C_BOUNDED) === 0 && cur > Atomics.load(ctl, C_LIMIT)) {
    Atomics.sub(ctl, C_CURRENT, 1);
    refuse(fd, d.protocol);
    Atomics.add(ctl, C_REFUSED, 1);
    warnOnce('limit', `${Atomics.load(ctl, C_LIMIT)} connection threads in use (the thread/memory limit): refusing new connections until some close`);
    continue;
  }
  const maxConn = Atomics.load(ctl, C_MAXCONN);
  if (maxConn > 0 && cur > maxConn) {
    Atomics.sub(ctl, C_CURRENT, 1);
    refuse(fd, d.protocol);
    Atomics.add(ctl, C_REFUSED, 1);
    warnOnce('maxconn', `connection cap of ${maxConn} reached: refusing new connections`);
    continue;
  }
  // Connections queued in the main thread (threads starting) go first: this one queues behind them.
  const slot = Atomics.load(ctl, C_WAITING) > 0 ? -1 : claimIdle(ctl);
  if (slot < 0 && fd >= fdLimit - START_FDS) {
    // The kernel hands out the lowest free fd, so one this high means the table is nearly full: a
    // thread started now could fail for lack of fds (shared.ts START_FDS). The main thread counts
    // exactly before it starts one; this is the cheap first filter.
    Atomics.sub(ctl, C_CURRENT, 1);
    refuse(fd, d.protocol);
    Atomics.add(ctl, C_REFUSED, 1);
    warnOnce('fds', `fewer than ${START_FDS} file descriptors free for a new connection thread: refusing connections that need one (raise ulimit -n)`);
    continue;
  }
  Atomics.add(ctl, C_TOTAL, 1);
  if (cur > ctl[C_PEAK]!) Atomics.store(ctl, C_PEAK, cur); // only this thread writes C_PEAK
  if (slot >= 0) handOver(ctl, slot, fd);
  else {
    Atomics.add(ctl, C_HANDOFF, 1); // counted in C_CURRENT, not yet in the main thread's queue
    send({ type: 'spawn', fd });
  }
}

if (reserveFd >= 0) ffi.close(reserveFd);
