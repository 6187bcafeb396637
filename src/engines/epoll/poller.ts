/** epoll(7) backend: O(ready) waits; level-triggered by default, EPOLLET with `edge`. */
import { Epoll, EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD, EPOLLERR, EPOLLET, EPOLLHUP, EPOLLIN, EPOLLOUT, EPOLLRDHUP, check } from '../../sys/index.js';
import { HANGUP, READABLE, WRITABLE, type Poller, type PollerCapabilities } from '../reactor/poller.js';

export class EpollPoller implements Poller {
  readonly name: string;
  readonly capabilities: PollerCapabilities;
  readonly firedFd: Int32Array;
  readonly firedMask: Uint8Array;
  private readonly ep: Epoll;
  private readonly et: number;
  private readonly ev32: Uint32Array;
  private readonly stride: number;
  private readonly dataOff: number;

  constructor(opts: { edge?: boolean; maxEvents?: number } = {}) {
    const max = opts.maxEvents ?? 1024;
    this.ep = new Epoll(max);
    this.et = opts.edge ? EPOLLET : 0;
    this.name = opts.edge ? 'epoll (edge)' : 'epoll';
    this.capabilities = { edge: !!opts.edge, fdLimit: Infinity, closeRemoves: true };
    this.firedFd = new Int32Array(max);
    this.firedMask = new Uint8Array(max);
    // The event array is 4-byte aligned and, on x86_64, 12-byte packed records: a Uint32Array view
    // reads `events` and the low half of `data` without DataView calls.
    const b = this.ep.events;
    this.ev32 = new Uint32Array(b.buffer, b.byteOffset, b.byteLength >> 2);
    this.stride = b.byteLength / max / 4;
    this.dataOff = this.stride === 3 ? 1 : 2;
  }

  private mask(m: number): number {
    // EPOLLRDHUP tells a half-close apart from plain readability in one wakeup.
    return ((m & READABLE ? EPOLLIN | EPOLLRDHUP : 0) | (m & WRITABLE ? EPOLLOUT : 0) | this.et) >>> 0;
  }

  add(fd: number, mask: number): boolean {
    check('epoll_ctl', this.ep.ctl(EPOLL_CTL_ADD, fd, this.mask(mask)), `add fd ${fd}`);
    return true;
  }

  modify(fd: number, mask: number): void {
    check('epoll_ctl', this.ep.ctl(EPOLL_CTL_MOD, fd, this.mask(mask)), `modify fd ${fd}`);
  }

  remove(fd: number, closing: boolean): void {
    // close(2) drops the fd from every epoll set (while no dup of it survives), saving a syscall.
    if (!closing) this.ep.ctl(EPOLL_CTL_DEL, fd, 0);
  }

  wait(timeoutMs: number): number {
    const n = this.ep.wait(timeoutMs);
    if (n <= 0) return 0;
    const ev = this.ev32, s = this.stride, d = this.dataOff;
    for (let i = 0; i < n; i++) {
      const e = ev[i * s]!;
      this.firedFd[i] = ev[i * s + d]!;
      let m = 0;
      if (e & (EPOLLIN | EPOLLRDHUP)) m |= READABLE;
      if (e & EPOLLOUT) m |= WRITABLE;
      if (e & (EPOLLERR | EPOLLHUP)) m |= READABLE | WRITABLE;
      if (e & (EPOLLRDHUP | EPOLLHUP)) m |= HANGUP;
      this.firedMask[i] = m;
    }
    return n;
  }

  close(): void {
    this.ep.close();
  }
}
