/**
 * The control block the threads engine shares between its main thread, its acceptor thread and its
 * connection threads: an Int32Array over a SharedArrayBuffer, read and written with Atomics. A
 * thread parked in read() cannot answer a message, so everything the others need to know about it
 * (its state, its fd, whether it sits between requests, its counters) lives here instead.
 *
 * Globals (Int32 indices):
 *
 * | index        | written by                   | meaning                                             |
 * |--------------|------------------------------|-----------------------------------------------------|
 * | C_STOP       | main                         | 0 running, 1 draining, 2 force-closing              |
 * | C_CURRENT    | acceptor (+), conn thread (-)| open connections; the bounded acceptor waits on it   |
 * | C_IDLE       | conn thread (+), acceptor (-)| threads parked waiting for a connection             |
 * | C_LIMIT      | main                         | most connections (= busy threads) at once           |
 * | C_BOUNDED    | main                         | 1: past the limit connections wait in the backlog;  |
 * |              |                              | 0: past the limit they are refused (503 / -ERR)      |
 * | C_REFUSED    | acceptor, main               | connections refused                                 |
 * | C_TOTAL      | acceptor                     | connections accepted                                |
 * | C_PEAK       | acceptor                     | highest C_CURRENT seen                              |
 * | C_SLOTS_HIGH | main                         | slots ever used: the acceptor scans [0, this)       |
 * | C_MAXCONN    | main                         | --max-connections (0: none): past it, refused       |
 * | C_WAITING    | main                         | accepted fds queued in the main thread for a thread;|
 * |              |                              | while > 0 the acceptor queues new ones behind them  |
 *
 * Then one row of SLOT_WIDTH per thread slot:
 *
 * | S_STATE   | FREE (no thread) -> IDLE <-> BUSY; IDLE -> EXITING (idle timeout or stop)        |
 * | S_FD      | the connection handed to the thread; -1 when none. The thread waits on this cell |
 * | S_PARKED  | PARK_*: whether the thread sits in read() between requests, and whether stop()   |
 * |           | has begun a lingering close on it (shutdown(SHUT_WR) from the main thread)        |
 * | S_SERVING | 1 once the thread has picked the fd up (a thread that dies with 0 never saw it)  |
 *
 * Hand-off (acceptor -> idle thread): CAS S_STATE IDLE->BUSY, store S_FD, notify S_FD. The thread
 * waits on S_FD == -1; on an idle timeout it leaves only by CAS IDLE->EXITING, so a thread the
 * acceptor has just claimed cannot leave.
 *
 * Waking a parked thread (main -> conn thread): CAS S_PARKED PARK_READ->PARK_WAKING, then read S_FD
 * and shutdown() it, then store PARK_LINGER. While the cell says PARK_WAKING the thread, back from
 * read(), waits before it goes on (and so before it can close the fd): the main thread never shuts
 * down an fd number the thread has closed and the kernel has handed to another connection.
 */
import { ROW_WIDTH } from './blocking.js';

export const C_STOP = 0;
export const C_CURRENT = 1;
export const C_IDLE = 2;
export const C_LIMIT = 3;
export const C_BOUNDED = 4;
export const C_REFUSED = 5;
export const C_TOTAL = 6;
export const C_PEAK = 7;
export const C_SLOTS_HIGH = 8;
export const C_MAXCONN = 9;
export const C_WAITING = 10;
/** Connections the acceptor has counted and sent to the main thread (a message) that it has not taken yet. */
export const C_HANDOFF = 11;

/** Globals fill the first 64-byte cache line; each slot has a line of its own (no false sharing). */
export const SLOT_BASE = 16;
export const SLOT_WIDTH = 16;
export const S_STATE = 0;
export const S_FD = 1;
export const S_PARKED = 2;
export const S_SERVING = 3;

/** S_PARKED values. */
export const PARK_NO = 0;
/** In read() between requests: nothing in flight. */
export const PARK_READ = 1;
/** The main thread is shutting the fd down: the thread waits for PARK_LINGER before it goes on. */
export const PARK_WAKING = 2;
/** The main thread has shut our write side (stop): the connection is in its lingering close. */
export const PARK_LINGER = 3;

export const ST_FREE = 0;
export const ST_IDLE = 1;
export const ST_BUSY = 2;
export const ST_EXITING = 3;

/**
 * File descriptors a thread start must find free. Its event loop keeps 4 (epoll, eventfd, a pipe), but
 * while it loads, Node's ESM loader opens the module graph's files side by side: measured here under
 * prlimit, a start failed with 21 fds free and succeeded with 23 (hello app). A start that meets EMFILE
 * fails ("EMFILE: too many open files, open '...js'") and, on Node 20, leaves fds behind (epoll), so
 * under fd exhaustion every failed start would shrink the table for good. So threads start only with
 * this many fds free for each one starting, and a connection that needs a new thread past that is
 * refused (503) instead.
 */
export const START_FDS = 32;

export const slotIndex = (slot: number, field: number): number => SLOT_BASE + slot * SLOT_WIDTH + field;

/**
 * Claim the lowest-numbered idle thread (CAS IDLE->BUSY; the acceptor and the main thread both may):
 * hot threads stay hot, high slots age out on their idle timeout. Returns the slot, or -1.
 */
export function claimIdle(ctl: Int32Array): number {
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

/** Hand `fd` to the thread of a slot claimed with claimIdle(): store it in the cell it waits on, wake it. */
export function handOver(ctl: Int32Array, slot: number, fd: number): void {
  const i = slotIndex(slot, S_FD);
  Atomics.store(ctl, i, fd);
  Atomics.notify(ctl, i, 1);
}

export function controlBlock(slots: number): SharedArrayBuffer {
  return new SharedArrayBuffer((SLOT_BASE + slots * SLOT_WIDTH) * 4);
}

/** Stats rows start on 64-byte boundaries too: each thread writes its row on every request. */
export const ROW_STRIDE = Math.ceil(ROW_WIDTH / 8) * 8;

export function statsBlock(rows: number): SharedArrayBuffer {
  return new SharedArrayBuffer(rows * ROW_STRIDE * 8);
}

/** Row `i` of a stats block (slot i, or the acceptor's). */
export function rowOf(stats: SharedArrayBuffer, i: number): Float64Array {
  return new Float64Array(stats, i * ROW_STRIDE * 8, ROW_WIDTH);
}

export interface ConnThreadData {
  slot: number;
  ctl: SharedArrayBuffer;
  /** Float64 rows of ROW_WIDTH (blocking.ts), one per slot, the acceptor's last. */
  stats: SharedArrayBuffer;
  app: string;
  service: import('../../apps/service.js').ServiceOptions;
  /** Idle threads beyond this many leave after idleMs. */
  spare: number;
  idleMs: number;
  /** Header, idle and send timeouts, lingering close (engines/types.ts). */
  limits: import('../types.js').ConnectionLimits;
}

export interface AcceptorData {
  listenFd: number;
  ctl: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  row: number;
  protocol: string;
}

export type FromAcceptor =
  | { type: 'ready' }
  | { type: 'spawn'; fd: number }
  | { type: 'warn'; message: string };

export type FromConnThread = { type: 'ready' } | { type: 'warn'; message: string };
/** stop(): from now on answers carry Connection: close (Service.draining), async ones included. */
export type ToConnThread = { type: 'drain' };
