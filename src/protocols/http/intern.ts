/**
 * Strings for byte ranges seen before, found by comparing bytes: the parsers' way to hand out a
 * request's target and header values without making a string per request.
 *
 * A keep-alive client repeats itself: wrk sends `GET /` with the same Host on every request, a
 * browser the same User-Agent, Accept and Host. Making those strings costs a native call
 * (Buffer#latin1Slice, ~80 ns on Node 20 here) plus a substring each, per request; finding them
 * here costs a hash of four bytes and a compare of the range. A miss makes the string as before and
 * remembers it. Strings are immutable, so one string shared by many requests is indistinguishable
 * from a fresh one.
 *
 * Direct-mapped, SLOTS entries of at most MAX_LEN bytes: a new range evicts whatever shared its
 * slot, so a stream of distinct targets costs a compare and a copy each, never memory. Entries are
 * flat strings of their own (never substrings of a bigger head, which would keep the head alive).
 */

const SLOTS = 512;
const MASK = SLOTS - 1;
/** Longest range remembered: a long User-Agent fits; cookies and tokens usually do not. */
export const MAX_LEN = 160;

const strs: string[] = new Array<string>(SLOTS).fill('');
/** Length of each entry; 0 = empty (the parsers never ask for an empty range). */
const lens = new Uint16Array(SLOTS);
const slab = new Uint8Array(SLOTS * MAX_LEN);

/** latin1 lower-casing of a byte (A-Z only), for field names. */
const LOWER = new Uint8Array(256);
for (let c = 0; c < 256; c++) LOWER[c] = c >= 65 && c <= 90 ? c + 32 : c;

/** Every one-byte string (a target of `/` or `*`, a value of `1`), made once. */
const ONE: string[] = Array.from({ length: 256 }, (_, c) => String.fromCharCode(c));

type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string };

/** Slot of the n-byte range whose first, middle and last bytes are given (n >= 1). */
function slot(n: number, first: number, mid: number, last: number): number {
  return (n * 0x9e5 + first * 0x3b + mid * 0x101 + last * 0x1d) & MASK;
}

/** buf[a, b) as a latin1 string (b > a), the remembered one when these bytes were seen before. */
export function latin1(buf: Buffer, a: number, b: number): string {
  const n = b - a;
  if (n === 1) return ONE[buf[a]!]!;
  if (n > MAX_LEN) return (buf as Latin1Buffer).latin1Slice(a, b);
  const h = slot(n, buf[a]!, buf[a + (n >> 1)]!, buf[b - 1]!);
  const o = h * MAX_LEN;
  if (lens[h] === n) {
    let k = 0;
    while (k < n && slab[o + k] === buf[a + k]) k++;
    if (k === n) return strs[h]!;
  }
  const s = (buf as Latin1Buffer).latin1Slice(a, b);
  for (let k = 0; k < n; k++) slab[o + k] = buf[a + k]!;
  lens[h] = n;
  strs[h] = s;
  return s;
}

/** Lower-case A-Z only (String#toLowerCase also folds latin1 letters such as 0xC0). */
function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/** buf[a, b) lower-cased (A-Z only), as latin1(): for field names that arrive with capitals. */
export function latin1Lower(buf: Buffer, a: number, b: number): string {
  const n = b - a;
  if (n > MAX_LEN) return asciiLower((buf as Latin1Buffer).latin1Slice(a, b));
  const h = slot(n, LOWER[buf[a]!]!, LOWER[buf[a + (n >> 1)]!]!, LOWER[buf[b - 1]!]!);
  const o = h * MAX_LEN;
  if (lens[h] === n) {
    let k = 0;
    while (k < n && slab[o + k] === LOWER[buf[a + k]!]) k++;
    if (k === n) return strs[h]!;
  }
  let all = 0;
  for (let k = 0; k < n; k++) {
    const c = buf[a + k]!;
    all |= c;
    slab[o + k] = LOWER[c]!;
  }
  const raw = (buf as Latin1Buffer).latin1Slice(a, b);
  // Field names are tchar, ASCII only: then toLowerCase() is the same folding as LOWER. Anything
  // else is folded A-Z only and not remembered (the slot, half overwritten, is emptied).
  if (all < 0x80) {
    const s = raw.toLowerCase();
    lens[h] = n;
    strs[h] = s;
    return s;
  }
  lens[h] = 0;
  return asciiLower(raw);
}
