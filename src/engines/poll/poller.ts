/**
 * poll(2) backend. No fd ceiling, but every wait hands the kernel the whole pollfd array and the
 * kernel walks all of it, then we walk it again for revents: O(n) per wait in watched fds, not in
 * ready ones. That is the cost epoll removed. The array stays dense: remove() moves the last entry
 * into the hole, with `index[fd]` pointing at each fd's slot.
 */
import { POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLRDHUP, ffi, getrlimit } from '../../sys/index.js';
import { POLLFD_SIZE } from '../../sys/structs.js';
import { HANGUP, READABLE, WRITABLE, type Poller, type PollerCapabilities } from '../reactor/poller.js';

export class PollPoller implements Poller {
  readonly name = 'poll';
  readonly capabilities: PollerCapabilities = { edge: false, fdLimit: Infinity, closeRemoves: false };
  readonly firedFd: Int32Array;
  readonly firedMask: Uint8Array;
  private buf: Buffer;
  private i32: Int32Array;
  private i16: Int16Array;
  private n = 0;
  private readonly index: Int32Array;

  constructor() {
    const cap = Math.min(getrlimit().hard, 1 << 21) + 16;
    this.index = new Int32Array(cap).fill(-1);
    this.firedFd = new Int32Array(cap);
    this.firedMask = new Uint8Array(cap);
    this.buf = Buffer.alloc(1024 * POLLFD_SIZE);
    this.i32 = new Int32Array(this.buf.buffer, this.buf.byteOffset, this.buf.length >> 2);
    this.i16 = new Int16Array(this.buf.buffer, this.buf.byteOffset, this.buf.length >> 1);
  }

  private events(mask: number): number {
    return (mask & READABLE ? POLLIN | POLLRDHUP : 0) | (mask & WRITABLE ? POLLOUT : 0);
  }

  add(fd: number, mask: number): boolean {
    if (fd >= this.index.length) return false;
    if ((this.n + 1) * POLLFD_SIZE > this.buf.length) {
      const next = Buffer.alloc(this.buf.length * 2);
      this.buf.copy(next);
      this.buf = next;
      this.i32 = new Int32Array(next.buffer, next.byteOffset, next.length >> 2);
      this.i16 = new Int16Array(next.buffer, next.byteOffset, next.length >> 1);
    }
    const slot = this.n++;
    this.index[fd] = slot;
    this.i32[slot * 2] = fd;
    this.i16[slot * 4 + 2] = this.events(mask);
    this.i16[slot * 4 + 3] = 0;
    return true;
  }

  modify(fd: number, mask: number): void {
    const slot = this.index[fd]!;
    if (slot >= 0) this.i16[slot * 4 + 2] = this.events(mask);
  }

  remove(fd: number): void {
    const slot = this.index[fd]!;
    if (slot < 0) return;
    const last = --this.n;
    if (slot !== last) {
      const lastFd = this.i32[last * 2]!;
      this.i32[slot * 2] = lastFd;
      this.i32[slot * 2 + 1] = this.i32[last * 2 + 1]!;
      this.index[lastFd] = slot;
    }
    this.index[fd] = -1;
  }

  wait(timeoutMs: number): number {
    const r = ffi.poll(this.buf, this.n, timeoutMs);
    if (r <= 0) return 0;
    let k = 0;
    for (let slot = 0; slot < this.n && k < r; slot++) {
      const rev = this.i16[slot * 4 + 3]!;
      if (rev === 0) continue;
      let m = 0;
      if (rev & (POLLIN | POLLRDHUP)) m |= READABLE;
      if (rev & POLLOUT) m |= WRITABLE;
      if (rev & (POLLERR | POLLHUP | POLLNVAL)) m |= READABLE | WRITABLE;
      if (rev & (POLLRDHUP | POLLHUP)) m |= HANGUP;
      this.firedFd[k] = this.i32[slot * 2]!;
      this.firedMask[k++] = m;
    }
    return k;
  }

  close(): void {}
}
