/**
 * RESP2 command parser for the server side (sans-I/O).
 *
 * `parseCommand(buf, start, end)` looks at the bytes `buf[start..end)` the engine holds for one
 * connection and returns one of:
 *   - `command`: the command's arguments and `next`, the absolute offset just after it. Pipelined
 *     commands are parsed by calling again from `next`.
 *   - `skip`: input Redis ignores (an empty inline line, `*0`, `*-10`); continue from `next`.
 *   - `incomplete`: more bytes are needed. The engine keeps the unconsumed bytes, appends what it
 *     reads next and calls again from the same `start` (the parser is stateless). This result is a
 *     shared frozen singleton, so waiting for data allocates nothing.
 *   - `error`: a protocol error with Redis's wording (without the `-ERR ` prefix). The engine answers
 *     `-ERR <message>\r\n` and closes the connection, as Redis does (setProtocolError sets
 *     CLIENT_CLOSE_AFTER_REPLY).
 *
 * The rules follow Redis 7's `src/networking.c` (processInputBuffer, processInlineBuffer,
 * processMultibulkBuffer) and `sdssplitargs` in `src/sds.c`, check for check and in the same order,
 * so a byte stream gets the same answer from iolab as from redis-server. Because Redis checks each
 * element as soon as its header line is complete, re-parsing from `start` on every call (stateless)
 * reaches the same verdict at the same byte as Redis's incremental parser.
 *
 * Ownership: every argument is a fresh copy (`Buffer.allocUnsafe` + copy), never a view into `buf`.
 * Engines reuse their read buffers, and apps keep arguments (a SET value) past the call, so views would
 * be overwritten under them. Copies come from Node's shared 8 KB pool for small sizes, which makes them
 * cheap; nothing is copied until the whole command has arrived.
 *
 * `parseCommandArgv` is the same parser without the copies, for apps that read arguments in place: a
 * complete multibulk's arguments are described as offsets into `buf` in a reused RespArgv, and the
 * caller hands `buf` and the RespArgv to the app before the buffer is reused.
 *
 * Two Redis behaviours are reproduced on purpose because Redis's own tests depend on them:
 *   - Lines are found with C `strchr`, which stops at a NUL byte. A header or inline line with a NUL
 *     before its terminator therefore never "ends": it waits until the 64 KB bound and then fails with
 *     "too big ... request/string". That is what closes the connection in protocol.tcl's "Protocol
 *     desync regression test" (`\x00`, `*\x00`, `$\x00` followed by junk). Bulk data is binary-safe:
 *     it is skipped by its length, never scanned.
 *   - After a header's `\r` Redis checks that one more byte has arrived but not that it is `\n`, and
 *     after bulk data it skips 2 bytes without looking at them (it trusts the length). We do the same:
 *     `*1\r\n$3\r\nfooXY` parses as `foo` and the next command starts after `XY`. Being stricter would
 *     make iolab reject streams that Redis accepts; a sender that gets the length wrong is desynced
 *     either way and will hit a protocol error on the next header.
 *
 * Deliberate difference: the multibulk count limit is `limits.maxMultibulk` (1M by default) where
 * Redis 7 allows INT_MAX, so `*20000000` is refused at once instead of waiting for 20M elements.
 * Like Redis, the 64 KB bounds apply only while no line end has been found: a longer line that is
 * complete in the buffer is accepted, so for lines just over 64 KB the verdict depends on how the
 * bytes were chunked into reads (in Redis too).
 *
 * Cost: header lines are scanned once per call. A command that arrives in many pieces is re-scanned
 * from its start each time (only its header lines; bulk data is skipped by length), which is fine for
 * real traffic; a single multibulk with ~1M elements arriving in small reads is quadratic in headers.
 */
import { DEFAULT_RESP_LIMITS, type RespCommandParse, type RespLimits } from './types.js';

const NUL = 0;
const TAB = 9;
const LF = 10;
const CR = 13;
const SPACE = 32;
const DQUOTE = 34;
const DOLLAR = 36;
const SQUOTE = 39;
const STAR = 42;
const MINUS = 45;
const BACKSLASH = 92;

