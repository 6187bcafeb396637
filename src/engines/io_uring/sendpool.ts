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
/**
 * take() copies replies up to this size as 32-bit words in a JS loop: a hello-world reply (~130 B)
 * in ~30 ns, where a subarray() view plus TypedArray.set costs ~60 ns (the view is a typed array
 * made per send). Past ~400 B the native copy wins (Node 20, this VM).
 */
const WORD_COPY_MAX = 384;

export class SendPool {
  /** The bytes being sent, by slot. */
  buf: Buffer[] = [];
  /** Address of buf[slot][0]. */
  addr = new Float64Array(16);
  /** buf[slot] as 32-bit words, for SMALL slots (take's word copy). */
  private words: (Uint32Array | null)[] = [];
  /** The last source take() copied from, as 32-bit words (the engine's output buffer, which rarely changes). */
  private src: Uint8Array | null = null;
  private srcWords: Uint32Array | null = null;
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
    if (len <= WORD_COPY_MAX) {
      if (data !== this.src) {
        this.src = data;
        // Whole words only, from a 4-aligned start (Buffers of 4 KB and more have their own ArrayBuffer).
        this.srcWords = data.byteOffset % 4 === 0 ? new Uint32Array(data.buffer, data.byteOffset, data.length >>> 2) : null;
      }
      const from = this.srcWords, to = this.words[s];
      const n = (len + 3) >>> 2;
      // The last word may carry up to 3 bytes past len: harmless in the slot, and read from data only
      // when data has them (n words fit in `from`).
      if (from !== null && to != null && n <= from.length) {
        // Four words a step: the loop's own checks cost as much as the copies (31 vs 49 ns at 133 B).
        let k = 0;
        for (; k + 4 <= n; k += 4) {
          to[k] = from[k]!;
          to[k + 1] = from[k + 1]!;
          to[k + 2] = from[k + 2]!;
          to[k + 3] = from[k + 3]!;
        }
        for (; k < n; k++) to[k] = from[k]!;
        return s;
      }
    }
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
        if (c === CLASS_SMALL) this.words[s] = new Uint32Array(b.buffer, b.byteOffset, SMALL >>> 2);
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
    this.words.push(null);
    return s;
  }
}

const EMPTY = Buffer.alloc(0);

function grown<T extends Float64Array | Int32Array | Uint32Array | Uint8Array>(old: T, next: T): T {
  next.set(old as never);
  return next;
}
