/**
 * Busy polling: non-blocking I/O without a readiness API. Every fd is O_NONBLOCK and each pass simply
 * tries them all: accept4() on the listener, read() on every connection (write() on a backlogged one).
 * Whatever is not ready answers EAGAIN, which the sys layer counts; that count is this model's cost.
 *
 * It is a Poller that never asks the kernel anything: wait() reports every watched fd as "maybe
 * ready", in the interest it was given, so the shared reactor (reactor.ts) does the trying, and keeps
 * its per-connection tables, backpressure, half-close and drain logic unchanged. A pass over the fd
 * list is one wait(), so the reactor's `wakeups` counts passes.
 *
 * Between passes that did nothing (every call returned EAGAIN) the poller can back off:
 *  - `none`: spin. Lowest latency, one CPU at 100% even with no clients.
 *  - `yield`: sched_yield(2). Gives the CPU to another runnable thread, if any; alone on a CPU it
 *    returns at once, so it still burns the CPU.
 *  - `sleep:<us>`: nanosleep(2) for that long. Idle CPU near zero; up to <us> added latency.
 * Choose with the environment variable IOLAB_BACKOFF (e.g. IOLAB_BACKOFF=sleep:1000).
 *
 * The reactor still yields to Node's own loop every ~50 ms (its YIELD_MS), so signals, timers, stop()
 * and stats keep working while the loop spins.
 */
import { eagain, ffi, getrlimit, nanosleep, totalSyscalls } from '../../sys/index.js';
import type { Poller, PollerCapabilities } from '../reactor/poller.js';

export type Backoff = { kind: 'none' } | { kind: 'yield' } | { kind: 'sleep'; us: number };

export function parseBackoff(spec: string | undefined): Backoff {
  if (spec === undefined || spec === '' || spec === 'none') return { kind: 'none' };
  if (spec === 'yield') return { kind: 'yield' };
  const m = /^sleep:(\d+)(us)?$/.exec(spec);
  if (m && Number(m[1]) > 0) return { kind: 'sleep', us: Number(m[1]) };
  throw new Error(`busypoll backoff must be none, yield or sleep:<microseconds>, e.g. sleep:1000 (got ${JSON.stringify(spec)})`);
}

export function formatBackoff(b: Backoff): string {
  return b.kind === 'sleep' ? `sleep:${b.us}` : b.kind;
}

export class BusyPoller implements Poller {
  /** `busypoll`, or e.g. `busypoll (sleep:1000us)` with a back-off, so results say which ran. */
  readonly name: string;
  readonly capabilities: PollerCapabilities;
  readonly firedFd: Int32Array;
  readonly firedMask: Uint8Array;
  readonly backoff: Backoff;
  /** Passes that found nothing to do and backed off. */
  idlePasses = 0;

  /** Dense list of watched fds, [0, n): the order a pass tries them in. */
  private readonly fds: Int32Array;
  private n = 0;
  /** Per fd: index in `fds` (-1: not watched) and the interest mask. */
  private readonly pos: Int32Array;
  private readonly mask: Uint8Array;
  /** Calls that did not return EAGAIN, as of the end of the last wait(): unchanged means an idle pass. */
  private lastWork = -1;

  constructor(backoff: Backoff) {
    this.backoff = backoff;
    this.name = backoff.kind === 'none' ? 'busypoll' : `busypoll (${backoff.kind === 'sleep' ? `sleep:${backoff.us}us` : 'yield'})`;
    const cap = Math.min(getrlimit().hard, 1 << 21) + 16;
    this.capabilities = { edge: false, fdLimit: cap, closeRemoves: true };
    this.firedFd = new Int32Array(cap);
    this.firedMask = new Uint8Array(cap);
    this.fds = new Int32Array(cap);
    this.pos = new Int32Array(cap).fill(-1);
    this.mask = new Uint8Array(cap);
  }

  add(fd: number, mask: number): boolean {
    if (fd >= this.pos.length) return false;
    if (this.pos[fd]! < 0) {
      this.pos[fd] = this.n;
      this.fds[this.n++] = fd;
    }
    this.mask[fd] = mask;
    return true;
  }

  modify(fd: number, mask: number): void {
    this.mask[fd] = mask;
  }

  remove(fd: number): void {
    const i = this.pos[fd]!;
    if (i < 0) return;
    const last = this.fds[--this.n]!;
    this.fds[i] = last;
    this.pos[last] = i;
    this.pos[fd] = -1;
    this.mask[fd] = 0;
  }

  /** One pass: every watched fd with a non-empty interest, as if it were ready. Backs off first if the last pass was idle. */
  wait(timeoutMs: number): number {
    if (timeoutMs !== 0 && totalSyscalls() - eagain[0]! === this.lastWork) {
      this.idlePasses++;
      const b = this.backoff;
      if (b.kind === 'yield') ffi.sched_yield();
      else if (b.kind === 'sleep') nanosleep(timeoutMs < 0 ? b.us / 1000 : Math.min(b.us / 1000, timeoutMs));
    }
    // Measured after the back-off, whose own call must not count as work.
    this.lastWork = totalSyscalls() - eagain[0]!;
    const fds = this.fds, mask = this.mask, outFd = this.firedFd, outMask = this.firedMask;
    let k = 0;
    for (let i = 0; i < this.n; i++) {
      const fd = fds[i]!;
      const m = mask[fd]!;
      if (m === 0) continue;
      outFd[k] = fd;
      outMask[k++] = m;
    }
    return k;
  }

  close(): void {
    this.n = 0;
  }
}