/** The one `incomplete` result: frozen and shared so that waiting for bytes allocates nothing. */
export const INCOMPLETE: RespCommandParse = Object.freeze({ kind: 'incomplete' } as const);

function protocolError(message: string): RespCommandParse {
  return Object.freeze({ kind: 'error', message } as const);
}

// Redis's exact wording (networking.c, addReplyError calls in processInlineBuffer/processMultibulkBuffer).
export const ERR_TOO_BIG_INLINE = 'Protocol error: too big inline request';
export const ERR_UNBALANCED_QUOTES = 'Protocol error: unbalanced quotes in request';
export const ERR_TOO_BIG_MBULK = 'Protocol error: too big mbulk count string';
export const ERR_TOO_BIG_BULK = 'Protocol error: too big bulk count string';
export const ERR_INVALID_MBULK = 'Protocol error: invalid multibulk length';
export const ERR_INVALID_BULK = 'Protocol error: invalid bulk length';

const TOO_BIG_INLINE = protocolError(ERR_TOO_BIG_INLINE);
const UNBALANCED_QUOTES = protocolError(ERR_UNBALANCED_QUOTES);
const TOO_BIG_MBULK = protocolError(ERR_TOO_BIG_MBULK);
const TOO_BIG_BULK = protocolError(ERR_TOO_BIG_BULK);
const INVALID_MBULK = protocolError(ERR_INVALID_MBULK);
const INVALID_BULK = protocolError(ERR_INVALID_BULK);

/**
 * `Protocol error: expected '$', got 'f'` with the byte as Redis prints it (`%c`): the raw byte
 * (as a latin1 character, so the engine should write messages with latin1), except that `\r` and `\n`
 * become spaces (addReplyErrorFormat strips newlines so the reply stays one line).
 */
function expectedDollar(byte: number): RespCommandParse {
  const c = byte === CR || byte === LF ? ' ' : String.fromCharCode(byte);
  return protocolError(`Protocol error: expected '$', got '${c}'`);
}

// "9223372036854775807" (LLONG_MAX) as digits, for the exact overflow check of 19-digit numbers.
const LLONG_MAX_DIGITS = [57, 50, 50, 51, 51, 55, 50, 48, 51, 54, 56, 53, 52, 55, 55, 53, 56, 48, 55];

/**
 * Redis's `string2ll` (util.c) over `buf[s..e)`: optional `-`, no `+`, no spaces, no leading zeros
 * (only "0" itself), fits in a signed 64-bit integer. Returns the value, or NaN when Redis would
 * reject the string. Values beyond 2^53 are accepted exactly as Redis does and come back as the
 * nearest double (use BigInt on the text if the exact value matters, as kv's INCR does).
 */
export function string2ll(buf: Uint8Array, s: number, e: number): number {
  const len = e - s;
  // A string of zero length or excessive length (>= LONG_STR_SIZE, 21) is not a valid number.
  if (len <= 0 || len >= 21) return NaN;
  let p = s;
  let c = buf[p];
  if (len === 1 && c === 48) return 0;
  let negative = false;
  if (c === MINUS) {
    negative = true;
    if (++p === e) return NaN;
    c = buf[p];
  }
  // First digit should be 1-9, otherwise the string should just be "0".
  if (c < 49 || c > 57) return NaN;
  const digitsStart = p;
  let v = c - 48;
  for (p++; p < e; p++) {
    c = buf[p];
    if (c < 48 || c > 57) return NaN;
    v = v * 10 + (c - 48);
  }
  const digits = e - digitsStart;
  // Up to 15 digits the loop above is exact; past that it accumulates rounding, so let the runtime
  // round the text once (rare: no length or count that fits our limits has 16 digits).
  if (digits > 15) v = Number(Buffer.from(buf.buffer, buf.byteOffset + digitsStart, e - digitsStart).toString('latin1'));
  if (digits >= 19) {
    if (digits > 19) return NaN;
    // Compare against LLONG_MAX digit by digit; a negative number may be one larger (LLONG_MIN).
    for (let i = 0; i < 19; i++) {
      const d = buf[digitsStart + i];
      const m = LLONG_MAX_DIGITS[i];
      if (d < m) break;
      if (d > m) {
        // Only the last digit may exceed by one, and only for LLONG_MIN.
        if (!(negative && i === 18 && d === m + 1)) return NaN;
      }
    }
  }
  return negative ? -v : v;
}

