/**
 * RESP2 reply parser for the client side (load generator, tests). Sans-I/O and stateless like the
 * server parser: give it `buf[start..end)`, get one reply and the absolute offset after it, or
 * `incomplete` (a shared frozen singleton), or `error` for bytes that are not RESP2.
 *
 * - `skipReply` finds where one complete reply ends without allocating anything (nested arrays are
 *   handled with a counter, not recursion), so a load generator can count replies at full speed.
 * - `parseReply` first runs the same scan (so an incomplete reply costs no allocation), then builds
 *   the value iteratively (deeply nested input cannot overflow the stack).
 *
 * Mapping: `+OK` -> 'OK' (string, latin1), `-ERR x` -> RespErrorReply('ERR x'), `:5` -> 5 (number;
 * beyond 2^53 it is rounded), `$3 foo` -> Buffer (a copy: the caller's read buffer gets reused),
 * `$-1` and `*-1` -> null, `*n` -> array.
 *
 * Framing follows hiredis (read.c): a line ends at the first `\r\n` (a lone `\r` inside a status line
 * is part of it), integers and lengths must be plain decimal (Redis's string2ll), bulk data must be
 * followed by `\r\n`. Being a client, we are strict where the server side is lenient: a reply that
 * breaks framing is reported as malformed rather than guessed at.
 */
import { RespErrorReply, type RespReplyParse, type RespValue } from './types.js';
import { string2ll } from './server.js';

const CR = 13;
const LF = 10;
const PLUS = 43;
const MINUS = 45;
const COLON = 58;
const DOLLAR = 36;
const STAR = 42;

/** Largest bulk reply we accept (Redis's proto-max-bulk-len default, 512 MB). */
const MAX_BULK = 512 * 1024 * 1024;
/** A length or integer line longer than this without CRLF cannot become valid: report it early. */
const MAX_NUMBER_LINE = 32;

export const INCOMPLETE_REPLY: RespReplyParse = Object.freeze({ kind: 'incomplete' } as const);

// Negative scan results: -1 incomplete, the rest name what is malformed.
const INCOMPLETE = -1;
const BAD_TYPE = -2;
const BAD_INTEGER = -3;
const BAD_BULK_LEN = -4;
const BAD_ARRAY_LEN = -5;
const BAD_BULK_END = -6;
const BAD_LINE = -7;

const REASONS: Record<number, string> = {
  [BAD_TYPE]: 'unknown reply type byte',
  [BAD_INTEGER]: 'invalid integer reply',
  [BAD_BULK_LEN]: 'invalid bulk length',
  [BAD_ARRAY_LEN]: 'invalid multibulk length',
  [BAD_BULK_END]: 'bulk data not followed by CRLF',
  [BAD_LINE]: 'line too long for a number',
};

/** The first byte of the reply at `start` ('+', '-', ':', '$', '*' as a char code), or -1 if none. */
export function replyType(buf: Uint8Array, start: number): number {
  return start < buf.length ? buf[start] : -1;
}

/** Index of the `\r` of the first `\r\n` in `buf[from..end)`, -1 if none yet. */
function findCrlf(buf: Uint8Array, from: number, end: number): number {
  for (let i = from; i < end - 1; i++) {
    if (buf[i] === CR && buf[i + 1] === LF) return i;
  }
  return -1;
}

/** Like findCrlf, but gives up (BAD_LINE) when a number line is longer than any valid one. */
function findNumberLine(buf: Uint8Array, from: number, end: number): number {
  const cr = findCrlf(buf, from, end);
  if (cr >= 0) return cr;
  return end - from > MAX_NUMBER_LINE ? BAD_LINE : INCOMPLETE;
}

