/**
 * The threads engine's acceptor: a worker thread parked in accept() on a BLOCKING listening socket,
 * so the main thread stays free for signals, stats and Node's own loop. Each accepted fd goes to
 * an idle connection thread through the shared control block (shared.ts), or, when none is idle,
 * to the main thread, which starts one.
 *
 * Bounded pool (Apache worker's MaxRequestWorkers): while every allowed thread is busy this thread
 * does not call accept() at all, so the excess waits in the kernel's listen backlog.
 * Unbounded: past the thread/memory limit a connection is accepted and refused (503 / -ERR).
 * Stop: the main thread calls shutdown(SHUT_RD) on the listening socket, which makes a parked
 * accept() return EINVAL on Linux (inet_shutdown() on a TCP_LISTEN socket: tcp_disconnect()).
 */
import { parentPort, workerData } from 'node:worker_threads';
import {
  ECONNABORTED, EMFILE, ENFILE, O_CLOEXEC, O_RDONLY, SOCK_CLOEXEC, errnoName, ffi,
} from '../../sys/index.js';
import { ROW_WAKEUPS, publishSyscalls, refuse } from './blocking.js';
import {
  C_BOUNDED, C_CURRENT, C_IDLE, C_LIMIT, C_PEAK, C_REFUSED, C_SLOTS_HIGH, C_STOP, C_TOTAL, S_FD, S_STATE, ST_BUSY,
  ST_IDLE, rowOf, slotIndex, type AcceptorData, type FromAcceptor,
} from './shared.js';

const d = workerData as AcceptorData;
const port = parentPort!;
const ctl = new Int32Array(d.ctl);
const row = rowOf(d.stats, d.row);
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

/** Claim the lowest-numbered idle thread: hot threads stay hot, high slots age out on their idle timeout. */
function claimIdle(): number {
  if (Atomics.load(ctl, C_IDLE) <= 0) return -1;
  const high = Atomics.load(ctl, C_SLOTS_HIGH);
  for (let s = 0; s < high; s++) {
    const i = slotIndex(s, S_STATE);
    if (ctl[i] === ST_IDLE && Atomics.compareExchange(ctl, i, ST_IDLE, ST_BUSY) === ST_IDLE) {
      Atomics.sub(ctl, C_IDLE, 1);
      return s;
    }
  }
  return -1;
}

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
    if (e === ECONNABORTED) continue;
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
    publishSyscalls(row);
    continue;
  }
  Atomics.add(ctl, C_TOTAL, 1);
  if (cur > ctl[C_PEAK]!) Atomics.store(ctl, C_PEAK, cur); // only this thread writes C_PEAK
  const slot = claimIdle();
  if (slot >= 0) {
    const i = slotIndex(slot, S_FD);
    Atomics.store(ctl, i, fd);
    Atomics.notify(ctl, i, 1);
  } else {
    send({ type: 'spawn', fd });
  }
  publishSyscalls(row);
}

if (reserveFd >= 0) ffi.close(reserveFd);
publishSyscalls(row);