/**
 * `strchr(p, byte)` over `buf[from..end)`: the index of the first `byte`, or -1 when the range ends
 * or a NUL byte comes first (C strings end at NUL; see the file comment for why this matters).
 */
function findByte(buf: Buffer, from: number, end: number, byte: number): number {
  for (let i = from; i < end; i++) {
    const c = buf[i];
    if (c === byte) return i;
    if (c === NUL) return -1;
  }
  return -1;
}

/**
 * An owned copy of `buf[s..e)`. Short arguments (command names, keys, small values) are copied with a
 * plain loop: measured on Node 20, that is about twice as fast as `buf.copy` up to ~48 bytes, where
 * the native call's fixed cost stops paying for itself.
 */
function copyOut(buf: Buffer, s: number, e: number): Buffer {
  const n = e - s;
  const b = Buffer.allocUnsafe(n);
  if (n <= 48) {
    for (let i = 0; i < n; i++) b[i] = buf[s + i];
  } else {
    buf.copy(b, 0, s, e);
  }
  return b;
}

// Data offsets/lengths of the elements of the current multibulk, so the copy pass does not re-parse
// the headers. Safe as a module-level scratch because parseCommand is synchronous and not re-entrant.
const SCRATCH_ARGS = 64;
const scratch = new Float64Array(SCRATCH_ARGS * 2);

/** Most arguments a command may have to be described in a RespArgv (more come back as Buffers). */
export const ARGV_MAX = SCRATCH_ARGS;

/**
 * A command's arguments as places in the caller's buffer, filled by parseCommandArgv: argument i is
 * `buf[pos[2i] .. pos[2i] + pos[2i+1])`. One per loop, reused for every command; it describes the
 * bytes only until the engine reuses its buffer, so an app that keeps an argument copies it.
 */
export class RespArgv {
  count = 0;
  /** Absolute offset just after the command. */
  next = 0;
  readonly pos = new Float64Array(2 * ARGV_MAX);
}

/** What parseCommandArgv returns: parseCommand's results, or `argv` (the command is in the RespArgv). */
export type RespArgvParse = RespCommandParse | { kind: 'argv' };

/** The one `argv` result. Shared and frozen, so parsing allocates nothing. */
export const ARGV: RespArgvParse = Object.freeze({ kind: 'argv' } as const);

/** Owned copies of the arguments a RespArgv describes (what parseCommand would have returned). */
export function argvArgs(buf: Buffer, argv: RespArgv): Buffer[] {
  const n = argv.count;
  const pos = argv.pos;
  const args = new Array<Buffer>(n);
  for (let i = 0; i < n; i++) args[i] = copyOut(buf, pos[2 * i], pos[2 * i] + pos[2 * i + 1]);
  return args;
}

/**
 * Parse one command from `buf[start..end)`. See the file comment for the contract.
 * `next` is absolute (an offset into `buf`, not relative to `start`).
 */
export function parseCommand(
  buf: Buffer,
  start: number,
  end: number,
  limits: RespLimits = DEFAULT_RESP_LIMITS,
): RespCommandParse {
  return parse(buf, start, end, limits, null) as RespCommandParse;
}

/**
 * parseCommand, except that a complete multibulk of at most ARGV_MAX elements is not copied out: its
 * arguments' places are written to `argv` and the result is the shared ARGV. The same bytes get the
 * same verdict as from parseCommand; inline commands and longer multibulks come back as `command`.
 * Nothing is allocated per command, which is the point: under redis-benchmark -P 16 the argument
 * Buffers, their array and the result object were ~13% of kv's CPU samples.
 */
