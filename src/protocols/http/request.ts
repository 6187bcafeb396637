/**
 * HTTP/1.1 request parser (server side), sans-I/O and stateless.
 *
 * `parseRequest(buf, start, end)` looks at one connection's unconsumed input and returns the first
 * complete request, `INCOMPLETE`, or an error with the status to answer before closing. The engine
 * keeps the bytes from `next` (or from `start` on incomplete), appends what it reads, and calls again.
 *
 * Why stateless: the engines keep per-connection state in compact tables (DESIGN.md), not parser
 * objects. The price is a re-scan from `start` on each call that brings more bytes of the same
 * request: bounded by maxHeaderBytes for a head, and for a chunked body by its wire bound (see
 * decodeChunked); a Content-Length body is not scanned, only waited for. Every decision
 * is made by a single forward scan and depends only on the bytes before the position it is made at,
 * so a prefix of the input yields either `INCOMPLETE` or exactly what the whole input yields. That is
 * what makes chunk boundaries invisible (tested as a property) and lets limits fire early: 414/431
 * as soon as the scan passes the limit, whether or not a CRLF has arrived yet.
 *
 * Strictness follows llhttp's defaults (no lenient flags) and RFC 9112:
 *  - CRLF only. A bare LF or bare CR in the request line, header lines or chunk lines is a 400
 *    (llhttp rejects bare LF in headers unless `lenient_optional_cr_before_lf`; RFC 9112 §2.2
 *    permits accepting it, but a parser that does can disagree with a proxy about where a header
 *    ends, which is how request smuggling starts). Empty lines (CRLF) before the request line are
 *    skipped (RFC 9112 §2.2), and count toward the header limit.
 *  - Obsolete line folding is rejected with 400 (RFC 9112 §5.2 allows reject-or-replace).
 *  - Content-Length: 1*DIGIT after OWS trimming; any duplicate (even equal) is a 400, as llhttp does;
 *    values above 2^53-1 are malformed (400, like nginx's off_t overflow); well-formed but over
 *    `maxBody` is 413 (nginx client_max_body_size). `4, 4` (a list) is a 400.
 *  - Transfer-Encoding: only exactly `chunked` is implemented. Any other coding, anywhere in the
 *    list, is 501 (nginx: "client sent unknown Transfer-Encoding"; RFC 9112 §6.1 SHOULD 501);
 *    `chunked` twice or an empty list is 400; with Content-Length it is 400 (RFC 9112 §6.3 allows
 *    rejecting, llhttp does); in an HTTP/1.0 request it is 400 (RFC 9112 §6.1: faulty framing).
 *  - Versions: HTTP/1.0 and HTTP/1.1; any other well-formed `HTTP/d.d` is 505 (also 1.2, which
 *    RFC 9110 §2.5 would let us serve as 1.1; nginx 505s only major > 1); anything else 400.
 *  - `Expect: 100-continue` is not acted on here: the header is returned like any other, and
 *    the request stays INCOMPLETE until its body arrives (clients send it after a short wait).
 *  - Target: any byte 0x21-0x7E or 0x80-0xFF (raw UTF-8 paths are common); strings are latin1, so
 *    they are lossless and a caller can re-decode them as UTF-8.
 *
 * The returned request never aliases `buf` (strings and a copied body), so the engine may reuse its
 * input buffer as soon as this returns, even while an async handler still holds the request.
 *
 * Cost: the scan (scanRequest) allocates nothing; the strings of the HttpRequest (scannedRequest)
 * come from intern.ts, so a client that repeats its target and header values costs no string per
 * request, only the request object and its header list.
 */
import { latin1, latin1Lower } from './intern.js';
import { DEFAULT_HTTP_LIMITS, type HttpLimits, type HttpRequest, type HttpRequestParse } from './types.js';

const HT = 9;
const LF = 10;
const CR = 13;
const SP = 32;
const COMMA = 44;
const COLON = 58;
const SEMI = 59;
const DEL = 127;

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** tchar (RFC 9110 §5.6.2): the bytes allowed in a method and a field name. */
export const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TCHAR[c] = 1;
for (let c = 65; c <= 90; c++) TCHAR[c] = 1;
for (let c = 97; c <= 122; c++) TCHAR[c] = 1;

