/**
 * The io_uring backend of the load loop: the client side of the completion model, on the same ring
 * primitives as the server engine (engines/io_uring/loop.ts, sys/io_uring.ts).
 *
 *  - connect: socket() and TCP_NODELAY (and bind() to a source address) are plain syscalls; the
 *    connect itself is an IORING_OP_CONNECT SQE, whose CQE is `onConnect`. The socket stays blocking:
 *    io_uring issues every network op non-blocking first and, on EAGAIN/EINPROGRESS, waits on its own
 *    internal poll (IORING_FEAT_FAST_POLL, 5.7), so O_NONBLOCK would change nothing but the rare
 *    io-wq punt. The sockaddr is the loop's Endpoint buffer, which outlives the run; the kernel copies
 *    it at submission anyway (io_connect_prep -> move_addr_to_kernel).
 *  - receive: one multishot RECV per connection (6.0; else re-armed after every completion) picking
 *    buffers from a provided-buffer ring: `onData(slot, ringBuffer, n)`, and the buffer goes back to
 *    the ring as soon as the callback returns. An idle connection holds no buffer.
 *  - send: the loop's bytes are only valid during send() (workload.ts reuses them), and a SEND SQE
 *    reads its bytes whenever the kernel gets to it, so they are copied into the slot's own transmit
 *    buffer. One SEND per connection is in flight at a time (two could complete out of order if the
 *    first waits for socket space); what the loop sends meanwhile is appended to the slot's queue
 *    buffer and goes out, in order, when the CQE arrives. A CQE with a short count (the socket send
 *    buffer filled: io_send completes with what it copied unless MSG_WAITALL) resubmits the rest.
 *  - close: an ASYNC_CANCEL (by user_data) of each request in flight, hard-linked to a CLOSE
 *    (in-flight requests hold their own reference to the socket, so a bare close(2) would leave the
 *    multishot recv armed and send no FIN). All SQEs; they go out with the next io_uring_enter.
 *  - wait(timeout): one io_uring_enter that submits everything prepared since the last one and waits
 *    for a completion or the timeout (IORING_ENTER_EXT_ARG, 5.11: a nanosecond timespec, no timeout
 *    SQE), then every CQE is handled.
 *
 * user_data layout (64 bits, two u32 halves, so no BigInt on the hot path):
 *
 * | bits  | field | meaning                                                                     |
 * |-------|-------|-----------------------------------------------------------------------------|
 * | 0-31  | slot  | the loop's connection slot (0 for the shutdown cancel)                      |
 * | 32-39 | op    | U_CONNECT 1, U_RECV 2, U_SEND 3, U_CLOSE 4, U_CANCEL 5                      |
 * | 40-63 | gen   | the slot's generation when the SQE was prepared (24 bits, wraps)            |
 *
 * A slot's generation moves on when it closes, so a completion for an earlier connection of the
 * same slot (a cancelled recv, a send cut short, a connect that timed out) is recognised as stale
 * after the slot has reconnected: its ring buffer is still returned and a send's bytes released,
 * and nothing reaches the loop.
 *
 * Ring trouble: -ENOBUFS (the buffer ring ran dry before we reaped) ends a multishot recv and a CQE
 * without IORING_CQE_F_MORE ends it too (a CQ overflow does that); both are re-armed at once, and the
 * data they did not take waits in the socket. A CQ overflow parks completions in the kernel's list
 * (IORING_FEAT_NODROP, required by the probe); the next io_uring_enter with GETEVENTS flushes them.
 *
 * Knobs for tests: IOLAB_LOAD_URING_RING=<sq>x<cq> and IOLAB_LOAD_URING_BUFS=<count>x<size> override
 * the ring and buffer sizes (tiny values force CQ overflow and -ENOBUFS).
 */
import {
  AF_INET, ECANCELED, EIO, EMFILE, ENOBUFS, ENOTCONN, IPPROTO_IP, IPPROTO_TCP, IP_BIND_ADDRESS_NO_PORT, MSG_NOSIGNAL,
  SOCK_CLOEXEC, SOCK_STREAM, TCP_NODELAY, ffi,
} from '../sys/index.js';
import {
  BufRing, EBADR, IORING_CQE_BUFFER_SHIFT,
  IORING_CQE_F_BUFFER, IORING_CQE_F_MORE, IORING_SETUP_DEFER_TASKRUN, IOSQE_IO_HARDLINK, Ring, bufferAddress,
  type IoUringSupport,
} from '../sys/io_uring.js';
import type { Endpoint, IoBackend, IoSink } from './io.js';
import { performance } from 'node:perf_hooks'; // the global is a lazy accessor: a getter call per use

