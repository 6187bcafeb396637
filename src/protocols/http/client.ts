/**
 * HTTP/1.1 client side for the load generator, sans-I/O: a response parser and a request encoder.
 *
 * `parseResponse(buf, start, end)` is stateless like parseRequest: it returns the first complete
 * response in buf[start, end) with `next` just past it, `INCOMPLETE`, or an error (the connection's
 * stream can no longer be trusted: close it). It uses the server parser's field-line and chunked
 * scanners, so it is as strict (CRLF only, no obs-fold); every server we measure sends CRLF.
 *
 * Message length follows RFC 9112 §6.3, in order: no body after HEAD and for 1xx/204/304; then
 * Transfer-Encoding with `chunked` last (other codings: read until close; any Content-Length is
 * ignored); then Content-Length (duplicates are accepted only when equal, §6.3 rule 5); otherwise
 * the body runs until the server closes. For that last case parseResponse() can only say
 * INCOMPLETE; when the read returns EOF the caller calls `finishAtEof()` on the same bytes, which
 * completes it (keepAlive false) or reports the truncation.
 *
 * A 1xx response (e.g. `100 Continue`) is returned like any other, without a body; the caller skips
 * it and parses again from `next` for the final response.
 *
 * Bodies with a Content-Length or read until close are views into `buf` (the load generator reads
 * them before its next read; copy to keep); chunked bodies are decoded copies.
 */
import {
  BAD, CHUNKED, EMPTY_BODY, INCOMPLETE, KNOWN_NAMES, NEED_MORE, TCHAR, bytes, decodeChunked, eqLower, knownName, listFlags, scan,
  scanField, type FastBuffer,
} from './request.js';
import type { HttpResponseParse } from './types.js';

const HT = 9;
const LF = 10;
const CR = 13;
const SP = 32;
const COMMA = 44;