/** Hex digit values, -1 for anything else. */
const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[48 + c] = c;
for (let c = 0; c < 6; c++) HEX[65 + c] = HEX[97 + c] = 10 + c;

export const INCOMPLETE: { readonly kind: 'incomplete' } = Object.freeze({ kind: 'incomplete' as const });
/** Shared by every request without a body (a zero-length Buffer cannot be written to). */
export const EMPTY_BODY: Buffer = Buffer.alloc(0);

type ParseError = { kind: 'error'; status: number; reason: string };
function fail(status: number, reason: string): ParseError {
  return { kind: 'error', status, reason };
}

// ---------------------------------------------------------------------------------------------
// Field lines (shared with the client parser and with chunked trailers)

/** scanField() ran into `lim` before the line ended. */
export const NEED_MORE = -1;
/** scanField()/decodeChunked() found a syntax error; `scan.reason` (and `scan.status`) say which. */
export const BAD = -2;

/**
 * Side outputs of scanField() and decodeChunked(). One shared object instead of a result per call:
 * the parsers are synchronous and never re-entered, and this keeps the hot path allocation-free.
 */
export const scan = {
  nameEnd: 0,
  valueStart: 0,
  valueEnd: 0,
  /** The name has an upper-case letter (so it needs toLowerCase()). */
  upper: false,
  status: 400,
  reason: '',
  /** decodeChunked(): the decoded body. */
  body: EMPTY_BODY,
};

function bad(reason: string, status = 400): number {
  scan.reason = reason;
  scan.status = status;
  return BAD;
}

/**
 * Scan one field line `field-name ":" OWS field-value OWS CRLF` (RFC 9112 §5) from `p`, reading no
 * byte at or past `lim`. Returns the offset just past its LF, NEED_MORE, or BAD. The caller has
 * already checked that the line does not start with CR (the end of the section).
 */
export function scanField(buf: Buffer, p: number, lim: number): number {
  let i = p;
  let upper = false;
  let c = 0;
  while (i < lim) {
    c = buf[i]!;
    if (TCHAR[c] === 0) break;
    if (c <= 90 && c >= 65) upper = true;
    i++;
  }
  if (i >= lim) return NEED_MORE;
  if (c !== COLON) {
    // RFC 9112 §5.1: "No whitespace is allowed between the field name and colon ... MUST reject
    // ... with 400"; a line starting with whitespace is obs-fold (§5.2).
    if (c === SP || c === HT) return bad(i === p ? 'obsolete line folding' : 'whitespace before colon');
    if (c === CR || c === LF) return bad(i === p ? 'bare LF' : 'header line without colon');
    return bad('invalid character in header name');
  }
  if (i === p) return bad('empty header name');
  scan.nameEnd = i;
  scan.upper = upper;
  i++;
  while (i < lim && ((c = buf[i]!) === SP || c === HT)) i++;
  const vs = i;
  let ve = i;
  while (i < lim) {
    c = buf[i]!;
    if (c > SP && c !== DEL) ve = i + 1;
    // field-vchar is VCHAR / obs-text; SP and HTAB only between them (RFC 9110 §5.5). Any other
    // control byte (NUL, bare LF, ...) is a 400, as llhttp does.
    else if (c === CR) break;
    else if (c !== SP && c !== HT) return bad(c === LF ? 'bare LF' : 'invalid character in header value');
    i++;
  }
  if (i + 1 >= lim) return NEED_MORE;
  if (buf[i + 1] !== LF) return bad('bare CR');
  scan.valueStart = vs;
  scan.valueEnd = ve;
  return i + 2;
}

/** Whether buf[a, a+ref.length) equals `ref` (lower-case ASCII letters and '-') ignoring case. */
export function eqLower(buf: Buffer, a: number, ref: Uint8Array): boolean {
  // `| 0x20` folds A-Z onto a-z. It also maps CR onto '-', but CR never reaches here: names are
  // tchar-checked first and list elements stop at CR-free field values.
  for (let k = 0; k < ref.length; k++) if ((buf[a + k]! | 0x20) !== ref[k]) return false;
  return true;
}