/**
 * enum io_uring_op (include/uapi/linux/io_uring.h): IORING_OP_CONNECT, 5.5. The probe does not list
 * it, but it requires provided-buffer rings (5.19), which implies it.
 */
const IORING_OP_CONNECT = 16;

// user_data ops (see the table above)
const U_CONNECT = 1, U_RECV = 2, U_SEND = 3, U_CLOSE = 4, U_CANCEL = 5;
const GEN_MASK = 0xffffff;
const GEN_SPAN = 0x1000000;

const ST_CLOSED = 0, ST_CONNECTING = 1, ST_OPEN = 2;
/** A recv is armed (multishot, or the single one). */
const F_RECV = 1;
/** A SEND is in flight: later bytes wait in the queue buffer. */
const F_SEND = 2;
/** The CONNECT is in flight. */
const F_CONN = 4;

const BGID = 1;
/** Smallest transmit/queue buffer (HTTP and RESP requests are far below; echo grows it once). */
const MIN_TX = 512;
/** Receive buffer memory: the ring is consumed in FIFO order, so every buffer gets touched over time. */
const RECV_BUDGET = 32 * 1024 * 1024;
/** How long destroy() waits for the kernel to finish with our buffers before unmapping them. */
const SHUTDOWN_DRAIN_MS = 500;

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

function clamp(n: number, lo: number, hi: number): number {
  return n < lo ? lo : n > hi ? hi : n;
}

/** Parse `<a>x<b>`: a a power of two in [1, 32768], b in [bMin, bMax]; null when unset. */
function pair(name: string, bMin: number, bMax: number): [number, number] | null {
  const v = process.env[name];
  if (v === undefined || v === '') return null;
  const m = /^(\d+)x(\d+)$/.exec(v);
  const a = m ? Number(m[1]) : 0, b = m ? Number(m[2]) : 0;
  if (!m || a < 1 || a > 32768 || a & (a - 1) || b < bMin || b > bMax) {
    throw new Error(`${name}=${v}: want <a>x<b>, a a power of two <= 32768, b in ${bMin}..${bMax}`);
  }
  return [a, b];
}

/**
 * Sizes for `slots` connections. In closed mode every connection has a reply coming, and one turn
 * may reap a CQE from each, each holding a whole provided buffer until it is handled: so about one
 * buffer per connection, within a fixed memory budget (16 KB each up to 1k connections, 2 KB at
 * 16k). The SQ holds a turn's sends without flushing early; the CQ a turn's completions.
 */
export function uringSizes(slots: number): { sq: number; cq: number; bufs: number; bufSize: number } {
  const ring = pair('IOLAB_LOAD_URING_RING', 1, 65536);
  const buf = pair('IOLAB_LOAD_URING_BUFS', 64, 1 << 20);
  const sq = ring ? ring[0] : clamp(nextPow2(slots), 256, 8192);
  const cq = ring ? Math.max(ring[1], sq) : Math.min(sq * 4, 65536);
  const bufs = buf ? buf[0] : clamp(nextPow2(slots * 2), 256, 16384);
  const bufSize = buf ? buf[1] : clamp(2 ** Math.floor(Math.log2(RECV_BUDGET / bufs)), 2048, 16384);
  return { sq, cq, bufs, bufSize };
}

export class UringIo implements IoBackend {
  readonly name = 'io_uring';
  private readonly sink: IoSink;
  private readonly ring: Ring;
  private readonly bufRing: BufRing;
  private readonly multishot: boolean;
  private readonly sizes: ReturnType<typeof uringSizes>;

