/**
 * The epoll backend of the load loop: non-blocking sockets, one edge-triggered registration per
 * connection (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, added once, never modified), reads into one
 * shared 64 KB buffer.
 *
 * Why edge-triggered with both directions: a client's sockets are writable almost always, so a
 * level-triggered EPOLLOUT would fire every wait; adding it only while backlogged costs two
 * epoll_ctl calls per backlog episode. With EPOLLET the kernel reports the connect completing
 * (writable), every new segment (readable), and the send buffer draining after it was full, each
 * once; the registration never changes. A short read means the socket was drained: new data raises
 * a new edge (ep_poll_callback runs on every sk_data_ready), so no extra read() to hit EAGAIN.
 *
 * Connect completion: EPOLLOUT without EPOLLERR/EPOLLHUP is success (no getsockopt); only on an error
 * edge is SO_ERROR read to learn why (ECONNREFUSED ...).
 */
import {
  EAGAIN, EINPROGRESS, EPOLL_CTL_ADD, EPOLLERR, EPOLLET, EPOLLHUP, EPOLLIN, EPOLLOUT, EPOLLRDHUP, Epoll, IPPROTO_IP,
  IPPROTO_TCP, IP_BIND_ADDRESS_NO_PORT, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM, SOL_SOCKET, SO_ERROR, TCP_NODELAY,
  ffi, getrlimit, AF_INET,
} from '../sys/index.js';
import type { Endpoint, IoBackend, IoSink } from './io.js';
import { performance } from 'node:perf_hooks'; // the global is a lazy accessor: a getter call per use

const READ_SIZE = 64 * 1024;
const MAX_EVENTS = 1024;
const ST_CLOSED = 0, ST_CONNECTING = 1, ST_OPEN = 2;
const EV_MASK = (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) >>> 0;

export class EpollIo implements IoBackend {
  readonly name = 'epoll';
  private readonly sink: IoSink;
  private readonly ep: Epoll;
  private readonly ev32: Uint32Array;
  private readonly stride: number;
  private readonly dataOff: number;
  /** fd -> slot (-1: not ours). Sized by the hard open-file limit, which bounds fd numbers. */
  private readonly slotOf: Int32Array;
  // ---- per-slot rows ----
  private readonly fdOf: Int32Array;
  private readonly state: Uint8Array;
  private readonly outq: (Buffer | null)[];
  private readonly outOff: Int32Array;

  private readonly rbuf = Buffer.allocUnsafe(READ_SIZE);
  private readonly one = Buffer.alloc(4);
  private readonly optVal = Buffer.alloc(4);
  private readonly optLen = new Uint32Array(1);
  /** struct timespec for epoll_pwait2 (layout asserted in sys/structs.ts). */
  private readonly ts = Buffer.alloc(16);
  private readonly ts32 = new Uint32Array(this.ts.buffer, this.ts.byteOffset, 4);

  constructor(slots: number, sink: IoSink) {
    this.sink = sink;
    this.ep = new Epoll(MAX_EVENTS);
    const b = this.ep.events;
    this.ev32 = new Uint32Array(b.buffer, b.byteOffset, b.byteLength >> 2);
    this.stride = b.byteLength / MAX_EVENTS / 4; // 3 words (packed, x86_64) or 4
    this.dataOff = this.stride === 3 ? 1 : 2;
    const cap = Math.min(getrlimit().hard, 1 << 21) + 16;
    this.slotOf = new Int32Array(cap).fill(-1);
    this.fdOf = new Int32Array(slots).fill(-1);
    this.state = new Uint8Array(slots);
    this.outq = new Array<Buffer | null>(slots).fill(null);
    this.outOff = new Int32Array(slots);
    this.one.writeInt32LE(1, 0);
  }