export const bytes = (s: string): Uint8Array => Buffer.from(s, 'latin1');

// Field names common enough to intern (requests and responses): no substring, no lower-casing, and
// a cheap identity for the four that frame a message (their indices are fixed below).
export const KNOWN_NAMES = [
  'host', 'content-length', 'transfer-encoding', 'connection',
  'user-agent', 'accept', 'accept-encoding', 'accept-language', 'content-type', 'cookie', 'referer',
  'cache-control', 'origin', 'authorization', 'upgrade', 'expect', 'keep-alive', 'pragma',
  'server', 'date', 'etag', 'last-modified', 'vary', 'accept-ranges', 'location', 'set-cookie', 'expires',
  'content-encoding',
] as const;
const H_HOST = 0;
const H_CONTENT_LENGTH = 1;
const H_TRANSFER_ENCODING = 2;
const H_CONNECTION = 3;
const KNOWN_BYTES = KNOWN_NAMES.map(bytes);
/** KNOWN_NAMES indices by name length, so a lookup compares at most a few candidates. */
const KNOWN_BY_LENGTH: number[][] = [];
KNOWN_NAMES.forEach((name, i) => (KNOWN_BY_LENGTH[name.length] ??= []).push(i));

/** Index in KNOWN_NAMES of the field name buf[a, b) (any case), or -1. */
export function knownName(buf: Buffer, a: number, b: number): number {
  const candidates = KNOWN_BY_LENGTH[b - a];
  if (candidates === undefined) return -1;
  for (let k = 0; k < candidates.length; k++) {
    const i = candidates[k]!;
    if (eqLower(buf, a, KNOWN_BYTES[i]!)) return i;
  }
  return -1;
}

const CLOSE = bytes('close');
const KEEP_ALIVE = bytes('keep-alive');
export const CHUNKED = bytes('chunked');

/**
 * Walk a comma-separated list (RFC 9110 §5.6.1: empty elements and OWS around them are allowed) and
 * return a bit set: for Connection, 1 = close, 2 = keep-alive; for Transfer-Encoding, each `chunked`
 * adds 4 (counted in bits 2..) and any other coding sets 1.
 */
export function listFlags(buf: Buffer, a: number, b: number, te: boolean): number {
  let flags = 0;
  let i = a;
  while (i < b) {
    const c = buf[i]!;
    if (c === SP || c === HT || c === COMMA) {
      i++;
      continue;
    }
    const s = i;
    while (i < b && buf[i] !== COMMA) i++;
    let e = i;
    while (e > s && (buf[e - 1] === SP || buf[e - 1] === HT)) e--;
    const n = e - s;
    if (te) {
      if (n === 7 && eqLower(buf, s, CHUNKED)) flags += 4;
      else flags |= 1;
    } else if (n === 5 && eqLower(buf, s, CLOSE)) flags |= 1;
    else if (n === 10 && eqLower(buf, s, KEEP_ALIVE)) flags |= 2;
  }
  return flags;
}

// ---------------------------------------------------------------------------------------------
// Chunked bodies (RFC 9112 §7.1), shared with the client parser

/**
 * Decode a chunked body starting at `p` (just past the header section). Returns the offset just
 * past the trailer section's final CRLF, with the decoded body in `scan.body`; NEED_MORE; or BAD
 * with `scan.status` (400 syntax, 413 too large, 431 trailers too large) and `scan.reason`.
 *
 * Chunk extensions are validated loosely (no control bytes) and ignored; trailers are validated
 * as field lines and ignored. Because the parser is stateless, the engine buffers the whole wire
 * form of the body, so the wire form is bounded too: at most 2 * maxBody + maxHeaderBytes bytes
 * (framing of chunks under ~6 bytes would exceed it: 413), and extensions at most maxHeaderBytes
 * in total (Node answers 413 to the same, HPE_CHUNK_EXTENSIONS_OVERFLOW).
 */
