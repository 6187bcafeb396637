/**
 * Buffers for sends in flight. A send SQE carries a raw address, so its bytes must stay put until
 * the kernel posts the CQE, whatever happens to the connection meanwhile (a forced close leaves
 * the send to complete or be cancelled later). Each send takes a slot; the slot records which
 * connection (fd + generation) it belongs to and how far the send has got, and is released only
 * by its own CQE.
 *
 * Slots come in two pooled sizes whose Buffers (and addresses) are made once and reused: SMALL
 * covers HTTP and RESP replies, LARGE covers echo chunks (one provided receive buffer's worth, or
 * a few). Anything bigger gets a Buffer of its own for the one send. Memory is bounded by the
 * number of sends in flight at once, which is at most one per connection.
 */
import { bufferAddress } from '../../sys/io_uring.js';

export const SMALL = 4 * 1024;
export const LARGE = 64 * 1024;
const CLASS_SMALL = 0, CLASS_LARGE = 1, CLASS_OWN = 2;

export class SendPool {
  /** The bytes being sent, by slot. */
  buf: Buffer[] = [];
  /** Address of buf[slot][0]. */
  addr = new Float64Array(16);
  /** Bytes already sent / total, by slot. */
  off = new Int32Array(16);
  end = new Int32Array(16);
  /** Owner: connection fd and its generation when the send was queued. */
  fd = new Int32Array(16);
  gen = new Uint32Array(16);
  private cls = new Uint8Array(16);
  private readonly free: number[][] = [[], [], []];
  private n = 0;
  /** Slots taken and not yet released (sends in flight). */
  inUse = 0;

  /** A slot holding a copy of data[0, len). */
  take(data: Uint8Array, len: number, fd: number, gen: number): number {
    const s = this.reserve(len, fd, gen);
    this.buf[s]!.set(len === data.length ? data : data.subarray(0, len), 0);
    return s;
  }

  /** A slot of at least `len` bytes for the caller to fill (a file chunk read straight into it). */
  reserve(len: number, fd: number, gen: number): number {
    const c = len <= SMALL ? CLASS_SMALL : len <= LARGE ? CLASS_LARGE : CLASS_OWN;
    let s = this.free[c]!.pop();
    if (s === undefined) {
      s = this.grow(c);
      if (c !== CLASS_OWN) {
        const b = Buffer.allocUnsafeSlow(c === CLASS_SMALL ? SMALL : LARGE);
        this.buf[s] = b;
        this.addr[s] = bufferAddress(b);
      }
    }
    if (c === CLASS_OWN) {
      // allocUnsafeSlow: a backing store of its own, never a slice of Node's shared pool.
      const b = Buffer.allocUnsafeSlow(len);
      this.buf[s] = b;
      this.addr[s] = bufferAddress(b);
    }
    this.off[s] = 0;
    this.end[s] = len;
    this.fd[s] = fd;
    this.gen[s] = gen;
    this.inUse++;
    return s;
  }

  release(s: number): void {
    this.inUse--;
    const c = this.cls[s]!;
    if (c === CLASS_OWN) this.buf[s] = EMPTY; // drop the one-off buffer
    this.free[c]!.push(s);
  }

  private grow(c: number): number {
    const s = this.n++;
    if (s >= this.addr.length) {
      const cap = this.addr.length * 2;
      this.addr = grown(this.addr, new Float64Array(cap));
      this.off = grown(this.off, new Int32Array(cap));
      this.end = grown(this.end, new Int32Array(cap));
      this.fd = grown(this.fd, new Int32Array(cap));
      this.gen = grown(this.gen, new Uint32Array(cap));
      this.cls = grown(this.cls, new Uint8Array(cap));
    }
    this.cls[s] = c;
    this.buf.push(EMPTY);
    return s;
  }
}

const EMPTY = Buffer.alloc(0);

function grown<T extends Float64Array | Int32Array | Uint32Array | Uint8Array>(old: T, next: T): T {
  next.set(old as never);
  return next;
}
