/**
 * RESP2 reply writers (server side) and the command encoder (client side). Sans-I/O.
 *
 * Writers append to the caller's OutBuf and allocate nothing in steady state: numbers are written as
 * digits straight into `out.buf` (no `String(n)`), and each writer reserves its bytes with one
 * `ensure` call.
 *
 * Strings: `writeSimple` and `writeError` take "byte strings" and write them latin1 (one char = one
 * byte). That is how iolab carries raw bytes as strings (keys are decoded latin1 too), so an error
 * that quotes a user's bytes (`unknown command '\xff'`) goes back byte for byte, as Redis sends it.
 * For Unicode text use `writeBulk` with a string, which is written as UTF-8.
 */
import type { OutBuf } from '../outbuf.js';
import { RespErrorReply, type RespValue } from './types.js';

const CR = 13;
const LF = 10;

// Pre-encoded replies for the hot paths. Shared: never write into them.
export const RESP_OK: Buffer = Buffer.from('+OK\r\n', 'latin1');
export const RESP_PONG: Buffer = Buffer.from('+PONG\r\n', 'latin1');
export const RESP_NULL_BULK: Buffer = Buffer.from('$-1\r\n', 'latin1');
export const RESP_NULL_ARRAY: Buffer = Buffer.from('*-1\r\n', 'latin1');
export const RESP_EMPTY_ARRAY: Buffer = Buffer.from('*0\r\n', 'latin1');
export const RESP_ZERO: Buffer = Buffer.from(':0\r\n', 'latin1');
export const RESP_ONE: Buffer = Buffer.from(':1\r\n', 'latin1');
export const RESP_CRLF: Buffer = Buffer.from('\r\n', 'latin1');

/** Number of decimal digits of a non-negative integer (n < 2^53). */
function digitCount(n: number): number {
  if (n < 10) return 1;
  if (n < 100) return 2;
  if (n < 1000) return 3;
  if (n < 10000) return 4;
  if (n < 100000) return 5;
  if (n < 1000000) return 6;
  if (n < 10000000) return 7;
  if (n < 100000000) return 8;
  if (n < 1000000000) return 9;
  let d = 10;
  let m = 10000000000;
  while (n >= m) {
    d++;
    m *= 10;
  }
  return d;
}

/**
 * `<prefix><n>\r\n` for a safe integer n, written into the buffer at `out.len`. Reserves `extra` more
 * bytes in the same `ensure` so a bulk writer can append its data without a second check.
 */
function writeHeader(out: OutBuf, prefix: number, n: number, extra: number): void {
  let neg = false;
  if (n < 0) {
    neg = true;
    n = -n;
  }
  const digits = digitCount(n);
  out.ensure(1 + (neg ? 1 : 0) + digits + 2 + extra);
  const b = out.buf;
  let p = out.len;
  b[p++] = prefix;
  if (neg) b[p++] = 45;
  let q = p + digits;
  p = q;
  do {
    const d = n % 10;
    b[--q] = 48 + d;
    n = (n - d) / 10;
  } while (n > 0);
  b[p++] = CR;
  b[p++] = LF;
  out.len = p;
}

/** A latin1 line `<prefix><s>\r\n`; `\r` and `\n` inside `s` become spaces so the reply stays one line. */
function writeLine(out: OutBuf, prefix: number, s: string): void {
  out.ensure(s.length + 3);
  const b = out.buf;
  b[out.len++] = prefix;
  const at = out.len;
  out.len += b.write(s, at, 'latin1');
  // Same rule as Redis's addReplyErrorFormat / addReplyStatusLength callers: never emit a bare newline.
  for (let i = at; i < out.len; i++) {
    const c = b[i];
    if (c === CR || c === LF) b[i] = 32;
  }
  b[out.len++] = CR;
  b[out.len++] = LF;
}

/** `+<s>\r\n` (s as latin1). */
export function writeSimple(out: OutBuf, s: string): void {
  if (s === 'OK') out.bytes(RESP_OK);
  else writeLine(out, 43, s);
}

/**
 * `-<msg>\r\n`. `msg` carries its own error code, like Redis's replies: `ERR syntax error`,
 * `WRONGTYPE Operation against ...`, `NOPROTO ...`. A leading `-` is dropped (Redis's addReplyError
 * accepts both forms).
 */
export function writeError(out: OutBuf, msg: string): void {
  writeLine(out, 45, msg.charCodeAt(0) === 45 ? msg.slice(1) : msg);
}

/** `:<n>\r\n`. A bigint is accepted for 64-bit values beyond 2^53 (INCR near LLONG_MAX). */
export function writeInteger(out: OutBuf, n: number | bigint): void {
  if (typeof n === 'bigint') {
    out.byte(58);
    out.ascii(n.toString());
    out.bytes(RESP_CRLF);
    return;
  }
  if (n === 0) out.bytes(RESP_ZERO);
  else if (n === 1) out.bytes(RESP_ONE);
  else if (Number.isSafeInteger(n)) writeHeader(out, 58, n, 0);
  else {
    // Not an integer we can print exactly: still emit valid protocol.
    out.byte(58);
    out.ascii(Number.isFinite(n) ? BigInt(Math.trunc(n)).toString() : '0');
    out.bytes(RESP_CRLF);
  }
}