export function parseCommandArgv(buf: Buffer, start: number, end: number, limits: RespLimits, argv: RespArgv): RespArgvParse {
  return parse(buf, start, end, limits, argv);
}

function parse(buf: Buffer, start: number, end: number, limits: RespLimits, argv: RespArgv | null): RespArgvParse {
  if (start >= end) return INCOMPLETE;
  // processInputBuffer: a request starting with '*' is multibulk, anything else is inline.
  if (buf[start] !== STAR) return parseInline(buf, start, end, limits);

  // processMultibulkBuffer, the count line `*<n>\r\n`.
  let cr = findByte(buf, start, end, CR);
  if (cr < 0) return end - start > limits.maxInline ? TOO_BIG_MBULK : INCOMPLETE;
  // "Buffer should also contain \n": one byte must follow the '\r' (Redis does not check it is '\n').
  if (cr > end - 2) return INCOMPLETE;
  const n = string2ll(buf, start + 1, cr);
  // Redis 7 rejects ll > INT_MAX (and > 10 before AUTH); our bound is limits.maxMultibulk.
  if (n !== n || n > limits.maxMultibulk) return INVALID_MBULK;
  const first = cr + 2;
  // `*0`, `*-1`, `*-10`: Redis returns C_OK with argc == 0 and processInputBuffer resets the client.
  if (n <= 0) return { kind: 'skip', next: first };

  const maxInline = limits.maxInline;
  const maxBulk = limits.maxBulk;
  const useScratch = n <= SCRATCH_ARGS;
  const sc = argv !== null && useScratch ? argv.pos : scratch;
  let pos = first;
  for (let i = 0; i < n; i++) {
    // The bulk header `$<len>\r\n`.
    cr = findByte(buf, pos, end, CR);
    if (cr < 0) return end - pos > maxInline ? TOO_BIG_BULK : INCOMPLETE;
    if (cr > end - 2) return INCOMPLETE;
    if (buf[pos] !== DOLLAR) return expectedDollar(buf[pos]);
    const len = string2ll(buf, pos + 1, cr);
    if (len !== len || len < 0 || len > maxBulk) return INVALID_BULK;
    pos = cr + 2;
    // The data and its 2 trailing bytes must all be there; Redis skips the 2 bytes unchecked.
    if (end - pos < len + 2) return INCOMPLETE;
    if (useScratch) {
      sc[2 * i] = pos;
      sc[2 * i + 1] = len;
    }
    pos += len + 2;
  }
  if (argv !== null && useScratch) {
    argv.count = n;
    argv.next = pos;
    return ARGV;
  }

  // Complete and valid: now copy the arguments out.
  const args = new Array<Buffer>(n);
  if (useScratch) {
    for (let i = 0; i < n; i++) {
      const s = scratch[2 * i];
      args[i] = copyOut(buf, s, s + scratch[2 * i + 1]);
    }
  } else {
    // Too many elements for the scratch: walk the (already validated) headers again.
    let p = first;
    for (let i = 0; i < n; i++) {
      const c = findByte(buf, p, end, CR);
      const len = string2ll(buf, p + 1, c);
      p = c + 2;
      args[i] = copyOut(buf, p, p + len);
      p += len + 2;
    }
  }
  return { kind: 'command', args, next: pos };
}

/** processInlineBuffer: one line up to '\n' (an optional '\r' before it is dropped), split like a shell. */
function parseInline(buf: Buffer, start: number, end: number, limits: RespLimits): RespCommandParse {
  const lf = findByte(buf, start, end, LF);
  if (lf < 0) return end - start > limits.maxInline ? TOO_BIG_INLINE : INCOMPLETE;
  let lineEnd = lf;
  if (lf !== start && buf[lf - 1] === CR) lineEnd--;
  const args = splitArgs(buf, start, lineEnd);
  if (args === null) return UNBALANCED_QUOTES;
  // An empty or all-blank line has argc == 0: processInputBuffer resets the client and goes on.
  if (args.length === 0) return { kind: 'skip', next: lf + 1 };
  return { kind: 'command', args, next: lf + 1 };
}