  // ---- per-slot rows ----
  private readonly fdOf: Int32Array;
  private readonly gen: Uint32Array;
  private readonly state: Uint8Array;
  private readonly flags: Uint8Array;
  /** The bytes of the SEND in flight (never written while it is), its address, how far it has got. */
  private readonly txBuf: (Buffer | null)[];
  private readonly txAddr: Float64Array;
  private readonly txOff: Int32Array;
  private readonly txEnd: Int32Array;
  /** Bytes queued behind the SEND in flight. The two buffers swap when it completes. */
  private readonly qBuf: (Buffer | null)[];
  private readonly qAddr: Float64Array;
  private readonly qLen: Int32Array;
  /**
   * Transmit buffers of slots closed while their SEND was in flight, by (generation, slot): the
   * kernel may still read them until that SEND's (stale) CQE arrives. Rare, so a Map.
   */
  private readonly orphans = new Map<number, Buffer>();
  /** sockaddr address of each Endpoint buffer (koffi.address once per target, not per connect). */
  private readonly addrOf = new Map<Buffer, number>();
  private readonly one = Buffer.alloc(4);
  /**
   * CONNECT, RECV and SEND SQEs whose final CQE has not arrived (a multishot recv counts once): the
   * requests that point at our memory (sockaddr, ring buffers, transmit buffers). CLOSE and CANCEL
   * do not, and are not counted.
   */
  private busy = 0;
  private destroyed = false;
  private warned = false;
  /** Counters as they were when destroy() closed the ring. */
  private final: Record<string, number> | null = null;

  // ---- counters (result: client.io) ----
  private enobufs = 0;
  private shortSends = 0;
  private cqOverflows = 0;
  private recvRearms = 0;
  private staleCqes = 0;

  constructor(slots: number, sink: IoSink, support: IoUringSupport) {
    this.sink = sink;
    this.multishot = support.multishotRecv;
    this.sizes = uringSizes(slots);
    // The probe's flags minus DEFER_TASKRUN. A client's completions are mostly poll-driven (a reply
    // arrived, a connect finished), which run as task work; with DEFER_TASKRUN, from 6.13 on, an
    // io_uring_enter runs at most 20 of them per pass (io_uring.c IO_LOCAL_TW_DEFAULT_MAX), so 1,000
    // connections took one enter per 6-7 replies here, against one per 14-50 with COOP_TASKRUN,
    // which runs them all on our next entry to the kernel, still without an IPI.
    this.ring = new Ring({ entries: this.sizes.sq, cqEntries: this.sizes.cq, flags: support.setupFlags & ~IORING_SETUP_DEFER_TASKRUN });
    try {
      this.bufRing = new BufRing(this.ring, BGID, this.sizes.bufs, this.sizes.bufSize);
    } catch (e) {
      this.ring.close();
      throw e;
    }
    this.fdOf = new Int32Array(slots).fill(-1);
    this.gen = new Uint32Array(slots);
    this.state = new Uint8Array(slots);
    this.flags = new Uint8Array(slots);
    this.txBuf = new Array<Buffer | null>(slots).fill(null);
    this.txAddr = new Float64Array(slots);
    this.txOff = new Int32Array(slots);
    this.txEnd = new Int32Array(slots);
    this.qBuf = new Array<Buffer | null>(slots).fill(null);
    this.qAddr = new Float64Array(slots);
    this.qLen = new Int32Array(slots);
    this.one.writeInt32LE(1, 0);
  }

  /** Set user_data (see the table above); count CONNECT, RECV and SEND as busy until their final CQE. */
  private track(i: number, slot: number, op: number, gen: number): void {
    this.ring.setUserData(i, slot, (op | (gen << 8)) >>> 0);
    if (op <= U_SEND) this.busy++;
  }

  // ------------------------------------------------------------------------------------ connect