export function decodeChunked(buf: Buffer, p: number, end: number, maxBody: number, maxHeaderBytes: number, maxFields: number): number {
  const wireMax = p + 2 * maxBody + maxHeaderBytes;
  const lim = end < wireMax ? end : wireMax;
  const bodyStart = p;
  let total = 0;
  let ext = 0;
  for (;;) {
    // chunk-size = 1*HEXDIG
    const ds = p;
    let size = 0;
    let h = 0;
    while (p < lim && (h = HEX[buf[p]!]!) >= 0) {
      size = size * 16 + h;
      if (size > MAX_SAFE) return bad('chunk size overflow');
      p++;
    }
    if (p >= lim) return p >= wireMax ? bad('chunked body too large', 413) : NEED_MORE;
    if (p === ds) return bad('invalid chunk size');
    if (total + size > maxBody) return bad('body too large', 413);
    // [ chunk-ext ] CRLF, chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ). The grammar
    // allows BWS only before ';', so `5 \r\n` is a 400. (llhttp, unless lenient_spaces_after_
    // chunk_size, rejects any whitespace after the size; RFC 9110 §5.6.3 says BWS must be parsed.)
    let c = buf[p]!;
    if (c !== CR) {
      const es = p;
      while (p < lim && ((c = buf[p]!) === SP || c === HT)) p++;
      if (p >= lim) return p >= wireMax ? bad('chunked body too large', 413) : NEED_MORE;
      if (c !== SEMI) return bad(c === LF ? 'bare LF in chunk line' : 'invalid chunk size');
      while (p < lim && (c = buf[p]!) !== CR) {
        if ((c < SP && c !== HT) || c === DEL) return bad(c === LF ? 'bare LF in chunk line' : 'invalid character in chunk extension');
        if (++p - es + ext > maxHeaderBytes) return bad('chunk extensions too large', 413);
      }
      if (p >= lim) return p >= wireMax ? bad('chunked body too large', 413) : NEED_MORE;
      ext += p - es;
    }
    if (p + 1 >= lim) return p + 1 >= wireMax ? bad('chunked body too large', 413) : NEED_MORE;
    if (buf[p + 1] !== LF) return bad('bare CR in chunk line');
    p += 2;
    if (size === 0) break;
    // chunk-data CRLF. Check the CRLF bytes as soon as they are here, so a wrong length fails early.
    const de = p + size;
    if (de < lim && buf[de] !== CR) return bad('missing CRLF after chunk data');
    if (de + 1 < lim && buf[de + 1] !== LF) return bad('missing CRLF after chunk data');
    if (de + 2 > lim) return lim >= wireMax ? bad('chunked body too large', 413) : NEED_MORE;
    total += size;
    p = de + 2;
  }
  // trailer-section = *( field-line CRLF ) CRLF, bounded like a header section.
  const tMax = p + maxHeaderBytes;
  const tLim = end < tMax ? end : tMax;
  let fields = 0;
  for (;;) {
    if (p >= tLim) return p >= tMax ? bad('trailers too large', 431) : NEED_MORE;
    if (buf[p] === CR) {
      if (p + 1 >= tLim) return p + 1 >= tMax ? bad('trailers too large', 431) : NEED_MORE;
      if (buf[p + 1] !== LF) return bad('bare CR');
      p += 2;
      break;
    }
    if (fields++ === maxFields) return bad('too many trailer fields', 431);
    const q = scanField(buf, p, tLim);
    if (q === NEED_MORE) return tLim >= tMax ? bad('trailers too large', 431) : NEED_MORE;
    if (q === BAD) return BAD;
    p = q;
  }
  scan.body = total === 0 ? EMPTY_BODY : copyChunks(buf, bodyStart, total);
  return p;
}

/**
 * Second pass over a chunked body already validated by decodeChunked(): copy the chunk data. Cheaper
 * than remembering every chunk's offset in the first pass, which would also keep a scratch array
 * as long as the largest body of 1-byte chunks ever seen.
 */