function isSpace(c: number): boolean {
  // C isspace() in the "C" locale: space, \t, \n, \v, \f, \r.
  return c === SPACE || (c >= TAB && c <= CR);
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

// Where quoted tokens are decoded before being copied out at their exact size. Grows to the longest
// line seen (a decoded token is never longer than its line).
let tokenScratch = Buffer.allocUnsafe(1024);

/**
 * sdssplitargs (sds.c) over `buf[s..e)`, which holds no NUL (the line search stopped at NUL).
 * Returns null for unbalanced quotes, including a closing quote followed by something other than a
 * space. Empty arguments (`""`, `''`) are kept, as Redis 7's processInlineBuffer keeps them (Redis
 * before 6 dropped them; 7.0.15 answers `ECHO "" x` with a wrong-number-of-arguments error).
 */
function splitArgs(buf: Buffer, s: number, e: number): Buffer[] | null {
  const args: Buffer[] = [];
  let p = s;
  for (;;) {
    while (p < e && isSpace(buf[p])) p++;
    if (p >= e) return args;

    // Fast path: a plain token (no quotes) is copied straight out of the line.
    const tokStart = p;
    let c = buf[p];
    while (c !== SPACE && c !== LF && c !== CR && c !== TAB && c !== DQUOTE && c !== SQUOTE) {
      if (++p >= e) break;
      c = buf[p];
    }
    if (p >= e || (c !== DQUOTE && c !== SQUOTE)) {
      args.push(copyOut(buf, tokStart, p));
      continue;
    }

    // Slow path: a quote starts inside this token. Decode into the scratch with sdssplitargs' rules.
    if (tokenScratch.length < e - s) tokenScratch = Buffer.allocUnsafe(Math.max(e - s, tokenScratch.length * 2));
    const out = tokenScratch;
    let w = buf.copy(out, 0, tokStart, p);
    let inq = false;
    let insq = false;
    let done = false;
    while (!done) {
      const atEnd = p >= e;
      c = atEnd ? NUL : buf[p];
      const next = p + 1 < e ? buf[p + 1] : NUL;
      if (inq) {
        if (c === BACKSLASH && next === 120 /* x */ && p + 3 < e && hexValue(buf[p + 2]) >= 0 && hexValue(buf[p + 3]) >= 0) {
          out[w++] = hexValue(buf[p + 2]) * 16 + hexValue(buf[p + 3]);
          p += 3;
        } else if (c === BACKSLASH && next !== NUL) {
          p++;
          switch (buf[p]) {
            case 110: out[w++] = LF; break; // \n
            case 114: out[w++] = CR; break; // \r
            case 116: out[w++] = TAB; break; // \t
            case 98: out[w++] = 8; break; // \b
            case 97: out[w++] = 7; break; // \a
            default: out[w++] = buf[p]; break;
          }
        } else if (c === DQUOTE) {
          // Closing quote must be followed by a space or nothing at all.
          if (next !== NUL && !isSpace(next)) return null;
          done = true;
        } else if (atEnd) {
          return null; // unterminated quotes
        } else {
          out[w++] = c;
        }
      } else if (insq) {
        if (c === BACKSLASH && next === SQUOTE) {
          p++;
          out[w++] = SQUOTE;
        } else if (c === SQUOTE) {
          if (next !== NUL && !isSpace(next)) return null;
          done = true;
        } else if (atEnd) {
          return null;
        } else {
          out[w++] = c;
        }
      } else {
        // Note: only these four end an unquoted token; \v and \f do not (they are kept), as in Redis.
        if (atEnd || c === SPACE || c === LF || c === CR || c === TAB) done = true;
        else if (c === DQUOTE) inq = true;
        else if (c === SQUOTE) insq = true;
        else out[w++] = c;
      }
      if (!atEnd) p++;
    }
    args.push(copyOut(out, 0, w));
  }
}

