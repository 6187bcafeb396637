/**
 * A growable output buffer shared by every codec. Encoders append; the engine hands
 * `buf.subarray(0, len)` to write(2) and then calls `reset()` (or `consume(n)` after a short write).
 * One instance per loop is reused for every request, so encoding allocates nothing in steady state.
 */
export class OutBuf {
  buf: Buffer;
  len = 0;

  constructor(initial = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  /** Make room for `n` more bytes. Grows by doubling so appends are amortised O(1). */
  ensure(n: number): void {
    const need = this.len + n;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  /** Append a string that is known to be ASCII/latin1 (status lines, header names, RESP framing). */
  ascii(s: string): void {
    this.ensure(s.length);
    this.len += this.buf.write(s, this.len, "latin1");
  }

  /** Append a string as UTF-8. */
  utf8(s: string): void {
    this.ensure(Buffer.byteLength(s));
    this.len += this.buf.write(s, this.len, "utf8");
  }

  bytes(b: Uint8Array, start = 0, end = b.length): void {
    const n = end - start;
    this.ensure(n);
    this.buf.set(start === 0 && end === b.length ? b : b.subarray(start, end), this.len);
    this.len += n;
  }

  byte(c: number): void {
    this.ensure(1);
    this.buf[this.len++] = c;
  }

  /** Append a non-negative or negative integer in decimal without allocating a string for small values. */
  int(n: number): void {
    if (n >= 0 && n < 10) {
      this.byte(48 + n);
      return;
    }
    this.ascii(String(n));
  }

  /** Drop the first `n` bytes (after a short write). */
  consume(n: number): void {
    if (n >= this.len) {
      this.len = 0;
      return;
    }
    this.buf.copy(this.buf, 0, n, this.len);
    this.len -= n;
  }

  reset(): void {
    this.len = 0;
  }

  /** A view of the bytes written so far (valid until the next append). */
  view(): Buffer {
    return this.buf.subarray(0, this.len);
  }

  /** A copy of the bytes written so far (safe to keep). */
  take(): Buffer {
    const b = Buffer.allocUnsafe(this.len);
    this.buf.copy(b, 0, 0, this.len);
    this.len = 0;
    return b;
  }
}