/** `$<len>\r\n<bytes>\r\n`; a string is written as UTF-8; null is the null bulk `$-1\r\n`. */
export function writeBulk(out: OutBuf, b: Buffer | Uint8Array | string | null): void {
  if (b === null) {
    out.bytes(RESP_NULL_BULK);
    return;
  }
  if (typeof b === 'string') {
    const n = Buffer.byteLength(b, 'utf8');
    writeHeader(out, 36, n, n + 2);
    out.len += out.buf.write(b, out.len, n, 'utf8');
  } else {
    const n = b.length;
    writeHeader(out, 36, n, n + 2);
    out.buf.set(b, out.len);
    out.len += n;
  }
  out.buf[out.len++] = CR;
  out.buf[out.len++] = LF;
}

/**
 * A bulk holding `buf[start..end)` without making a view (kv's GET copies values from its records
 * this way). Short values are copied with a loop: below ~48 bytes that is about twice as fast as the
 * native `copy`, whose fixed cost was ~2% of kv's CPU under redis-benchmark -d 3.
 */
export function writeBulkRange(out: OutBuf, buf: Uint8Array, start: number, end: number): void {
  const n = end - start;
  writeHeader(out, 36, n, n + 2);
  const b = out.buf;
  let p = out.len;
  if (n <= 48) for (let i = start; i < end; i++) b[p++] = buf[i];
  else {
    b.set(buf.subarray(start, end), p);
    p += n;
  }
  b[p++] = CR;
  b[p++] = LF;
  out.len = p;
}

/** `*<n>\r\n`; a negative n writes the null array `*-1\r\n`. The n elements follow. */
export function writeArrayHeader(out: OutBuf, n: number): void {
  if (n < 0) out.bytes(RESP_NULL_ARRAY);
  else if (n === 0) out.bytes(RESP_EMPTY_ARRAY);
  else writeHeader(out, 42, n, 0);
}

export function writeNullArray(out: OutBuf): void {
  out.bytes(RESP_NULL_ARRAY);
}

export function writeNullBulk(out: OutBuf): void {
  out.bytes(RESP_NULL_BULK);
}

export function writeOk(out: OutBuf): void {
  out.bytes(RESP_OK);
}

/**
 * Any RespValue, mapped the way the client parser maps replies back: string -> simple string,
 * number/bigint -> integer, Buffer -> bulk, null -> null bulk, RespErrorReply -> error, array -> array.
 * Recursive; meant for tests and non-hot paths.
 */
export function writeValue(out: OutBuf, v: RespValue | bigint): void {
  if (v === null) out.bytes(RESP_NULL_BULK);
  else if (typeof v === 'string') writeLine(out, 43, v);
  else if (typeof v === 'number' || typeof v === 'bigint') writeInteger(out, v);
  else if (v instanceof Uint8Array) writeBulk(out, v);
  else if (v instanceof RespErrorReply) writeError(out, v.message);
  else {
    writeArrayHeader(out, v.length);
    for (let i = 0; i < v.length; i++) writeValue(out, v[i]);
  }
}

/**
 * A command as a client sends it: `*<n>\r\n` then `$<len>\r\n<arg>\r\n` per argument (strings as
 * UTF-8). One allocation of the exact size; the load generator encodes its requests once, up front.
 */
export function encodeCommand(args: readonly (string | Uint8Array)[]): Buffer {
  const n = args.length;
  const lens = new Array<number>(n);
  let total = 1 + digitCount(n) + 2;
  for (let i = 0; i < n; i++) {
    const a = args[i];
    const len = typeof a === 'string' ? Buffer.byteLength(a, 'utf8') : a.length;
    lens[i] = len;
    total += 1 + digitCount(len) + 2 + len + 2;
  }
  const b = Buffer.allocUnsafe(total);
  let p = putHeader(b, 0, 42, n);
  for (let i = 0; i < n; i++) {
    const a = args[i];
    p = putHeader(b, p, 36, lens[i]);
    if (typeof a === 'string') p += b.write(a, p, lens[i], 'utf8');
    else {
      b.set(a, p);
      p += a.length;
    }
    b[p++] = CR;
    b[p++] = LF;
  }
  return b;
}

function putHeader(b: Buffer, p: number, prefix: number, n: number): number {
  b[p++] = prefix;
  const digits = digitCount(n);
  let q = p + digits;
  p = q;
  do {
    const d = n % 10;
    b[--q] = 48 + d;
    n = (n - d) / 10;
  } while (n > 0);
  b[p++] = CR;
  b[p++] = LF;
  return p;
}
