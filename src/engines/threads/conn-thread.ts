/**
 * A connection thread of the threads engine: it serves one connection at a time with blocking
 * read()/write() (blocking.ts), then parks until the acceptor hands it the next one, and leaves after
 * an idle timeout when more than `spare` threads are idle.
 *
 * In Node an OS thread that runs JS is a worker_thread, and each is a whole V8 isolate with its own
 * heap: about 8.6-11 MB RSS each as measured here, against ~12 KB for a bare pthread (8 MB of virtual
 * stack, mostly untouched). That cost is the Node price of this model, not the model's own; the
 * engine's stats report the estimate it works with (`pool.rssPerThread`).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadApp } from '../../apps/index.js';
import { FeedResult, createService } from '../../apps/service.js';
import { ffi } from '../../sys/index.js';
import { BlockingConn, ROW_WAKEUPS } from './blocking.js';
import {
  C_CURRENT, C_IDLE, C_STOP, PARK_LINGER, PARK_NO, PARK_READ, PARK_WAKING, S_FD, S_PARKED, S_SERVING, S_STATE,
  ST_EXITING, ST_IDLE, rowOf, slotIndex, type ConnThreadData, type FromConnThread, type ToConnThread,
} from './shared.js';

const d = workerData as ConnThreadData;
const port = parentPort!;
const ctl = new Int32Array(d.ctl);
const row = rowOf(d.stats, d.slot);
const I_STATE = slotIndex(d.slot, S_STATE);
const I_FD = slotIndex(d.slot, S_FD);
const I_PARKED = slotIndex(d.slot, S_PARKED);
const I_SERVING = slotIndex(d.slot, S_SERVING);

const app = await loadApp(d.app);
const service = createService(app, d.service);
// An async answer is encoded when its handler settles, while this thread sits in `await` (blocking.ts),
// and encode() reads `draining` then to add Connection: close. The main thread says so at stop(), and
// the message is handled during that await. (Not an accessor over C_STOP: redefining `draining` as a
// getter on the service object cost ~1-1.5 us more CPU per request here, median of 9 wrk -c4 runs
// on a noisy machine: 14.9 us against 13.0 us.)
port.on('message', (m: ToConnThread) => {
  if (m.type === 'drain') service.draining = true;
});
port.unref(); // the thread still ends when its loop does

/** Back from read() between requests: true when stop() has begun our lingering close meanwhile. */
function unpark(): boolean {
  for (;;) {
    const v = Atomics.compareExchange(ctl, I_PARKED, PARK_READ, PARK_NO);
    if (v === PARK_READ || v === PARK_NO) return false;
    if (v === PARK_LINGER) {
      Atomics.store(ctl, I_PARKED, PARK_NO);
      return true;
    }
    // PARK_WAKING: the main thread is in shutdown() on our fd; the fd must stay ours until it is done.
    Atomics.wait(ctl, I_PARKED, PARK_WAKING, 10);
  }
}

const conn = new BlockingConn(service, new FeedResult(), row, {
  stopLevel: () => Atomics.load(ctl, C_STOP),
  park: () => Atomics.store(ctl, I_PARKED, PARK_READ),
  unpark,
  tickMs: 0,
  limits: d.limits,
});
port.postMessage({ type: 'ready' } satisfies FromConnThread);

/** Leave the pool (on stop), unless the acceptor claimed this thread in the meantime (then its fd is on the way). */
function tryExit(): boolean {
  if (Atomics.compareExchange(ctl, I_STATE, ST_IDLE, ST_EXITING) !== ST_IDLE) return false;
  Atomics.sub(ctl, C_IDLE, 1);
  return true;
}

/**
 * Leave after an idle timeout, but only while more than `spare` threads are idle. Idle threads time
 * out together, so "check C_IDLE, then leave" would let all of them go: each one first takes one
 * departure off C_IDLE with a CAS (never below spare), then takes itself out of the pool.
 */
function tryRetire(): boolean {
  for (;;) {
    const idle = Atomics.load(ctl, C_IDLE);
    if (idle <= d.spare) return false;
    if (Atomics.compareExchange(ctl, C_IDLE, idle, idle - 1) !== idle) continue;
    if (Atomics.compareExchange(ctl, I_STATE, ST_IDLE, ST_EXITING) === ST_IDLE) return true;
    // The acceptor claimed this thread meanwhile (and took it off C_IDLE itself): give the departure back.
    Atomics.add(ctl, C_IDLE, 1);
    return false;
  }
}

for (;;) {
  const fd = Atomics.load(ctl, I_FD);
  if (fd < 0) {
    if (Atomics.load(ctl, C_STOP) !== 0 && tryExit()) break;
    // Park until the acceptor stores an fd in our cell (a futex wait, as a pthread pool would).
    const w = Atomics.wait(ctl, I_FD, -1, d.idleMs);
    if (w === 'timed-out') {
      if (tryRetire()) break;
    } else row[ROW_WAKEUPS]!++;
    continue;
  }
  Atomics.store(ctl, I_SERVING, 1);
  try {
    await conn.serve(fd);
  } catch (e) {
    // An engine bug must not leak the connection or the thread: report it, close, serve the next.
    port.postMessage({ type: 'warn', message: `connection thread: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}` } satisfies FromConnThread);
  }
  // Forget the fd before closing it, so the main thread never shuts down a number reused meanwhile.
  Atomics.store(ctl, I_FD, -1);
  ffi.close(fd);
  Atomics.store(ctl, I_SERVING, 0);
  const stopping = Atomics.load(ctl, C_STOP) !== 0;
  // Back to the pool (IDLE before C_CURRENT drops, so the bounded acceptor it wakes finds this thread).
  if (stopping) Atomics.store(ctl, I_STATE, ST_EXITING);
  else {
    Atomics.add(ctl, C_IDLE, 1);
    Atomics.store(ctl, I_STATE, ST_IDLE);
  }
  Atomics.sub(ctl, C_CURRENT, 1);
  Atomics.notify(ctl, C_CURRENT);
  if (stopping) break;
}