  connect(slot: number, target: Endpoint, source: Endpoint | null): number {
    const fd = ffi.socket(target.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= this.slotOf.length) {
      ffi.close(fd);
      return -24; // EMFILE: beyond the table (cannot happen while the hard limit holds)
    }
    // Nagle would hold a pipelined batch written while an earlier one is unacknowledged.
    ffi.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, this.one, 4);
    if (source !== null) {
      // Let connect() choose the port per 4-tuple (see constants.ts); IPv4 only (the option is IP-level).
      if (source.family === AF_INET) ffi.setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, this.one, 4);
      try {
        ffi.bind(fd, source.addr, source.addr.length);
      } catch (e) {
        ffi.close(fd);
        return -((e as { errno?: number }).errno ?? 99);
      }
    }
    const r = ffi.connect(fd, target.addr, target.addr.length);
    if (r < 0 && r !== -EINPROGRESS) {
      ffi.close(fd);
      return r;
    }
    const c = this.ep.ctl(EPOLL_CTL_ADD, fd, EV_MASK);
    if (c < 0) {
      ffi.close(fd);
      return c;
    }
    this.slotOf[fd] = slot;
    this.fdOf[slot] = fd;
    this.state[slot] = ST_CONNECTING;
    this.outq[slot] = null;
    this.outOff[slot] = 0;
    // r === 0: loopback can complete at once; the EPOLLOUT edge still arrives and reports it.
    return 0;
  }

  send(slot: number, buf: Buffer, len: number): number {
    const q = this.outq[slot];
    if (q !== null) {
      // Already backlogged: append, keeping order; the EPOLLOUT edge flushes it.
      const off = this.outOff[slot]!;
      const next = Buffer.allocUnsafe(q.length - off + len);
      q.copy(next, 0, off);
      buf.copy(next, q.length - off, 0, len);
      this.outq[slot] = next;
      this.outOff[slot] = 0;
      return 0;
    }
    const w = ffi.write(this.fdOf[slot]!, buf, len);
    if (w === len) return 0;
    if (w < 0 && w !== -EAGAIN) return w;
    const done = w > 0 ? w : 0;
    this.outq[slot] = Buffer.from(buf.subarray(done, len));
    this.outOff[slot] = 0;
    return 0;
  }

  backlog(slot: number): number {
    const q = this.outq[slot];
    return q === null ? 0 : q.length - this.outOff[slot]!;
  }

  isOpen(slot: number): boolean {
    return this.state[slot] !== ST_CLOSED;
  }

  close(slot: number): void {
    const fd = this.fdOf[slot]!;
    if (this.state[slot] === ST_CLOSED || fd < 0) return;
    // close(2) removes the fd from the epoll set (no dup of it exists).
    ffi.close(fd);
    this.slotOf[fd] = -1;
    this.fdOf[slot] = -1;
    this.state[slot] = ST_CLOSED;
    this.outq[slot] = null;
    this.outOff[slot] = 0;
  }

  private closeWith(slot: number, errno: number, now: number, connecting: boolean): void {
    this.close(slot);
    if (connecting) this.sink.onConnect(slot, errno, now);
    else this.sink.onClose(slot, errno, now);
  }

  private soError(fd: number): number {
    this.optLen[0] = 4;
    const r = ffi.getsockopt(fd, SOL_SOCKET, SO_ERROR, this.optVal, this.optLen);
    return r < 0 ? -r : this.optVal.readInt32LE(0);
  }

  wait(timeoutMs: number): number {
    let n: number;
    if (timeoutMs > 0 && ffi.epollPwait2 !== null) {
      // Nanosecond timeout: rate mode wakes at the intended send time, not up to 1 ms after it.
      // tv_sec and tv_nsec as little-endian int64 halves (timeouts are far below 2^32 s): no BigInt.
      const ns = Math.round(timeoutMs * 1e6);
      const sec = Math.floor(ns / 1e9);
      this.ts32[0] = sec;
      this.ts32[2] = ns - sec * 1e9;
      n = ffi.epollPwait2(this.ep.fd, this.ep.events, MAX_EVENTS, this.ts);
    } else n = this.ep.wait(timeoutMs <= 0 ? 0 : Math.ceil(timeoutMs));
    if (n <= 0) return 0;
    const ev = this.ev32, s = this.stride, d = this.dataOff;
    for (let i = 0; i < n; i++) {
      // A timestamp per event, not per batch: handling a batch takes a while (and a big read loop
      // longer), and replies are timed against it (wrk reads its clock per reply too).
      const now = performance.now();
      const e = ev[i * s]!;
      const fd = ev[i * s + d]!;
      const slot = this.slotOf[fd]!;
      if (slot < 0) continue; // closed earlier in this batch
      const st = this.state[slot]!;
      if (st === ST_CONNECTING) {
        if (e & (EPOLLERR | EPOLLHUP)) {
          const err = this.soError(fd);
          this.closeWith(slot, err === 0 ? 111 /* ECONNREFUSED: HUP without an error code */ : err, now, true);
          continue;
        }
        if (!(e & EPOLLOUT)) continue;
        this.state[slot] = ST_OPEN;
        this.sink.onConnect(slot, 0, now);
        if (this.fdOf[slot] !== fd) continue;
        // The same wakeup may already carry the first bytes (EPOLLIN): fall through to read them.
        if (!(e & (EPOLLIN | EPOLLRDHUP))) continue;
      }
      if (e & EPOLLOUT && this.outq[slot] !== null) {
        if (!this.flush(slot, fd, now)) continue;
      }
      if (e & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) this.readAll(slot, fd, now, e);
    }
    return n;
  }

  /** Returns false if the connection ended. */
  private flush(slot: number, fd: number, now: number): boolean {
    const q = this.outq[slot]!;
    const off = this.outOff[slot]!;
    const w = ffi.write(fd, off === 0 ? q : q.subarray(off), q.length - off);
    if (w < 0) {
      if (w === -EAGAIN) return true;
      this.closeWith(slot, -w, now, false);
      return false;
    }
    if (off + w < q.length) this.outOff[slot] = off + w;
    else {
      this.outq[slot] = null;
      this.outOff[slot] = 0;
    }
    return true;
  }

  private readAll(slot: number, fd: number, now: number, e: number): void {
    const rbuf = this.rbuf;
    for (;;) {
      const n = ffi.read(fd, rbuf, READ_SIZE);
      if (n > 0) {
        this.sink.onData(slot, rbuf, n, now);
        // The sink may have closed (or closed and reopened) the slot.
        if (this.fdOf[slot] !== fd) return;
        if (n < READ_SIZE) {
          // Drained, unless the peer also hung up: then read on to see the EOF or the error.
          if (!(e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
        } else now = performance.now(); // a long read loop: keep the clock fresh
        continue;
      }
      if (n === 0) {
        this.closeWith(slot, 0, now, false);
        return;
      }
      if (n === -EAGAIN) {
        if (e & (EPOLLERR | EPOLLHUP)) {
          const err = this.soError(fd);
          this.closeWith(slot, err === 0 ? 104 /* ECONNRESET */ : err, now, false);
        }
        return;
      }
      this.closeWith(slot, -n, now, false);
      return;
    }
  }

  destroy(): void {
    for (let slot = 0; slot < this.fdOf.length; slot++) this.close(slot);
    this.ep.close();
  }
}