  connect(slot: number, target: Endpoint, source: Endpoint | null): number {
    if (this.state[slot] !== ST_CLOSED) this.close(slot);
    let fd: number;
    try {
      fd = ffi.socket(target.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    } catch (e) {
      return -((e as { errno?: number }).errno ?? EMFILE);
    }
    try {
      // Nagle would hold a pipelined batch written while an earlier one is unacknowledged.
      ffi.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, this.one, 4);
      if (source !== null) {
        // Let connect() choose the port per 4-tuple (see constants.ts); IPv4 only (the option is IP-level).
        if (source.family === AF_INET) ffi.setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, this.one, 4);
        ffi.bind(fd, source.addr, source.addr.length);
      }
    } catch (e) {
      ffi.close(fd);
      return -((e as { errno?: number }).errno ?? 99);
    }
    let addr = this.addrOf.get(target.addr);
    if (addr === undefined) this.addrOf.set(target.addr, (addr = bufferAddress(target.addr)));
    // liburing io_uring_prep_connect: addr -> sockaddr, off -> addrlen.
    const i = this.ring.prepRw(IORING_OP_CONNECT, fd, addr, 0, target.addr.length);
    this.track(i, slot, U_CONNECT, this.gen[slot]!);
    this.fdOf[slot] = fd;
    this.state[slot] = ST_CONNECTING;
    this.flags[slot] = F_CONN;
    this.txOff[slot] = this.txEnd[slot] = this.qLen[slot] = 0;
    return 0;
  }

  private onConnectCqe(slot: number, res: number, now: number): void {
    this.flags[slot]! &= ~F_CONN;
    if (res < 0) {
      this.close(slot);
      this.sink.onConnect(slot, -res, now);
      return;
    }
    this.state[slot] = ST_OPEN;
    this.armRecv(slot);
    this.sink.onConnect(slot, 0, now);
  }

  // ------------------------------------------------------------------------------------ receive

  private armRecv(slot: number): void {
    const i = this.ring.prepRecvSelect(this.fdOf[slot]!, BGID, this.multishot);
    this.track(i, slot, U_RECV, this.gen[slot]!);
    this.flags[slot]! |= F_RECV;
  }

  private onRecvCqe(slot: number, g: number, res: number, cflags: number, now: number): void {
    const bid = cflags & IORING_CQE_F_BUFFER ? cflags >>> IORING_CQE_BUFFER_SHIFT : -1;
    if (!(cflags & IORING_CQE_F_MORE)) this.flags[slot]! &= ~F_RECV;
    if (res > 0) {
      if (bid < 0) {
        // Cannot happen with IOSQE_BUFFER_SELECT; if it does, the byte stream is lost: end it.
        this.closeWith(slot, EIO, now);
        return;
      }
      this.sink.onData(slot, this.bufRing.bufs[bid]!, res, now);
      this.bufRing.add(bid); // the sink is done with it: the kernel may have it back
      // The sink may have closed (or closed and reopened) the slot; else keep a recv armed.
      if (this.gen[slot] === g && this.state[slot] === ST_OPEN && !(this.flags[slot]! & F_RECV)) {
        this.recvRearms++;
        this.armRecv(slot);
      }
      return;
    }
    if (bid >= 0) this.bufRing.add(bid);
    if (res === -ENOBUFS || res === -ECANCELED) {
      // The ring ran dry before we reaped: the buffers handled in this turn are back (published
      // before the next enter), and the bytes not taken wait in the socket.
      if (res === -ENOBUFS) this.enobufs++;
      if (!(this.flags[slot]! & F_RECV)) {
        this.recvRearms++;
        this.armRecv(slot);
      }
      return;
    }
    this.closeWith(slot, res === 0 ? 0 : -res, now); // 0: the peer's FIN; else ECONNRESET ...
  }

  // ------------------------------------------------------------------------------------ send

  send(slot: number, buf: Buffer, len: number): number {
    if (this.state[slot] !== ST_OPEN) return -ENOTCONN;
    if (len <= 0) return 0;
    if (this.flags[slot]! & F_SEND) {
      // Behind the SEND in flight: append to the queue buffer (never the one the kernel reads).
      const have = this.qLen[slot]!;
      let q = this.qBuf[slot];
      if (q === null || q.length < have + len) {
        const next = Buffer.allocUnsafeSlow(nextPow2(Math.max(MIN_TX, have + len)));
        if (q !== null && have > 0) q.copy(next, 0, 0, have);
        this.qBuf[slot] = q = next;
        this.qAddr[slot] = bufferAddress(next);
      }
      buf.copy(q, have, 0, len);
      this.qLen[slot] = have + len;
      return 0;
    }
    let tx = this.txBuf[slot];
    if (tx === null || tx.length < len) {
      // allocUnsafeSlow: a backing store of its own (never a slice of Node's pool), so its address
      // is stable and nothing else writes there while the kernel reads it.
      this.txBuf[slot] = tx = Buffer.allocUnsafeSlow(nextPow2(Math.max(MIN_TX, len)));
      this.txAddr[slot] = bufferAddress(tx);
    }
    buf.copy(tx, 0, 0, len);
    this.txOff[slot] = 0;
    this.txEnd[slot] = len;
    this.submitSend(slot);
    return 0;
  }

  private submitSend(slot: number): void {
    const off = this.txOff[slot]!;
    // MSG_NOSIGNAL: a peer that reset gets EPIPE in the CQE, not SIGPIPE.
    const i = this.ring.prepSend(this.fdOf[slot]!, this.txAddr[slot]! + off, this.txEnd[slot]! - off, MSG_NOSIGNAL);
    this.track(i, slot, U_SEND, this.gen[slot]!);
    this.flags[slot]! |= F_SEND;
  }

  private onSendCqe(slot: number, res: number, now: number): void {
    this.flags[slot]! &= ~F_SEND;
    if (res < 0) {
      this.closeWith(slot, -res, now); // EPIPE, ECONNRESET: the connection is gone
      return;
    }
    const off = this.txOff[slot]! + res;
    if (off < this.txEnd[slot]!) {
      // Short send: the socket buffer filled. The rest goes next, before anything queued.
      this.txOff[slot] = off;
      this.shortSends++;
      this.submitSend(slot);
      return;
    }
    const q = this.qLen[slot]!;
    this.txOff[slot] = this.txEnd[slot] = 0;
    if (q === 0) return;
    // The queue becomes the transmit buffer; the finished transmit buffer takes the queue's place.
    const tx = this.txBuf[slot]!, txAddr = this.txAddr[slot]!;
    this.txBuf[slot] = this.qBuf[slot]!;
    this.txAddr[slot] = this.qAddr[slot]!;
    this.qBuf[slot] = tx;
    this.qAddr[slot] = txAddr;
    this.qLen[slot] = 0;
    this.txEnd[slot] = q;
    this.submitSend(slot);
  }

  backlog(slot: number): number {
    return this.txEnd[slot]! - this.txOff[slot]! + this.qLen[slot]!;
  }

  // ------------------------------------------------------------------------------------ close

  isOpen(slot: number): boolean {
    return this.state[slot] !== ST_CLOSED;
  }

  close(slot: number): void {
    if (this.state[slot] === ST_CLOSED) return;
    const fd = this.fdOf[slot]!, g = this.gen[slot]!, fl = this.flags[slot]!;
    // In-flight requests hold their own reference to the socket, so a bare CLOSE would leave the
    // multishot recv armed and send no FIN: cancel each first, hard-linked to the CLOSE (a hard link
    // runs the CLOSE whatever the cancels return: -ENOENT when the request just completed). By
    // user_data, not IORING_ASYNC_CANCEL_FD: a cancel by fd walks every armed poll of the ring
    // (io_uring/poll.c io_poll_file_find), and closing 15,000 connections that way took 8 s of CPU
    // here; a user_data lookup is one hash bucket.
    const chain = ((fl & F_RECV) !== 0 ? 1 : 0) + ((fl & F_SEND) !== 0 ? 1 : 0) + ((fl & F_CONN) !== 0 ? 1 : 0) + 1;
    // Keep the chain in one submission: a link cut at a batch boundary ends there.
    if (this.ring.sqSpace() < chain) this.ring.submitAndWait(0, 0);
    if (fl & F_RECV) this.cancel(slot, U_RECV, g);
    if (fl & F_SEND) this.cancel(slot, U_SEND, g);
    if (fl & F_CONN) this.cancel(slot, U_CONNECT, g);
    this.track(this.ring.prepClose(fd), slot, U_CLOSE, g);
    if (fl & F_SEND) {
      // The kernel may still read these bytes until the SEND's CQE: keep them alive until then.
      this.orphans.set(g * GEN_SPAN + slot, this.txBuf[slot]!);
      this.txBuf[slot] = null;
    }
    this.state[slot] = ST_CLOSED;
    this.flags[slot] = 0;
    this.fdOf[slot] = -1;
    this.gen[slot] = (g + 1) & GEN_MASK;
    this.txOff[slot] = this.txEnd[slot] = this.qLen[slot] = 0;
  }

  /** Cancel the slot's request of kind `op` (generation g), hard-linked to what follows unless `link` is false. */
  private cancel(slot: number, op: number, g: number, link = true): void {
    const c = this.ring.prepCancelUserData(slot, (op | (g << 8)) >>> 0);
    if (link) this.ring.setFlags(c, IOSQE_IO_HARDLINK);
    this.track(c, slot, U_CANCEL, g);
  }

  private closeWith(slot: number, errno: number, now: number): void {
    this.close(slot);
    this.sink.onClose(slot, errno, now);
  }

  // ------------------------------------------------------------------------------------ wait

  wait(timeoutMs: number): number {
    this.bufRing.publish();
    // The one syscall of the turn: submit everything prepared since the last one, then wait for a
    // completion or the timeout (0: only poll, still with GETEVENTS, which runs pending completions,
    // and a zero timeout).
    const r = this.ring.submitAndWait(1, timeoutMs > 0 ? timeoutMs : 0);
    if (r === -EBADR) this.warnDropped();
    return this.reap();
  }

  private reap(): number {
    const handled = this.ring.reap(this.complete);
    // Completions overflowed into the kernel's list: the next enter(GETEVENTS) flushes them back.
    if (this.ring.cqOverflowFlagged()) this.cqOverflows++;
    return handled;
  }

  private readonly complete = (slot: number, hi: number, res: number, cflags: number): void => {
    const op = hi & 0xff, g = hi >>> 8;
    if (op === U_CLOSE || op === U_CANCEL) return; // a cancel that found nothing (-ENOENT) is normal
    if (!(cflags & IORING_CQE_F_MORE)) this.busy--;
    if (this.destroyed || this.gen[slot] !== g || this.state[slot] === ST_CLOSED) {
      // Stale: the slot closed (and maybe reconnected) after this SQE was prepared.
      this.staleCqes++;
      if (op === U_RECV && cflags & IORING_CQE_F_BUFFER) this.bufRing.add(cflags >>> IORING_CQE_BUFFER_SHIFT);
      else if (op === U_SEND) this.orphans.delete(g * GEN_SPAN + slot);
      return;
    }
    // A timestamp per completion, not per batch, as the epoll backend does per event.
    const now = performance.now();
    if (op === U_RECV) this.onRecvCqe(slot, g, res, cflags, now);
    else if (op === U_SEND) this.onSendCqe(slot, res, now);
    else if (op === U_CONNECT) this.onConnectCqe(slot, res, now);
  };

  private warnDropped(): void {
    if (this.warned) return;
    this.warned = true;
    process.stderr.write(
      `iolab load: io_uring dropped ${this.ring.cqDropped()} completions (the kernel could not grow its overflow list); ` +
        'connections waiting on them end by --timeout\n',
    );
  }

  /** Backend counters for the result (`client.io`); valid after destroy() too. */
  stats(): Record<string, number> {
    if (this.final !== null) return this.final;
    const r = this.ring;
    return {
      sqesSubmitted: r.sqesSubmitted,
      cqesReaped: r.cqesReaped,
      sqFullFlushes: r.sqFullFlushes,
      cqOverflows: this.cqOverflows,
      cqDropped: r.cqDropped(),
      enobufs: this.enobufs,
      recvRearms: this.recvRearms,
      shortSends: this.shortSends,
      staleCqes: this.staleCqes,
      recvBuffers: this.sizes.bufs,
      recvBufferSize: this.sizes.bufSize,
    };
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    // Cancel each request in flight by its user_data and close each fd directly: a socket goes when
    // its last request lets go of it. Not one IORING_ASYNC_CANCEL_ANY|ALL: that restarts its scan of
    // the whole poll table for every request it cancels (io_uring/cancel.c, poll.c
    // io_poll_file_find), and took 2 s of system time for 15,000 connections here.
    for (let slot = 0; slot < this.state.length; slot++) {
      if (this.state[slot] === ST_CLOSED) continue;
      const fl = this.flags[slot]!, g = this.gen[slot]!;
      if (fl & F_RECV) this.cancel(slot, U_RECV, g, false);
      if (fl & F_SEND) this.cancel(slot, U_SEND, g, false);
      if (fl & F_CONN) this.cancel(slot, U_CONNECT, g, false);
      ffi.close(this.fdOf[slot]!);
      if (fl & F_SEND) this.orphans.set(g * GEN_SPAN + slot, this.txBuf[slot]!);
      this.state[slot] = ST_CLOSED;
      this.flags[slot] = 0;
      this.fdOf[slot] = -1;
    }
    // Wait (bounded) for the kernel to finish with our buffers before they are unmapped: a recv
    // completing into unmapped memory could hit whatever maps there next. The bound counts from the
    // last progress, not the start: the first enter may spend a while tearing down many sockets.
    let until = performance.now() + SHUTDOWN_DRAIN_MS;
    while (this.busy > 0 && performance.now() < until) {
      this.bufRing.publish();
      this.ring.submitAndWait(1, 10);
      if (this.reap() > 0) until = performance.now() + SHUTDOWN_DRAIN_MS;
    }
    this.final = this.stats();
    if (this.busy <= 0) this.bufRing.close();
    else process.stderr.write(`iolab load: ${this.busy} io_uring requests still in flight at exit; receive buffers left mapped\n`);
    this.ring.close(); // the kernel cancels anything left
    this.orphans.clear();
  }
}