function copyChunks(buf: Buffer, p: number, total: number): Buffer {
  const body = Buffer.allocUnsafe(total);
  let o = 0;
  for (;;) {
    let size = 0;
    let h = 0;
    while ((h = HEX[buf[p]!]!) >= 0) {
      size = size * 16 + h;
      p++;
    }
    if (size === 0) return body;
    while (buf[p] !== LF) p++;
    p++;
    buf.copy(body, o, p, p + size);
    o += size;
    p += size + 2;
  }
}

// ---------------------------------------------------------------------------------------------
// Request line and header section

const METHODS = ['GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'] as const;
const METHOD_BYTES = METHODS.map(bytes);
/** Index of HEAD in METHODS (RequestScan.method). */
export const M_HEAD = 2;

/**
 * Field offsets recorded by the scan, 4 per field: name start; name end, or -1-id for a known name,
 * or -1000-end for a name that needs lower-casing; value start; value end. Grown to maxHeaders.
 */
let offs = new Int32Array(4 * 128);

/**
 * What scanRequest() found, as offsets into the buffer it scanned: valid until the next call (the
 * parser is synchronous and never re-entered, so one object serves every call: no allocation).
 */
export const rq = {
  mStart: 0,
  mEnd: 0,
  /** Index in METHODS (GET, POST, HEAD ...), or -1 for another token. */
  method: -1,
  tStart: 0,
  tEnd: 0,
  minor: 1 as 0 | 1,
  /** Header fields, 4 entries each in `offs`. */
  fields: 0,
  keepAlive: true,
  body: EMPTY_BODY,
  /** On BAD: the status to answer and why. */
  status: 400,
  reason: '',
};

function reject(status: number, reason: string): number {
  rq.status = status;
  rq.reason = reason;
  return BAD;
}

/**
 * Parse the first request in buf[start, end). See the file comment for the rules and the returned
 * shapes; `next` is the absolute offset just past the request (pipelined requests follow it).
 */
export function parseRequest(buf: Buffer, start: number, end: number, limits: HttpLimits = DEFAULT_HTTP_LIMITS): HttpRequestParse {
  const next = scanRequest(buf, start, end, limits);
  if (next === NEED_MORE) return INCOMPLETE;
  if (next === BAD) return fail(rq.status, rq.reason);
  return { kind: 'request', request: scannedRequest(buf), next };
}

/**
 * The scan under parseRequest(), without the result objects: returns the absolute offset just past
 * the first request in buf[start, end) with its parts in `rq`, NEED_MORE, or BAD with `rq.status`
 * and `rq.reason`. scannedRequest() then makes the HttpRequest. The server's Service calls the two
 * directly (apps/service.ts), so a request costs the HttpRequest it hands the app and nothing else.
 */
