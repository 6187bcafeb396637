/**
 * io_uring without liburing, the way libuv's src/unix/linux.c drives it: our own struct layouts
 * (asserted at load against include/uapi/linux/io_uring.h), io_uring_setup + mmap of the rings,
 * SQEs written straight into the shared submission array, CQEs read straight out of the shared
 * completion array, and one io_uring_enter per loop turn to submit and wait.
 *
 * Memory ordering. The SQ and CQ are single-producer/single-consumer rings shared with the kernel;
 * liburing (src/queue.c, include/liburing/barrier.h) orders them with acquire/release on the four
 * indices and plain accesses for the entries. We do the same with `Atomics` on Uint32Array views
 * of the mapping. koffi.view() hands back a plain (non-shared) ArrayBuffer, and ECMAScript allows
 * every Atomics operation except wait/notify on non-shared integer arrays, so no SharedArrayBuffer
 * is needed. Why not plain typed-array loads and stores:
 *  - the JIT may keep a plain load in a register or move it (e.g. hoist the CQ tail out of the
 *    reaping loop); an Atomics access is never elided or reordered with other memory accesses;
 *  - arm64 reorders plain loads in hardware: reading a CQE before observing the tail that
 *    published it needs an acquire (V8 emits ldar for Atomics.load, stlr for Atomics.store).
 * On x86_64 (TSO) Atomics.load is a plain mov and Atomics.store an xchg: a few ns per turn.
 * Without SQPOLL the kernel reads the SQ only inside our io_uring_enter, and a syscall is a full
 * barrier, so the SQ tail store alone would do; with SQPOLL a kernel thread polls the tail from
 * another CPU and the release store is what makes the SQE bodies visible before the tail.
 *
 * Sources: include/uapi/linux/io_uring.h (as mirrored in liburing's src/include/liburing/io_uring.h),
 * liburing src/queue.c and include/liburing.h (prep helpers, buffer rings), io_uring/net.c,
 * io_uring/cancel.c (cancel semantics), libuv src/unix/linux.c (setup, mmap, probe-and-fall-back).
 */
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import koffi from 'koffi';
import * as f from './ffi.js';
import { assertLayout } from './structs.js';
import { nowNs, onTracing, sub } from './trace.js';
import { EAGAIN, EBUSY, EINTR, EINVAL, ENOMEM, ENOSYS, EPERM, SyscallError, errnoName } from './errno.js';
import { MAP_ANONYMOUS, MAP_POPULATE, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from './constants.js';

// ---------------------------------------------------------------------------------------------
// Constants (include/uapi/linux/io_uring.h)
// ---------------------------------------------------------------------------------------------

/** enum io_uring_op: only the opcodes iolab uses. */
export const IORING_OP_NOP = 0, IORING_OP_ACCEPT = 13, IORING_OP_ASYNC_CANCEL = 14, IORING_OP_CLOSE = 19,
  IORING_OP_SEND = 26, IORING_OP_RECV = 27, IORING_OP_SPLICE = 30, IORING_OP_PROVIDE_BUFFERS = 31, IORING_OP_SHUTDOWN = 34;

/** sqe->flags */
export const IOSQE_FIXED_FILE = 1 << 0, IOSQE_IO_DRAIN = 1 << 1, IOSQE_IO_LINK = 1 << 2, IOSQE_IO_HARDLINK = 1 << 3,
  IOSQE_ASYNC = 1 << 4, IOSQE_BUFFER_SELECT = 1 << 5, IOSQE_CQE_SKIP_SUCCESS = 1 << 6;

/** io_uring_setup() flags */
export const IORING_SETUP_SQPOLL = 1 << 1, IORING_SETUP_CQSIZE = 1 << 3, IORING_SETUP_CLAMP = 1 << 4,
  IORING_SETUP_SUBMIT_ALL = 1 << 7, IORING_SETUP_COOP_TASKRUN = 1 << 8, IORING_SETUP_SINGLE_ISSUER = 1 << 12,
  IORING_SETUP_DEFER_TASKRUN = 1 << 13;

/** ASYNC_CANCEL flags (sqe->cancel_flags) */
export const IORING_ASYNC_CANCEL_ALL = 1 << 0, IORING_ASYNC_CANCEL_FD = 1 << 1, IORING_ASYNC_CANCEL_ANY = 1 << 2;

/** send/recv flags in sqe->ioprio */
export const IORING_RECVSEND_POLL_FIRST = 1 << 0, IORING_RECV_MULTISHOT = 1 << 1;
/** accept flags in sqe->ioprio */
export const IORING_ACCEPT_MULTISHOT = 1 << 0;

/** cqe->flags */
export const IORING_CQE_F_BUFFER = 1 << 0, IORING_CQE_F_MORE = 1 << 1, IORING_CQE_F_SOCK_NONEMPTY = 1 << 2;
export const IORING_CQE_BUFFER_SHIFT = 16;

/** mmap offsets */
export const IORING_OFF_SQ_RING = 0, IORING_OFF_CQ_RING = 0x8000000, IORING_OFF_SQES = 0x10000000;

/** sq_ring->flags */
export const IORING_SQ_NEED_WAKEUP = 1 << 0, IORING_SQ_CQ_OVERFLOW = 1 << 1, IORING_SQ_TASKRUN = 1 << 2;

/** io_uring_enter(2) flags */
export const IORING_ENTER_GETEVENTS = 1 << 0, IORING_ENTER_SQ_WAKEUP = 1 << 1, IORING_ENTER_SQ_WAIT = 1 << 2,
  IORING_ENTER_EXT_ARG = 1 << 3;

/** io_uring_params->features */
export const IORING_FEAT_SINGLE_MMAP = 1 << 0, IORING_FEAT_NODROP = 1 << 1, IORING_FEAT_SUBMIT_STABLE = 1 << 2,
  IORING_FEAT_FAST_POLL = 1 << 5, IORING_FEAT_EXT_ARG = 1 << 8, IORING_FEAT_NATIVE_WORKERS = 1 << 9,
  IORING_FEAT_CQE_SKIP = 1 << 11;
const FEATURE_NAMES = [
  'SINGLE_MMAP', 'NODROP', 'SUBMIT_STABLE', 'RW_CUR_POS', 'CUR_PERSONALITY', 'FAST_POLL', 'POLL_32BITS',
  'SQPOLL_NONFIXED', 'EXT_ARG', 'NATIVE_WORKERS', 'RSRC_TAGS', 'CQE_SKIP', 'LINKED_FILE', 'REG_REG_RING',
  'RECVSEND_BUNDLE', 'MIN_TIMEOUT', 'RW_ATTR', 'NO_IOWAIT',
];

/** io_uring_register(2) opcodes */
export const IORING_REGISTER_PROBE = 8, IORING_REGISTER_PBUF_RING = 22, IORING_UNREGISTER_PBUF_RING = 23;
/** io_uring_probe_op->flags */
export const IO_URING_OP_SUPPORTED = 1 << 0;

/** ETIME: a timed io_uring_enter wait expired with nothing submitted; EBADR: CQEs were dropped (asm-generic/errno.h). */
export const ETIME = 62, EBADR = 53;

// ---------------------------------------------------------------------------------------------
// Layouts, pinned at load (libuv does the same with STATIC_ASSERTs in linux.c)
// ---------------------------------------------------------------------------------------------

export const io_sqring_offsets = koffi.struct('iolab_io_sqring_offsets', {
  head: 'uint32', tail: 'uint32', ring_mask: 'uint32', ring_entries: 'uint32', flags: 'uint32',
  dropped: 'uint32', array: 'uint32', resv1: 'uint32', user_addr: 'uint64',
});
assertLayout('io_sqring_offsets', io_sqring_offsets, 40, {
  head: 0, tail: 4, ring_mask: 8, ring_entries: 12, flags: 16, dropped: 20, array: 24, user_addr: 32,
});

export const io_cqring_offsets = koffi.struct('iolab_io_cqring_offsets', {
  head: 'uint32', tail: 'uint32', ring_mask: 'uint32', ring_entries: 'uint32', overflow: 'uint32',
  cqes: 'uint32', flags: 'uint32', resv1: 'uint32', user_addr: 'uint64',
});
assertLayout('io_cqring_offsets', io_cqring_offsets, 40, {
  head: 0, tail: 4, ring_mask: 8, ring_entries: 12, overflow: 16, cqes: 20, flags: 24, user_addr: 32,
});

export const io_uring_params = koffi.struct('iolab_io_uring_params', {
  sq_entries: 'uint32', cq_entries: 'uint32', flags: 'uint32', sq_thread_cpu: 'uint32', sq_thread_idle: 'uint32',
  features: 'uint32', wq_fd: 'uint32', resv: koffi.array('uint32', 3),
  sq_off: io_sqring_offsets, cq_off: io_cqring_offsets,
});
export const IO_URING_PARAMS_SIZE = 120;
export const PARAMS = {
  sq_entries: 0, cq_entries: 4, flags: 8, sq_thread_cpu: 12, sq_thread_idle: 16, features: 20, wq_fd: 24,
  sq_off: 40, cq_off: 80,
} as const;
assertLayout('io_uring_params', io_uring_params, IO_URING_PARAMS_SIZE, PARAMS);

/**
 * struct io_uring_sqe, 64 bytes. The kernel's unions are collapsed to one member each; the others
 * share the offset: `off` is also addr2, `op_flags` is msg_flags / accept_flags / cancel_flags /
 * rw_flags, `buf_group` is buf_index (a packed __u16 union), `file_index` is splice_fd_in.
 */
export const io_uring_sqe = koffi.struct('iolab_io_uring_sqe', {
  opcode: 'uint8', flags: 'uint8', ioprio: 'uint16', fd: 'int32', off: 'uint64', addr: 'uint64', len: 'uint32',
  op_flags: 'uint32', user_data: 'uint64', buf_group: 'uint16', personality: 'uint16', file_index: 'uint32',
  addr3: 'uint64', pad2: 'uint64',
});
export const SQE_SIZE = 64;
export const SQE = {
  opcode: 0, flags: 1, ioprio: 2, fd: 4, off: 8, addr: 16, len: 24, op_flags: 28, user_data: 32, buf_group: 40,
  personality: 42, file_index: 44, addr3: 48,
} as const;
assertLayout('io_uring_sqe', io_uring_sqe, SQE_SIZE, SQE);

export const io_uring_cqe = koffi.struct('iolab_io_uring_cqe', { user_data: 'uint64', res: 'int32', flags: 'uint32' });
export const CQE_SIZE = 16;
export const CQE = { user_data: 0, res: 8, flags: 12 } as const;
assertLayout('io_uring_cqe', io_uring_cqe, CQE_SIZE, CQE);

/** One provided buffer in a buffer ring. Entry 0's `resv` overlays the ring's `tail` (see BufRing). */
export const io_uring_buf = koffi.struct('iolab_io_uring_buf', { addr: 'uint64', len: 'uint32', bid: 'uint16', resv: 'uint16' });
export const BUF_SIZE = 16;
export const BUF = { addr: 0, len: 8, bid: 12, resv: 14 } as const;
assertLayout('io_uring_buf', io_uring_buf, BUF_SIZE, BUF);
/** struct io_uring_buf_ring { ...; __u16 tail; } at offset 14, overlaid on bufs[0].resv. */
export const BUF_RING_TAIL = 14;

export const io_uring_buf_reg = koffi.struct('iolab_io_uring_buf_reg', {
  ring_addr: 'uint64', ring_entries: 'uint32', bgid: 'uint16', flags: 'uint16', resv: koffi.array('uint64', 3),
});
export const BUF_REG_SIZE = 40;
export const BUF_REG = { ring_addr: 0, ring_entries: 8, bgid: 12, flags: 14, resv: 16 } as const;
assertLayout('io_uring_buf_reg', io_uring_buf_reg, BUF_REG_SIZE, BUF_REG);

export const io_uring_getevents_arg = koffi.struct('iolab_io_uring_getevents_arg', {
  sigmask: 'uint64', sigmask_sz: 'uint32', min_wait_usec: 'uint32', ts: 'uint64',
});
export const GETEVENTS_ARG_SIZE = 24;
export const GETEVENTS_ARG = { sigmask: 0, sigmask_sz: 8, min_wait_usec: 12, ts: 16 } as const;
assertLayout('io_uring_getevents_arg', io_uring_getevents_arg, GETEVENTS_ARG_SIZE, GETEVENTS_ARG);

export const io_uring_probe_op = koffi.struct('iolab_io_uring_probe_op', { op: 'uint8', resv: 'uint8', flags: 'uint16', resv2: 'uint32' });
export const io_uring_probe = koffi.struct('iolab_io_uring_probe', {
  last_op: 'uint8', ops_len: 'uint8', resv: 'uint16', resv2: koffi.array('uint32', 3),
});
export const PROBE_HEADER_SIZE = 16;
export const PROBE_OP_SIZE = 8;
assertLayout('io_uring_probe_op', io_uring_probe_op, PROBE_OP_SIZE, { op: 0, flags: 2 });
assertLayout('io_uring_probe', io_uring_probe, PROBE_HEADER_SIZE, { last_op: 0, ops_len: 1 });

const TWO32 = 4294967296;
const PAGE = 4096;

/** A koffi pointer's address as a Number (user-space addresses fit in 47-52 bits). */
export function pointerAddress(p: unknown): number {
  return Number(koffi.address(p));
}
/** A Buffer's data address (byteOffset included), for sqe->addr. Valid while the Buffer lives. */
export function bufferAddress(b: Uint8Array): number {
  return Number(koffi.address(b));
}

// ---------------------------------------------------------------------------------------------
// The ring
// ---------------------------------------------------------------------------------------------

export interface RingOptions {
  /** SQ size (power of two; the kernel rounds up). */
  entries: number;
  /** CQ size (IORING_SETUP_CQSIZE); default 2 x entries. */
  cqEntries?: number;
  /** Extra io_uring_setup flags (SQPOLL, COOP_TASKRUN ...). */
  flags?: number;
  /** SQPOLL: how long the kernel thread spins before sleeping (ms). */
  sqThreadIdleMs?: number;
}

/**
 * One io_uring instance: SQ/CQ rings mapped once (IORING_FEAT_SINGLE_MMAP), SQEs prepared in
 * place, submitted and waited for by `submitAndWait` (one io_uring_enter), CQEs read in place.
 */
export class Ring {
  readonly fd: number;
  readonly features: number;
  readonly setupFlags: number;
  readonly sqEntries: number;
  readonly cqEntries: number;
  readonly sqpoll: boolean;

  private ringPtr: unknown = null;
  private ringLen = 0;
  private sqePtr: unknown = null;
  private sqeLen = 0;
  /** The whole SQ/CQ ring mapping as u32 words (indices and flags live here). */
  private readonly ring32: Uint32Array;
  private readonly sqHeadW: number;
  /** The SQ head as last read (getSqe): a lower bound on the kernel's. */
  private sqHeadSeen = 0;
  private readonly sqTailW: number;
  private readonly sqFlagsW: number;
  private readonly sqDroppedW: number;
  private readonly cqHeadW: number;
  private readonly cqTailW: number;
  private readonly cqOverflowW: number;
  private readonly sqMask: number;
  readonly cqMask: number;

  /** SQE array views: byte, u16 and u32 access to the 64-byte entries. */
  private readonly sqe8: Uint8Array;
  private readonly sqe16: Uint16Array;
  private readonly sqe32: Uint32Array;
  private readonly sqeI32: Int32Array;
  /** CQE array as u32 words: [user_data lo, user_data hi, res, flags] per entry. */
  readonly cq32: Uint32Array;
  readonly cqI32: Int32Array;

  /** Next SQE slot to hand out; published to the kernel's tail on submit (liburing: sqe_tail). */
  private sqeTail = 0;
  /** Our copy of the CQ head; published after each batch. */
  cqHead = 0;
  /** Counters: SQEs published to the kernel, CQEs consumed, enters that only flushed a full SQ. */
  sqesSubmitted = 0;
  cqesReaped = 0;
  sqFullFlushes = 0;

  private readonly params = Buffer.alloc(IO_URING_PARAMS_SIZE);
  private readonly arg = Buffer.alloc(GETEVENTS_ARG_SIZE);
  /** __kernel_timespec for the wait: tv_sec and tv_nsec as u32 halves (both < 2^32 here). */
  private readonly ts = Buffer.alloc(16);
  private readonly ts32: Uint32Array;
  /** The timeout `ts` holds, ms (-1: none yet). */
  private tsMs = -1;
  private closed = false;

  constructor(o: RingOptions) {
    const p = this.params;
    let flags = o.flags ?? 0;
    if (o.cqEntries) {
      flags |= IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
      p.writeUInt32LE(o.cqEntries, PARAMS.cq_entries);
    }
    p.writeUInt32LE(flags >>> 0, PARAMS.flags);
    if (flags & IORING_SETUP_SQPOLL) p.writeUInt32LE(o.sqThreadIdleMs ?? 10, PARAMS.sq_thread_idle);
    const fd = f.io_uring_setup(o.entries, p);
    if (fd < 0) throw new SyscallError('io_uring_setup', -fd);
    this.fd = fd;
    try {
      this.setupFlags = flags;
      this.sqpoll = (flags & IORING_SETUP_SQPOLL) !== 0;
      this.features = p.readUInt32LE(PARAMS.features);
      this.sqEntries = p.readUInt32LE(PARAMS.sq_entries);
      this.cqEntries = p.readUInt32LE(PARAMS.cq_entries);
      if (!(this.features & IORING_FEAT_SINGLE_MMAP)) throw new Error('io_uring: kernel lacks IORING_FEAT_SINGLE_MMAP (needs 5.4+)');
      const sq = PARAMS.sq_off, cq = PARAMS.cq_off;
      const sqLen = p.readUInt32LE(sq + 24 /* array */) + this.sqEntries * 4;
      const cqLen = p.readUInt32LE(cq + 20 /* cqes */) + this.cqEntries * CQE_SIZE;
      // One mapping holds both rings (SINGLE_MMAP); size it for the larger, as libuv does.
      this.ringLen = Math.max(sqLen, cqLen);
      this.ringPtr = f.mmap(null, this.ringLen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
      this.sqeLen = this.sqEntries * SQE_SIZE;
      this.sqePtr = f.mmap(null, this.sqeLen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
      const ringAb = koffi.view(this.ringPtr, this.ringLen);
      this.ring32 = new Uint32Array(ringAb, 0, this.ringLen >>> 2);
      const w = (off: number): number => p.readUInt32LE(off) >>> 2;
      this.sqHeadW = w(sq + 0);
      this.sqTailW = w(sq + 4);
      this.sqMask = this.ring32[w(sq + 8)]!;
      this.sqFlagsW = w(sq + 16);
      this.sqDroppedW = w(sq + 20);
      this.cqHeadW = w(cq + 0);
      this.cqTailW = w(cq + 4);
      this.cqMask = this.ring32[w(cq + 8)]!;
      this.cqOverflowW = w(cq + 16);
      const cqesOff = p.readUInt32LE(cq + 20);
      this.cq32 = new Uint32Array(ringAb, cqesOff, this.cqEntries * 4);
      this.cqI32 = new Int32Array(ringAb, cqesOff, this.cqEntries * 4);
      // The SQ index array maps ring slots to SQEs; identity, set once (libuv: "slot -> sqe identity mapping").
      const arr = new Uint32Array(ringAb, p.readUInt32LE(sq + 24), this.sqEntries);
      for (let i = 0; i < this.sqEntries; i++) arr[i] = i;
      const sqeAb = koffi.view(this.sqePtr, this.sqeLen);
      this.sqe8 = new Uint8Array(sqeAb);
      this.sqe16 = new Uint16Array(sqeAb);
      this.sqe32 = new Uint32Array(sqeAb);
      this.sqeI32 = new Int32Array(sqeAb);
      this.sqeTail = Atomics.load(this.ring32, this.sqTailW);
      this.cqHead = Atomics.load(this.ring32, this.cqHeadW);
      // Wait argument for IORING_ENTER_EXT_ARG: { sigmask 0, sigmask_sz _NSIG/8, ts -> this.ts }.
      this.arg.writeUInt32LE(8, GETEVENTS_ARG.sigmask_sz);
      const tsAddr = bufferAddress(this.ts);
      this.arg.writeUInt32LE(tsAddr % TWO32, GETEVENTS_ARG.ts);
      this.arg.writeUInt32LE(Math.floor(tsAddr / TWO32), GETEVENTS_ARG.ts + 4);
      this.ts32 = new Uint32Array(this.ts.buffer, this.ts.byteOffset, 4);
    } catch (e) {
      this.unmap();
      f.close(fd);
      throw e;
    }
  }

  /** SQEs prepared but not yet handed to the kernel. */
  get sqPending(): number {
    return (this.sqeTail - Atomics.load(this.ring32, this.sqTailW)) >>> 0;
  }

  /** Free SQ slots. The kernel advances the head as it consumes (acquire: it may run on another CPU with SQPOLL). */
  sqSpace(): number {
    this.sqHeadSeen = Atomics.load(this.ring32, this.sqHeadW);
    return this.sqEntries - ((this.sqeTail - this.sqHeadSeen) >>> 0);
  }

  /**
   * The next free SQE, zeroed, as an index (its u32 words start at index * 16). If the SQ is full,
   * the prepared SQEs are flushed with an io_uring_enter that does not wait, and counted.
   */
  getSqe(): number {
    // The kernel only ever moves the head forward, so the head last seen gives a lower bound on the
    // space: the shared head is read (an Atomics.load, a builtin call) only when that bound is 0.
    if ((this.sqeTail - this.sqHeadSeen) >>> 0 === this.sqEntries && this.sqSpace() === 0) {
      this.sqFullFlushes++;
      if (this.sqpoll) {
        // The SQ thread consumes on its own; wait until it has made room (IORING_ENTER_SQ_WAIT).
        this.sqesSubmitted += (this.sqeTail - Atomics.load(this.ring32, this.sqTailW)) >>> 0;
        Atomics.store(this.ring32, this.sqTailW, this.sqeTail);
        f.io_uring_enter(this.fd, 0, 0, IORING_ENTER_SQ_WAIT | IORING_ENTER_SQ_WAKEUP, null, 0);
      } else {
        this.submitAndWait(0, 0);
      }
      if (this.sqSpace() === 0) throw new Error('io_uring: submission queue stays full');
    }
    const i = this.sqeTail & this.sqMask;
    this.sqeTail = (this.sqeTail + 1) >>> 0;
    // Zeroed by hand: TypedArray#fill is a C++ builtin, a call that cost more than these 16 stores.
    const q = this.sqe32, w = i << 4;
    for (let k = w; k < w + 16; k++) q[k] = 0;
    return i;
  }

  /**
   * liburing's io_uring_prep_rw: the one primitive under every prep helper. `addr` and `off` are
   * Numbers (addresses fit in 53 bits); both are written as two u32 halves, so no BigInt per call.
   */
  prepRw(op: number, fd: number, addr: number, len: number, off: number): number {
    const i = this.getSqe();
    const w = i << 4;
    this.sqe8[i << 6] = op;
    this.sqeI32[w + 1] = fd;
    // x >>> 0 is x mod 2^32 for any integer below 2^53; a double `%` is a call to fmod in optimised code.
    const offLo = off >>> 0, addrLo = addr >>> 0;
    this.sqe32[w + 2] = offLo;
    this.sqe32[w + 3] = (off - offLo) / TWO32;
    this.sqe32[w + 4] = addrLo;
    this.sqe32[w + 5] = (addr - addrLo) / TWO32;
    this.sqe32[w + 6] = len;
    return i;
  }

  /** user_data as two u32 halves (see the layout table in the engine that defines them). */
  setUserData(i: number, lo: number, hi: number): void {
    this.sqe32[(i << 4) + 8] = lo;
    this.sqe32[(i << 4) + 9] = hi;
  }

  setFlags(i: number, sqeFlags: number): void {
    this.sqe8[(i << 6) + SQE.flags] = sqeFlags;
  }

  /** Multishot accept (5.19): one SQE, one CQE per accepted connection while IORING_CQE_F_MORE is set. */
  prepMultishotAccept(fd: number, acceptFlags: number): number {
    const i = this.prepRw(IORING_OP_ACCEPT, fd, 0, 0, 0);
    this.sqe16[(i << 5) + 1] = IORING_ACCEPT_MULTISHOT; // ioprio
    this.sqe32[(i << 4) + 7] = acceptFlags; // accept_flags
    return i;
  }

  /** recv into a buffer the kernel picks from group `bgid` (IOSQE_BUFFER_SELECT); multishot needs len 0. */
  prepRecvSelect(fd: number, bgid: number, multishot: boolean): number {
    const i = this.prepRw(IORING_OP_RECV, fd, 0, 0, 0);
    this.sqe8[(i << 6) + SQE.flags] = IOSQE_BUFFER_SELECT;
    if (multishot) this.sqe16[(i << 5) + 1] = IORING_RECV_MULTISHOT;
    this.sqe16[(i << 5) + (SQE.buf_group >>> 1)] = bgid;
    return i;
  }

  prepSend(fd: number, addr: number, len: number, msgFlags: number): number {
    const i = this.prepRw(IORING_OP_SEND, fd, addr, len, 0);
    this.sqe32[(i << 4) + 7] = msgFlags;
    return i;
  }

  prepClose(fd: number): number {
    return this.prepRw(IORING_OP_CLOSE, fd, 0, 0, 0);
  }

  /** shutdown(2) as an SQE (5.11): `how` travels in len (liburing io_uring_prep_shutdown). */
  prepShutdown(fd: number, how: number): number {
    return this.prepRw(IORING_OP_SHUTDOWN, fd, 0, how, 0);
  }

  /** Cancel the request whose user_data is (lo, hi). */
  prepCancelUserData(lo: number, hi: number): number {
    const i = this.prepRw(IORING_OP_ASYNC_CANCEL, -1, 0, 0, 0);
    this.sqe32[(i << 4) + 4] = lo; // sqe->addr carries the user_data to match
    this.sqe32[(i << 4) + 5] = hi;
    return i;
  }

  /** Cancel by fd (IORING_ASYNC_CANCEL_FD, 5.19), optionally every match (ALL), or everything (ANY). */
  prepCancelFd(fd: number, cancelFlags: number): number {
    const i = this.prepRw(IORING_OP_ASYNC_CANCEL, fd, 0, 0, 0);
    this.sqe32[(i << 4) + 7] = cancelFlags;
    return i;
  }

  prepNop(): number {
    return this.prepRw(IORING_OP_NOP, -1, 0, 0, 0);
  }

  /**
   * splice(2) as an SQE (5.7; liburing io_uring_prep_splice): `len` bytes from fdIn at offIn to fdOut
   * at offOut, where -1 means "no offset" (a pipe or socket). off carries off_out, addr off_in,
   * op_flags the splice flags, file_index splice_fd_in.
   */
  prepSplice(fdIn: number, offIn: number, fdOut: number, offOut: number, len: number, spliceFlags: number): number {
    const i = this.prepRw(IORING_OP_SPLICE, fdOut, 0, len, 0);
    const w = i << 4;
    if (offOut < 0) this.sqe32[w + 2] = this.sqe32[w + 3] = 0xffffffff;
    else (this.sqe32[w + 2] = offOut % TWO32), (this.sqe32[w + 3] = Math.floor(offOut / TWO32));
    if (offIn < 0) this.sqe32[w + 4] = this.sqe32[w + 5] = 0xffffffff;
    else (this.sqe32[w + 4] = offIn % TWO32), (this.sqe32[w + 5] = Math.floor(offIn / TWO32));
    this.sqe32[w + 7] = spliceFlags;
    this.sqeI32[w + (SQE.file_index >>> 2)] = fdIn;
    return i;
  }

  /**
   * Publish prepared SQEs and wait for at least `waitNr` CQEs or `timeoutMs` (-1: no timeout), in ONE
   * io_uring_enter. Returns the enter result: SQEs consumed, or 0 / -ETIME / -EINTR when nothing was
   * submitted; other -errno values are thrown. With waitNr 0 it only submits.
   */
  submitAndWait(waitNr: number, timeoutMs: number): number {
    // Release: the SQE bodies written above become visible no later than the tail (liburing
    // __io_uring_flush_sq: io_uring_smp_store_release(sq->ktail, tail)).
    this.sqesSubmitted += (this.sqeTail - Atomics.load(this.ring32, this.sqTailW)) >>> 0;
    Atomics.store(this.ring32, this.sqTailW, this.sqeTail);
    // Everything published and not yet consumed (an earlier enter may have stopped short).
    const toSubmit = (this.sqeTail - Atomics.load(this.ring32, this.sqHeadW)) >>> 0;
    let flags = 0;
    if (this.sqpoll) {
      // The SQ thread submits for us; it only needs a kick when it went to sleep. Atomics.store
      // above is sequentially consistent, so this flags load cannot move before it (liburing's
      // io_uring_smp_mb() in sq_ring_needs_enter).
      if (toSubmit > 0 && Atomics.load(this.ring32, this.sqFlagsW) & IORING_SQ_NEED_WAKEUP) flags |= IORING_ENTER_SQ_WAKEUP;
    }
    let arg: Buffer | null = null;
    let argsz = 0;
    if (waitNr > 0) {
      flags |= IORING_ENTER_GETEVENTS;
      if (timeoutMs >= 0) {
        if (timeoutMs !== this.tsMs) {
          // Loops wait with the same few timeouts turn after turn: convert only on a change.
          this.tsMs = timeoutMs;
          const ns = Math.round(timeoutMs * 1e6);
          const sec = Math.floor(ns / 1e9);
          this.ts32[0] = sec; // tv_sec (high half stays 0)
          this.ts32[2] = ns - sec * 1e9; // tv_nsec
        }
        flags |= IORING_ENTER_EXT_ARG;
        arg = this.arg;
        argsz = GETEVENTS_ARG_SIZE;
      }
    } else if (this.sqpoll && !(flags & IORING_ENTER_SQ_WAKEUP)) {
      return 0; // nothing to wait for and the SQ thread is awake: no syscall needed
    }
    const r = f.io_uring_enter(this.fd, this.sqpoll ? 0 : toSubmit, waitNr, flags, arg, argsz);
    if (r >= 0) return r;
    // Expected: the timeout expired (ETIME), a signal arrived (EINTR), or completions must be reaped
    // before more can be submitted (EBUSY/EAGAIN on CQ overflow, older kernels).
    // EBADR: completions were dropped (only when the overflow list could not grow); cqDropped() says how many.
    if (r === -ETIME || r === -EINTR || r === -EBUSY || r === -EAGAIN || r === -EBADR) return r;
    throw new SyscallError('io_uring_enter', -r);
  }

  /** CQEs ready to read, from cqHead. Acquire: the kernel writes each CQE before it moves the tail. */
  cqReady(): number {
    return (Atomics.load(this.ring32, this.cqTailW) - this.cqHead) >>> 0;
  }

  /** Hand `n` consumed CQEs back to the kernel. Release: we have finished reading them. */
  cqAdvance(n: number): void {
    this.cqHead = (this.cqHead + n) >>> 0;
    this.cqesReaped += n;
    Atomics.store(this.ring32, this.cqHeadW, this.cqHead);
  }

  /**
   * Hand every ready CQE to `complete(user_data lo, user_data hi, res, flags)` and give them back
   * (liburing's io_uring_for_each_cqe + io_uring_cq_advance), until none is left: the kernel may post
   * more while we work (task work runs on any syscall without DEFER_TASKRUN). Returns how many.
   */
  reap(complete: (lo: number, hi: number, res: number, flags: number) => void): number {
    let handled = 0;
    let n = this.cqReady();
    while (n > 0) {
      const cq32 = this.cq32, cqI32 = this.cqI32, mask = this.cqMask, head = this.cqHead;
      for (let k = 0; k < n; k++) {
        const o = ((head + k) & mask) << 2;
        complete(cq32[o]!, cq32[o + 1]!, cqI32[o + 2]!, cq32[o + 3]!);
      }
      this.cqAdvance(n);
      handled += n;
      n = this.cqReady();
    }
    return handled;
  }

  /** The kernel flagged a CQ overflow (completions parked in its overflow list, IORING_FEAT_NODROP). */
  cqOverflowFlagged(): boolean {
    return (Atomics.load(this.ring32, this.sqFlagsW) & IORING_SQ_CQ_OVERFLOW) !== 0;
  }

  /** CQEs the kernel had to drop (only when even its overflow list could not grow). */
  cqDropped(): number {
    if (this.closed) return 0;
    return Atomics.load(this.ring32, this.cqOverflowW);
  }

  /** SQEs the kernel rejected as invalid (bad index in the SQ array). */
  sqDropped(): number {
    return Atomics.load(this.ring32, this.sqDroppedW);
  }

  private unmap(): void {
    if (this.ringPtr) f.munmapRaw(this.ringPtr, this.ringLen);
    if (this.sqePtr) f.munmapRaw(this.sqePtr, this.sqeLen);
    this.ringPtr = this.sqePtr = null;
  }

  /** Close the ring: the kernel cancels whatever is still in flight. Unmaps the rings. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    f.close(this.fd);
    this.unmap();
  }

  // ---- tracing only (sys/trace.ts): called from the traced methods swapped in below, never otherwise ----

  /** Record the SQEs about to be published (between the kernel's tail and ours). */
  traceSqes(ops: Map<string, [number, number]>): void {
    const t = nowNs();
    for (let s = Atomics.load(this.ring32, this.sqTailW); s !== this.sqeTail; s = (s + 1) >>> 0) {
      const i = s & this.sqMask;
      const op = this.sqe8[i << 6]!, fd = this.sqeI32[(i << 4) + 1]!, len = this.sqe32[(i << 4) + 6]!;
      const multishot = (op === IORING_OP_ACCEPT && this.sqe16[(i << 5) + 1]! & IORING_ACCEPT_MULTISHOT) ||
        (op === IORING_OP_RECV && this.sqe16[(i << 5) + 1]! & IORING_RECV_MULTISHOT);
      ops.set(`${this.sqe32[(i << 4) + 8]}:${this.sqe32[(i << 4) + 9]}`, [op, fd]);
      sub('sqe', t, fd, op, len, this.sqe8[(i << 6) + SQE.flags]! | (multishot ? 256 : 0), 0);
    }
  }

  /** Record the CQEs in [from, upTo) (ring positions); returns upTo. */
  traceCqes(from: number, upTo: number, ops: Map<string, [number, number]>): number {
    const t = nowNs();
    for (let s = from; s !== upTo; s = (s + 1) >>> 0) {
      const o = (s & this.cqMask) << 2;
      const known = ops.get(`${this.cq32[o]}:${this.cq32[o + 1]}`);
      sub('cqe', t, known ? known[1] : -1, known ? known[0] : -1, this.cq32[o + 3]!, 0, this.cqI32[o + 2]!);
    }
    return upTo;
  }

  /** The kernel's CQ tail (acquire), for tracing. */
  cqTail(): number {
    return Atomics.load(this.ring32, this.cqTailW);
  }
}

/*
 * While tracing is on, submitAndWait and cqAdvance are replaced on the prototype by versions that also
 * record each SQE submitted (just before the io_uring_enter that submits it, which ffi.ts records) and
 * each CQE as soon as it is visible (just after the enter that reaped it, or when the engine reaps it
 * later), so batching shows: `sqe sqe io_uring_enter(submit 2) cqe cqe cqe`. With tracing off the
 * prototype holds the methods above, unchanged. (SQEs that getSqe() hands to an SQPOLL thread on a full
 * SQ go past submitAndWait and are not recorded.)
 */
interface RingTrace {
  /** SQE user_data -> [opcode, fd], so a CQE can say what it completes. */
  ops: Map<string, [number, number]>;
  /** CQ position up to which CQEs are recorded. */
  seen: number;
}
const ringTraces = new WeakMap<Ring, RingTrace>();
const plainRing = { submitAndWait: Ring.prototype.submitAndWait, cqAdvance: Ring.prototype.cqAdvance };
function ringTrace(r: Ring): RingTrace {
  let st = ringTraces.get(r);
  if (!st) ringTraces.set(r, (st = { ops: new Map(), seen: r.cqHead }));
  return st;
}
function tracedSubmitAndWait(this: Ring, waitNr: number, timeoutMs: number): number {
  const st = ringTrace(this);
  this.traceSqes(st.ops);
  const r = plainRing.submitAndWait.call(this, waitNr, timeoutMs);
  st.seen = this.traceCqes(st.seen, this.cqTail(), st.ops);
  return r;
}
function tracedCqAdvance(this: Ring, n: number): void {
  const st = ringTrace(this);
  const upTo = (this.cqHead + n) >>> 0;
  // CQEs that arrived without an enter (no DEFER_TASKRUN): record them now, before they are handed back.
  if (((upTo - st.seen) | 0) > 0) st.seen = this.traceCqes(st.seen, upTo, st.ops);
  plainRing.cqAdvance.call(this, n);
}
onTracing(
  () => {
    Ring.prototype.submitAndWait = tracedSubmitAndWait;
    Ring.prototype.cqAdvance = tracedCqAdvance;
  },
  () => {
    Ring.prototype.submitAndWait = plainRing.submitAndWait;
    Ring.prototype.cqAdvance = plainRing.cqAdvance;
  },
);

// ---------------------------------------------------------------------------------------------
// Provided-buffer ring (IORING_REGISTER_PBUF_RING, 5.19)
// ---------------------------------------------------------------------------------------------

/**
 * A group of `count` receive buffers of `size` bytes that the kernel picks from when a recv
 * completes (IOSQE_BUFFER_SELECT): a connection holds a buffer only while its data is being
 * handled, never while idle. One anonymous mapping holds the ring of io_uring_buf entries
 * (page-aligned, as registration requires) followed by the buffers themselves.
 */
export class BufRing {
  readonly bgid: number;
  readonly count: number;
  readonly size: number;
  /** A Buffer view of each buffer, by buffer id. */
  readonly bufs: Buffer[];
  private readonly ring: Ring;
  private readonly ptr: unknown;
  private readonly len: number;
  private readonly ent32: Uint32Array;
  private readonly ent16: Uint16Array;
  private readonly base: number;
  private readonly ringBytes: number;
  private readonly mask: number;
  /** Local tail (u16, wraps); published with publish(). */
  private tail = 0;
  private published = 0;
  private registered = false;

  constructor(ring: Ring, bgid: number, count: number, size: number) {
    if (count & (count - 1) || count > 32768) throw new Error('BufRing: count must be a power of two <= 32768');
    this.ring = ring;
    this.bgid = bgid;
    this.count = count;
    this.size = size;
    this.mask = count - 1;
    this.ringBytes = Math.ceil((count * BUF_SIZE) / PAGE) * PAGE;
    this.len = this.ringBytes + count * size;
    // MAP_POPULATE only for the ring itself would need two mappings; the buffers fault in as the
    // kernel first writes them, so an idle server keeps only the pages it has used.
    this.ptr = f.mmap(null, this.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    this.base = pointerAddress(this.ptr);
    const ab = koffi.view(this.ptr, this.len);
    this.ent32 = new Uint32Array(ab, 0, this.ringBytes >>> 2);
    this.ent16 = new Uint16Array(ab, 0, this.ringBytes >>> 1);
    this.bufs = [];
    for (let bid = 0; bid < count; bid++) this.bufs.push(Buffer.from(ab, this.ringBytes + bid * size, size));
    const reg = Buffer.alloc(BUF_REG_SIZE);
    reg.writeUInt32LE(this.base % TWO32, BUF_REG.ring_addr);
    reg.writeUInt32LE(Math.floor(this.base / TWO32), BUF_REG.ring_addr + 4);
    reg.writeUInt32LE(count, BUF_REG.ring_entries);
    reg.writeUInt16LE(bgid, BUF_REG.bgid);
    const r = f.io_uring_register(ring.fd, IORING_REGISTER_PBUF_RING, reg, 1);
    if (r < 0) {
      f.munmapRaw(this.ptr, this.len);
      throw new SyscallError('io_uring_register', -r, 'IORING_REGISTER_PBUF_RING');
    }
    this.registered = true;
    for (let bid = 0; bid < count; bid++) this.add(bid);
    this.publish();
  }

  /**
   * Give buffer `bid` back to the kernel (liburing io_uring_buf_ring_add). Only addr, len and bid are
   * written: entry 0's resv field IS the ring tail, and must not be clobbered.
   */
  add(bid: number): void {
    const e = (this.tail & this.mask) << 2; // u32 words per entry: 4
    const addr = this.base + this.ringBytes + bid * this.size;
    const lo = addr >>> 0; // see prepRw
    this.ent32[e] = lo;
    this.ent32[e + 1] = (addr - lo) / TWO32;
    this.ent32[e + 2] = this.size;
    this.ent16[(e << 1) + 6] = bid;
    this.tail = (this.tail + 1) & 0xffff;
  }

  /** Make added buffers visible (liburing io_uring_buf_ring_advance: a release store of the u16 tail). */
  publish(): void {
    if (this.tail === this.published) return;
    this.published = this.tail;
    Atomics.store(this.ent16, BUF_RING_TAIL >>> 1, this.tail);
  }

  close(): void {
    if (this.registered) {
      const reg = Buffer.alloc(BUF_REG_SIZE);
      reg.writeUInt16LE(this.bgid, BUF_REG.bgid);
      f.io_uring_register(this.ring.fd, IORING_UNREGISTER_PBUF_RING, reg, 1);
      this.registered = false;
    }
    f.munmapRaw(this.ptr, this.len);
  }
}

// ---------------------------------------------------------------------------------------------
// Capability probe
// ---------------------------------------------------------------------------------------------

export interface IoUringSupport {
  ok: true;
  kernel: string;
  /** io_uring_params->features as returned by setup, and their names. */
  features: number;
  featureNames: string[];
  /** Setup flags this kernel accepted on top of the basics (COOP_TASKRUN, SINGLE_ISSUER, DEFER_TASKRUN, SUBMIT_ALL). */
  setupFlags: number;
  /** IORING_RECV_MULTISHOT (6.0); without it every recv is re-armed after its completion. */
  multishotRecv: boolean;
  /** kernel.io_uring_disabled (0 when the sysctl does not exist). */
  disabledSysctl: number;
}

export interface IoUringRefusal {
  ok: false;
  /** Why, in words a user can act on. */
  reason: string;
  /** The errno behind it, when there is one. */
  errno?: number;
}

export type IoUringProbe = IoUringSupport | IoUringRefusal;

/** Opcodes the engine submits, by name (checked with IORING_REGISTER_PROBE). */
const NEEDED_OPS: [string, number][] = [
  ['ACCEPT', IORING_OP_ACCEPT], ['RECV', IORING_OP_RECV], ['SEND', IORING_OP_SEND], ['CLOSE', IORING_OP_CLOSE],
  ['ASYNC_CANCEL', IORING_OP_ASYNC_CANCEL], ['PROVIDE_BUFFERS', IORING_OP_PROVIDE_BUFFERS], ['SHUTDOWN', IORING_OP_SHUTDOWN],
];

/** Optional setup flags, best first; each is dropped if the kernel refuses it with EINVAL. */
const PREFERRED_FLAGS = [
  // DEFER_TASKRUN (6.1, needs SINGLE_ISSUER 6.0): completions are run only when we enter to wait,
  // so they arrive batched and without interrupting the loop; COOP_TASKRUN (5.19) likewise avoids IPIs.
  IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
  IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN,
  IORING_SETUP_SUBMIT_ALL,
  0,
];

export function kernelVersion(rel = release()): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(rel);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

function atLeast(v: [number, number], major: number, minor: number): boolean {
  return v[0] > major || (v[0] === major && v[1] >= minor);
}

function readSysctl(path: string): number | null {
  try {
    return Number(readFileSync(path, 'utf8').trim());
  } catch {
    return null;
  }
}

/** A user-facing reason for an io_uring_setup failure. */
export function setupFailureReason(errno: number, disabled: number): string {
  const base = `io_uring_setup() failed: ${errnoName(errno)}`;
  switch (errno) {
    case ENOSYS:
      return `${base}: the kernel has no io_uring (CONFIG_IO_URING off) or a seccomp filter blocks it (e.g. a container's default profile)`;
    case EPERM:
      if (disabled === 1) return `${base}: kernel.io_uring_disabled = 1 and this process is neither CAP_SYS_ADMIN nor in kernel.io_uring_group`;
      if (disabled === 2) return `${base}: kernel.io_uring_disabled = 2`;
      return `${base}: blocked by a seccomp filter or security module`;
    case ENOMEM:
      return `${base}: not enough locked memory for the rings (raise ulimit -l, or RLIMIT_MEMLOCK on kernels before 5.12)`;
    case EINVAL:
      return `${base}: this kernel rejects the ring parameters (too old for the features iolab needs)`;
    default:
      return base;
  }
}

/**
 * Can this process use io_uring the way the engine needs it? Sets up a tiny ring, checks the
 * features (SINGLE_MMAP, NODROP, EXT_ARG, FAST_POLL), probes the opcodes, registers a provided-
 * buffer ring, and tears it all down. `IOLAB_IO_URING=off` or `=fail:EPERM` (any errno name, or
 * `fail:disabled`) forces a refusal so the fallback can be tested.
 */
export function probeIoUringUncached(env: string | undefined = process.env.IOLAB_IO_URING): IoUringProbe {
  const disabled = readSysctl('/proc/sys/kernel/io_uring_disabled') ?? 0;
  if (env === 'off' || env === '0') return { ok: false, reason: 'turned off by IOLAB_IO_URING=off' };
  if (env?.startsWith('fail:')) {
    const what = env.slice(5);
    if (what === 'disabled') return { ok: false, reason: 'kernel.io_uring_disabled = 2 (simulated by IOLAB_IO_URING=fail:disabled)', errno: EPERM };
    const errno = ({ ENOSYS, EPERM, EINVAL, ENOMEM } as Record<string, number>)[what] ?? EPERM;
    return { ok: false, reason: `${setupFailureReason(errno, 0)} (simulated by IOLAB_IO_URING=${env})`, errno };
  }
  if (disabled === 2) return { ok: false, reason: 'kernel.io_uring_disabled = 2: io_uring is disabled for every process', errno: EPERM };

  const kernel = release();
  const kv = kernelVersion(kernel);
  const params = Buffer.alloc(IO_URING_PARAMS_SIZE);
  let fd = -1;
  let setupFlags = 0;
  // IOLAB_IO_URING_TASKRUN=coop|defer: which task-run mode to try first (A/B measurements).
  const taskrun = process.env.IOLAB_IO_URING_TASKRUN;
  const order = taskrun === 'coop' ? PREFERRED_FLAGS.slice(1) : PREFERRED_FLAGS;
  for (const flags of order) {
    params.fill(0);
    params.writeUInt32LE(flags >>> 0, PARAMS.flags);
    fd = f.io_uring_setup(4, params);
    if (fd >= 0) {
      setupFlags = flags;
      break;
    }
    if (-fd !== EINVAL) break;
  }
  if (fd < 0) return { ok: false, reason: setupFailureReason(-fd, disabled), errno: -fd };
  try {
    const features = params.readUInt32LE(PARAMS.features);
    const featureNames = FEATURE_NAMES.filter((_, i) => features & (1 << i));
    const need: [number, string, string][] = [
      [IORING_FEAT_SINGLE_MMAP, 'SINGLE_MMAP', '5.4'],
      [IORING_FEAT_NODROP, 'NODROP', '5.5'],
      [IORING_FEAT_FAST_POLL, 'FAST_POLL', '5.7'],
      [IORING_FEAT_EXT_ARG, 'EXT_ARG', '5.11'],
    ];
    for (const [bit, name, since] of need) {
      if (!(features & bit)) return { ok: false, reason: `kernel ${kernel} lacks IORING_FEAT_${name} (needs ${since}+)` };
    }
    // IORING_REGISTER_PROBE: a header plus one io_uring_probe_op per opcode (256 covers every op).
    const probe = Buffer.alloc(PROBE_HEADER_SIZE + 256 * PROBE_OP_SIZE);
    const pr = f.io_uring_register(fd, IORING_REGISTER_PROBE, probe, 256);
    if (pr < 0) return { ok: false, reason: `io_uring_register(IORING_REGISTER_PROBE) failed: ${errnoName(-pr)} (kernel older than 5.6?)`, errno: -pr };
    const opsLen = probe[1]!;
    for (const [name, op] of NEEDED_OPS) {
      const supported = op < opsLen && (probe.readUInt16LE(PROBE_HEADER_SIZE + op * PROBE_OP_SIZE + 2) & IO_URING_OP_SUPPORTED) !== 0;
      if (!supported) return { ok: false, reason: `kernel ${kernel} does not support IORING_OP_${name}` };
    }
    // Provided-buffer rings (5.19) also imply multishot accept (5.19) and cancel-by-fd (5.19).
    const page = f.mmap(null, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    try {
      const reg = Buffer.alloc(BUF_REG_SIZE);
      const addr = pointerAddress(page);
      reg.writeUInt32LE(addr % TWO32, BUF_REG.ring_addr);
      reg.writeUInt32LE(Math.floor(addr / TWO32), BUF_REG.ring_addr + 4);
      reg.writeUInt32LE(8, BUF_REG.ring_entries);
      reg.writeUInt16LE(0, BUF_REG.bgid);
      const r = f.io_uring_register(fd, IORING_REGISTER_PBUF_RING, reg, 1);
      if (r < 0) return { ok: false, reason: `io_uring_register(IORING_REGISTER_PBUF_RING) failed: ${errnoName(-r)} (provided-buffer rings need 5.19+)`, errno: -r };
    } finally {
      f.munmapRaw(page, PAGE);
    }
    return {
      ok: true,
      kernel,
      features,
      featureNames,
      setupFlags,
      // No probe bit says "multishot recv"; it arrived in 6.0 (as libuv keys io_uring quirks off
      // uv__kernel_version()). IOLAB_IO_URING=single turns it off to exercise the re-arm path.
      multishotRecv: atLeast(kv, 6, 0) && env !== 'single',
      disabledSysctl: disabled,
    };
  } finally {
    f.close(fd);
  }
}

let cached: IoUringProbe | null = null;
/** probeIoUringUncached, once per thread (each worker thread has its own module instance). */
export function probeIoUring(): IoUringProbe {
  return (cached ??= probeIoUringUncached());
}