/** Scan one reply: the absolute offset after it, or a negative code. */
function scan(buf: Uint8Array, start: number, end: number): number {
  let pos = start;
  let remaining = 1; // replies still to read (array headers add their element counts)
  while (remaining > 0) {
    if (pos >= end) return INCOMPLETE;
    const t = buf[pos];
    if (t === PLUS || t === MINUS) {
      const cr = findCrlf(buf, pos + 1, end);
      if (cr < 0) return INCOMPLETE;
      pos = cr + 2;
    } else if (t === COLON) {
      const cr = findNumberLine(buf, pos + 1, end);
      if (cr < 0) return cr;
      if (Number.isNaN(string2ll(buf, pos + 1, cr))) return BAD_INTEGER;
      pos = cr + 2;
    } else if (t === DOLLAR) {
      const cr = findNumberLine(buf, pos + 1, end);
      if (cr < 0) return cr;
      const len = string2ll(buf, pos + 1, cr);
      if (len === -1) {
        pos = cr + 2;
      } else {
        if (!(len >= 0 && len <= MAX_BULK)) return BAD_BULK_LEN;
        const data = cr + 2;
        if (end - data < len + 2) return INCOMPLETE;
        if (buf[data + len] !== CR || buf[data + len + 1] !== LF) return BAD_BULK_END;
        pos = data + len + 2;
      }
    } else if (t === STAR) {
      const cr = findNumberLine(buf, pos + 1, end);
      if (cr < 0) return cr;
      const n = string2ll(buf, pos + 1, cr);
      if (!(n >= -1)) return BAD_ARRAY_LEN; // NaN or < -1
      pos = cr + 2;
      if (n > 0) remaining += n;
    } else {
      return BAD_TYPE;
    }
    remaining--;
  }
  return pos;
}

/**
 * The absolute offset just after one complete reply at `start`, -1 if the reply is incomplete, -2 if
 * the bytes are not a valid RESP2 reply. Allocates nothing.
 */
export function skipReply(buf: Uint8Array, start: number, end: number): number {
  const r = scan(buf, start, end);
  return r >= 0 ? r : r === INCOMPLETE ? -1 : -2;
}

/** Parse one reply at `start`. */
export function parseReply(buf: Buffer, start: number, end: number): RespReplyParse {
  const next = scan(buf, start, end);
  if (next === INCOMPLETE) return INCOMPLETE_REPLY;
  if (next < 0) return { kind: 'error', reason: REASONS[next] ?? 'malformed reply' };
  return { kind: 'reply', value: build(buf, start), next };
}

/** Build the value of a reply already validated by `scan` (so no checks here). Iterative. */
function build(buf: Buffer, start: number): RespValue {
  let pos = start;
  let root: RespValue = null;
  const arrays: RespValue[][] = [];
  const filled: number[] = [];
  for (;;) {
    const t = buf[pos];
    const cr = findCrlf(buf, pos + 1, buf.length);
    let v: RespValue;
    let opened: RespValue[] | null = null;
    if (t === PLUS) {
      v = buf.toString('latin1', pos + 1, cr);
      pos = cr + 2;
    } else if (t === MINUS) {
      v = new RespErrorReply(buf.toString('latin1', pos + 1, cr));
      pos = cr + 2;
    } else if (t === COLON) {
      v = string2ll(buf, pos + 1, cr);
      pos = cr + 2;
    } else if (t === DOLLAR) {
      const len = string2ll(buf, pos + 1, cr);
      pos = cr + 2;
      if (len < 0) v = null;
      else {
        const b = Buffer.allocUnsafe(len);
        if (len <= 48) for (let i = 0; i < len; i++) b[i] = buf[pos + i];
        else buf.copy(b, 0, pos, pos + len);
        v = b;
        pos += len + 2;
      }
    } else {
      const n = string2ll(buf, pos + 1, cr);
      pos = cr + 2;
      if (n < 0) v = null;
      else {
        const a = new Array<RespValue>(n);
        v = a;
        if (n > 0) opened = a;
      }
    }
    const depth = arrays.length;
    if (depth === 0) root = v;
    else arrays[depth - 1][filled[depth - 1]++] = v;
    if (opened !== null) {
      arrays.push(opened);
      filled.push(0);
      continue;
    }
    // Close every array that this value completed.
    while (arrays.length > 0 && filled[arrays.length - 1] === arrays[arrays.length - 1].length) {
      arrays.pop();
      filled.pop();
    }
    if (arrays.length === 0) return root;
  }
}