export interface ResponseParseOptions {
  /** The request was HEAD: no body whatever the headers say (RFC 9110 §9.3.2). */
  head?: boolean;
  /** Largest status line + header section. Default 64 KB (servers send bigger heads than clients). */
  maxHeaderBytes?: number;
  /** Largest body. Default 64 MB. */
  maxBody?: number;
  /** Most header fields. Default 256. */
  maxHeaders?: number;
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const HTTP_SLASH = bytes('HTTP/');
// Indices in KNOWN_NAMES (request.ts).
const H_CONTENT_LENGTH = 1;
const H_TRANSFER_ENCODING = 2;
const H_CONNECTION = 3;

/** Header offsets of the response being parsed, 2 per string (reused: the parser is not re-entered). */
const offs: number[] = [];

type Fail = { kind: 'error'; reason: string };
function fail(reason: string): Fail {
  return { kind: 'error', reason };
}

/** Parse the first response in buf[start, end). See the file comment. */
export function parseResponse(buf: Buffer, start: number, end: number, opts?: ResponseParseOptions): HttpResponseParse {
  return parse(buf, start, end, opts, false);
}

/**
 * The peer closed: finish the response in buf[start, end). A read-until-close body ends here;
 * anything else incomplete (including no bytes at all) is an error naming what was cut short.
 */
export function finishAtEof(buf: Buffer, start: number, end: number, opts?: ResponseParseOptions): HttpResponseParse {
  return parse(buf, start, end, opts, true);
}

function parse(buf: Buffer, start: number, end: number, opts: ResponseParseOptions | undefined, eof: boolean): HttpResponseParse {
  const maxHeaderBytes = opts?.maxHeaderBytes ?? 64 * 1024;
  const maxBody = opts?.maxBody ?? 64 * 1024 * 1024;
  const maxHeaders = opts?.maxHeaders ?? 256;
  const hMax = start + maxHeaderBytes;
  const hLim = end < hMax ? end : hMax;

  // status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF (RFC 9112 §4). The 12 fixed
  // bytes are checked one at a time so junk fails at once.
  let p = start;
  let c = 0;
  for (let k = 0; k < 12; k++, p++) {
    if (p >= hLim) return cut(p, hMax, eof, start === end);
    c = buf[p]!;
    if (k < 5 ? c !== HTTP_SLASH[k] : k === 6 ? c !== 46 : k === 8 ? c !== SP : c < 48 || c > 57) return fail('invalid status line');
  }
  if (buf[start + 5] !== 49) return fail('unsupported HTTP version');
  // A 1.x server with x > 1 speaks 1.1 to us (RFC 9110 §2.5: minor versions are compatible).
  const minor: 0 | 1 = buf[start + 7] === 48 ? 0 : 1;
  const status = (buf[start + 9]! - 48) * 100 + (buf[start + 10]! - 48) * 10 + (buf[start + 11]! - 48);
  if (status < 100) return fail('invalid status code');
  // reason-phrase = *( HTAB / SP / VCHAR / obs-text ); llhttp also accepts a missing SP before CRLF.
  if (p >= hLim) return cut(p, hMax, eof, start === end);
  c = buf[p]!;
  if (c === SP) p++;
  else if (c !== CR) return fail('invalid status line');
  while (p < hLim && (c = buf[p]!) !== CR) {
    if ((c < SP && c !== HT) || c === 127) return fail(c === LF ? 'bare LF' : 'invalid character in reason phrase');
    p++;
  }
  if (p + 1 >= hLim) return cut(p + 1, hMax, eof, start === end);
  if (buf[p + 1] !== LF) return fail('bare CR');
  p += 2;

  let n = 0;
  const headStart = p;
  let contentLength = -1;
  let te = false;
  let chunkedLast = false;
  let conn = 0;
  for (;;) {
    if (p >= hLim) return cut(p, hMax, eof, start === end);
    if (buf[p] === CR) {
      if (p + 1 >= hLim) return cut(p + 1, hMax, eof, start === end);
      if (buf[p + 1] !== LF) return fail('bare CR');
      p += 2;
      break;
    }
    if (n === maxHeaders) return fail('too many header fields');
    const q = scanField(buf, p, hLim);
    if (q === BAD) return fail(scan.reason);
    if (q === NEED_MORE) return cut(hLim, hMax, eof, start === end);
    const ne = scan.nameEnd;
    const vs = scan.valueStart;
    const ve = scan.valueEnd;
    // Offsets now, strings once the head is complete (see parseRequest). Name: a known name's
    // index as -1-id, or its start, or -1000-start when it needs lower-casing.
    const id = knownName(buf, p, ne);
    const o = 4 * n++;
    offs[o] = id >= 0 ? -1 - id : scan.upper ? -1000 - p : p;
    offs[o + 1] = ne;
    offs[o + 2] = vs;
    offs[o + 3] = ve;
    if (id === H_CONTENT_LENGTH) {
      if (vs === ve) return fail('empty Content-Length');
      let v = 0;
      for (let i = vs; i < ve; i++) {
        const d = buf[i]! - 48;
        if (d < 0 || d > 9) return fail('invalid Content-Length');
        v = v * 10 + d;
        if (v > MAX_SAFE) return fail('Content-Length overflow');
      }
      if (contentLength !== -1 && contentLength !== v) return fail('conflicting Content-Length');
      contentLength = v;
    } else if (id === H_TRANSFER_ENCODING) {
      te = true;
      chunkedLast = lastIsChunked(buf, vs, ve);
    } else if (id === H_CONNECTION) {
      conn |= listFlags(buf, vs, ve, false);
    }
    p = q;
  }
  // One latin1 string for the head, then substrings (see parseRequest).
  const head = (buf as FastBuffer).latin1Slice(headStart, p);
  const headers: string[] = new Array(2 * n);
  for (let k = 0; k < 2 * n; k += 2) {
    const o = 2 * k;
    const ns = offs[o]!;
    headers[k] =
      ns >= 0 ? head.substring(ns - headStart, offs[o + 1]! - headStart)
      : ns > -1000 ? KNOWN_NAMES[-1 - ns]!
      : head.substring(-1000 - ns - headStart, offs[o + 1]! - headStart).toLowerCase();
    const vs = offs[o + 2]!;
    const ve = offs[o + 3]!;
    headers[k + 1] = vs === ve ? '' : head.substring(vs - headStart, ve - headStart);
  }

  let keepAlive = (conn & 1) === 0 && (minor === 1 || (conn & 2) !== 0);
  let body = EMPTY_BODY;
  let next = p;
  if (opts?.head === true || status < 200 || status === 204 || status === 304) {
    // no body
  } else if (te && chunkedLast) {
    const q = decodeChunked(buf, p, end, maxBody, maxHeaderBytes, maxHeaders);
    if (q === NEED_MORE) return eof ? fail('connection closed in a chunked body') : INCOMPLETE;
    if (q === BAD) return fail(scan.reason);
    body = scan.body;
    next = q;
  } else if (!te && contentLength >= 0) {
    if (contentLength > maxBody) return fail('body too large');
    next = p + contentLength;
    if (next > end) return eof ? fail('connection closed in the body') : INCOMPLETE;
    body = buf.subarray(p, next);
  } else {
    // Read until close (RFC 9112 §6.3 rules 4 and 8).
    if (end - p > maxBody) return fail('body too large');
    if (!eof) return INCOMPLETE;
    body = buf.subarray(p, end);
    next = end;
    keepAlive = false;
  }
  return { kind: 'response', status, versionMinor: minor, headers, body, keepAlive, next };
}

/** The head stopped at `p` unfinished: over the limit, cut short by EOF, or not all here yet. */
function cut(p: number, hMax: number, eof: boolean, empty: boolean): HttpResponseParse {
  if (p >= hMax) return fail('response header section too large');
  if (eof) return fail(empty ? 'connection closed before a response' : 'connection closed in the response head');
  return INCOMPLETE;
}

/** Whether the last coding in a Transfer-Encoding value is `chunked` (RFC 9112 §6.1). */
function lastIsChunked(buf: Buffer, a: number, b: number): boolean {
  while (b > a && (buf[b - 1] === SP || buf[b - 1] === HT || buf[b - 1] === COMMA)) b--;
  let s = b;
  while (s > a && buf[s - 1] !== COMMA && buf[s - 1] !== SP && buf[s - 1] !== HT) s--;
  return b - s === 7 && eqLower(buf, s, CHUNKED);
}

// ---------------------------------------------------------------------------------------------

/**
 * Encode a request: `<method> <target> HTTP/1.1`, the headers as given (the caller passes Host),
 * `Content-Length` when a body is given and the headers have neither Content-Length nor
 * Transfer-Encoding, a blank line and the body (strings as UTF-8). The load generator encodes each
 * distinct request once, so this favours checking over speed: it throws TypeError on a method that
 * is not a token, a target or header with control bytes, or a header name that is not a token.
 */
export function encodeRequest(method: string, target: string, headers: ReadonlyArray<readonly [string, string]>, body?: Uint8Array | string): Buffer {
  if (!isToken(method)) throw new TypeError(`encodeRequest: invalid method ${JSON.stringify(method)}`);
  if (target.length === 0 || !allBytes(target, 0x21)) throw new TypeError(`encodeRequest: invalid target ${JSON.stringify(target)}`);
  let head = `${method} ${target} HTTP/1.1\r\n`;
  let framed = false;
  for (const [name, value] of headers) {
    if (!isToken(name)) throw new TypeError(`encodeRequest: invalid header name ${JSON.stringify(name)}`);
    if (!allBytes(value, 0x20)) throw new TypeError(`encodeRequest: invalid value for header ${name}`);
    const lower = name.toLowerCase();
    if (lower === 'content-length' || lower === 'transfer-encoding') framed = true;
    head += `${name}: ${value}\r\n`;
  }
  const payload = body === undefined ? undefined : typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  if (payload !== undefined && !framed) head += `Content-Length: ${payload.length}\r\n`;
  head += '\r\n';
  const h = Buffer.from(head, 'latin1');
  return payload === undefined || payload.length === 0 ? h : Buffer.concat([h, payload]);
}

function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 255 || TCHAR[c] === 0) return false;
  }
  return true;
}

/** Every code unit is >= min (0x21: no SP; 0x20: SP allowed), HTAB when min is 0x20, not DEL, <= 0xFF. */
function allBytes(s: string, min: number): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < min && !(c === HT && min === SP)) || c === 127 || c > 255) return false;
  }
  return true;
}