export function scanRequest(buf: Buffer, start: number, end: number, limits: HttpLimits): number {
  const hMax = start + limits.maxHeaderBytes;
  const hLim = end < hMax ? end : hMax;
  let p = start;

  // RFC 9112 §2.2: "SHOULD ignore at least one empty line (CRLF) received prior to the request-line".
  while (p < hLim && buf[p] === CR) {
    if (p + 1 >= hLim) return p + 1 >= hMax ? reject(431, 'header section too large') : NEED_MORE;
    if (buf[p + 1] !== LF) return reject(400, 'bare CR');
    p += 2;
  }

  // request-line = method SP request-target SP HTTP-version CRLF (RFC 9112 §3), at most
  // maxRequestLine bytes before its CRLF (so 414 fires once maxRequestLine + 2 bytes have come
  // without a complete line). The line must also fit in the header section.
  const rlMax = p + limits.maxRequestLine + 2;
  const lim = hLim < rlMax ? hLim : rlMax;
  const mStart = p;
  while (p < lim && TCHAR[buf[p]!] === 1) p++;
  if (p >= lim) return short(p, rlMax, hMax);
  if (buf[p] !== SP || p === mStart) return reject(400, 'invalid method');
  const mEnd = p++;

  const tStart = p;
  let c = 0;
  while (p < lim && (c = buf[p]!) > SP && c !== DEL) p++;
  if (p >= lim) return short(p, rlMax, hMax);
  if (c !== SP) return reject(400, c === CR || c === LF ? 'missing HTTP version' : 'invalid character in request target');
  if (p === tStart) return reject(400, 'empty request target');
  const tEnd = p++;

  // HTTP-version = "HTTP/" DIGIT "." DIGIT, then CRLF: 10 bytes, checked one by one so that junk
  // fails now rather than after a timeout.
  const vStart = p;
  // `HTTP/1.1` CRLF, what nearly every request says, checked in one expression first.
  if (p + 10 <= lim && buf[p] === 72 && buf[p + 1] === 84 && buf[p + 2] === 84 && buf[p + 3] === 80 && buf[p + 4] === 47 &&
    buf[p + 5] === 49 && buf[p + 6] === 46 && buf[p + 7] === 49 && buf[p + 8] === CR && buf[p + 9] === LF) p += 10;
  else for (let k = 0; k < 10; k++, p++) {
    if (p >= lim) return short(p, rlMax, hMax);
    c = buf[p]!;
    if (k < 5 ? c !== HTTP_SLASH[k] : k === 5 || k === 7 ? c < 48 || c > 57 : k === 6 ? c !== 46 : k === 8 ? c !== CR : c !== LF) {
      if (k === 8 && c === LF) return reject(400, 'bare LF');
      if (k === 9) return reject(400, 'bare CR');
      return reject(400, 'invalid HTTP version');
    }
  }
  if (buf[vStart + 5] !== 49 || buf[vStart + 7]! > 49) return reject(505, 'HTTP version not supported');
  const minor: 0 | 1 = buf[vStart + 7] === 49 ? 1 : 0;

  // Header section. Offsets are recorded now and turned into strings only once it is complete.
  const maxHeaders = limits.maxHeaders;
  if (offs.length < maxHeaders * 4) offs = new Int32Array(maxHeaders * 4);
  let n = 0;
  let contentLength = -1;
  let te = false;
  let teOther = false;
  let teChunked = 0;
  let hosts = 0;
  let conn = 0;
  for (;;) {
    if (p >= hLim) return p >= hMax ? reject(431, 'header section too large') : NEED_MORE;
    if (buf[p] === CR) {
      if (p + 1 >= hLim) return p + 1 >= hMax ? reject(431, 'header section too large') : NEED_MORE;
      if (buf[p + 1] !== LF) return reject(400, 'bare CR');
      p += 2;
      break;
    }
    if (n === maxHeaders) return reject(431, 'too many header fields');
    const q = scanField(buf, p, hLim);
    if (q < 0) {
      if (q === BAD) return reject(400, scan.reason);
      return hLim >= hMax ? reject(431, 'header section too large') : NEED_MORE;
    }
    const ne = scan.nameEnd;
    const vs = scan.valueStart;
    const ve = scan.valueEnd;
    const id = knownName(buf, p, ne);
    const o = n++ * 4;
    offs[o] = p;
    offs[o + 1] = id >= 0 ? -1 - id : scan.upper ? -1000 - ne : ne;
    offs[o + 2] = vs;
    offs[o + 3] = ve;
    if (id >= 0 && id <= H_CONNECTION) {
      if (id === H_HOST) {
        // RFC 9112 §3.2: more than one Host is a 400.
        if (++hosts > 1) return reject(400, 'duplicate Host header');
      } else if (id === H_CONTENT_LENGTH) {
        if (contentLength !== -1) return reject(400, 'duplicate Content-Length');
        if (vs === ve) return reject(400, 'empty Content-Length');
        let v = 0;
        for (let i = vs; i < ve; i++) {
          const d = buf[i]! - 48;
          if (d < 0 || d > 9) return reject(400, 'invalid Content-Length');
          v = v * 10 + d;
          if (v > MAX_SAFE) return reject(400, 'Content-Length overflow');
        }
        contentLength = v;
      } else if (id === H_TRANSFER_ENCODING) {
        const f = listFlags(buf, vs, ve, true);
        te = true;
        teOther ||= (f & 1) !== 0;
        teChunked += f >>> 2;
      } else {
        conn |= listFlags(buf, vs, ve, false);
      }
    }
    p = q;
  }

  // Framing (RFC 9112 §6.3), decided once the header section is complete.
  if (te) {
    if (contentLength !== -1) return reject(400, 'Content-Length with Transfer-Encoding');
    if (minor === 0) return reject(400, 'Transfer-Encoding in HTTP/1.0');
    if (teOther) return reject(501, 'unsupported Transfer-Encoding');
    // RFC 9112 §6.1: chunked MUST NOT be applied more than once; an empty list names no coding.
    if (teChunked !== 1) return reject(400, 'invalid Transfer-Encoding');
  }
  if (minor === 1 && hosts === 0) return reject(400, 'missing Host header');

  let body = EMPTY_BODY;
  let next = p;
  if (te) {
    const q = decodeChunked(buf, p, end, limits.maxBody, limits.maxHeaderBytes, maxHeaders);
    if (q === NEED_MORE) return NEED_MORE;
    if (q === BAD) return reject(scan.status, scan.reason);
    body = scan.body;
    next = q;
  } else if (contentLength > 0) {
    if (contentLength > limits.maxBody) return reject(413, 'body too large');
    next = p + contentLength;
    if (next > end) return NEED_MORE;
    body = Buffer.allocUnsafe(contentLength);
    buf.copy(body, 0, p, next);
  }

  rq.mStart = mStart;
  rq.mEnd = mEnd;
  rq.method = methodIndex(buf, mStart, mEnd);
  rq.tStart = tStart;
  rq.tEnd = tEnd;
  rq.minor = minor;
  rq.fields = n;
  // RFC 9112 §9.3: 1.1 is persistent unless "close"; 1.0 only with "keep-alive" (§9.3 / RFC 2068).
  rq.keepAlive = (conn & 1) === 0 && (minor === 1 || (conn & 2) !== 0);
  rq.body = body;
  return next;
}

/**
 * The HttpRequest for what scanRequest() just found in `buf`. It never aliases `buf` (strings and
 * a copied body), so the engine may reuse its input buffer as soon as this returns, even while an
 * async handler still holds the request. Its strings come from intern.ts: a client that repeats
 * its target and header values (every benchmark client, most browsers) gets strings made once.
 */
export function scannedRequest(buf: Buffer): HttpRequest {
  const n = rq.fields;
  const headers: string[] = new Array(n * 2);
  for (let k = 0; k < n; k++) {
    const o = k * 4;
    const ns = offs[o]!;
    const ne = offs[o + 1]!;
    headers[2 * k] = ne >= 0 ? latin1(buf, ns, ne) : ne > -1000 ? KNOWN_NAMES[-1 - ne]! : latin1Lower(buf, ns, -1000 - ne);
    const vs = offs[o + 2]!;
    const ve = offs[o + 3]!;
    headers[2 * k + 1] = vs === ve ? '' : latin1(buf, vs, ve);
  }
  const m = rq.method;
  return {
    method: m >= 0 ? METHODS[m]! : latin1(buf, rq.mStart, rq.mEnd),
    target: latin1(buf, rq.tStart, rq.tEnd),
    versionMinor: rq.minor,
    headers,
    body: rq.body,
    keepAlive: rq.keepAlive,
  };
}

const HTTP_SLASH = bytes('HTTP/');

/** The scan stopped at `p` without finishing the request line: over a limit, or just not here yet. */
function short(p: number, rlMax: number, hMax: number): number {
  if (p >= rlMax) return reject(414, 'request line too long');
  if (p >= hMax) return reject(431, 'header section too large');
  return NEED_MORE;
}

/** Index in METHODS of the method token buf[a, b) (case-sensitive, RFC 9110 §9.1), or -1. */
function methodIndex(buf: Buffer, a: number, b: number): number {
  const n = b - a;
  for (let k = 0; k < METHODS.length; k++) {
    const m = METHOD_BYTES[k]!;
    if (m.length !== n) continue;
    let j = 0;
    while (j < n && buf[a + j] === m[j]) j++;
    if (j === n) return k;
  }
  return -1;
}

/** Node's Buffer has latin1Slice (what toString('latin1') calls after argument checks); @types/node omits it. */
export type FastBuffer = Buffer & { latin1Slice(start: number, end: number): string };
