/**
 * HTTP/1.1 response encoder (server side), sans-I/O: appends a response's bytes to an OutBuf.
 *
 * The encoder owns the framing: it writes Content-Length, Date, Server and Connection, and drops
 * those (and Transfer-Encoding) from an app's headers, so an app cannot produce a response whose
 * length a client would read two ways. It never throws: a response it cannot encode (bad status,
 * a header with CR/LF or a non-token name, which Node rejects with ERR_INVALID_CHAR) becomes a 500,
 * because an engine calls it outside the app's try/catch.
 */
import type { OutBuf } from '../outbuf.js';
import { TCHAR } from './request.js';
import type { HttpResponse, PreparedHead } from './types.js';

/** Reason phrases (RFC 9110 §15 wording: 413 is "Content Too Large", 414 "URI Too Long"). */
const STATUS_TEXT: { readonly [code: number]: string } = {
  100: 'Continue', 101: 'Switching Protocols',
  200: 'OK', 201: 'Created', 202: 'Accepted', 203: 'Non-Authoritative Information', 204: 'No Content',
  205: 'Reset Content', 206: 'Partial Content',
  300: 'Multiple Choices', 301: 'Moved Permanently', 302: 'Found', 303: 'See Other', 304: 'Not Modified',
  307: 'Temporary Redirect', 308: 'Permanent Redirect',
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  406: 'Not Acceptable', 408: 'Request Timeout', 409: 'Conflict', 410: 'Gone', 411: 'Length Required',
  412: 'Precondition Failed', 413: 'Content Too Large', 414: 'URI Too Long', 415: 'Unsupported Media Type',
  416: 'Range Not Satisfiable', 417: 'Expectation Failed', 421: 'Misdirected Request', 422: 'Unprocessable Content',
  426: 'Upgrade Required', 428: 'Precondition Required', 429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error', 501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable',
  504: 'Gateway Timeout', 505: 'HTTP Version Not Supported',
};

export function statusText(code: number): string {
  return STATUS_TEXT[code] ?? 'Unknown';
}

/** `HTTP/1.1 <code> <reason>\r\nServer: iolab\r\n` per status, built on first use. */
const statusLines: Buffer[] = [];
function statusLine(code: number): Buffer {
  return (statusLines[code] ??= Buffer.from(`HTTP/1.1 ${code} ${statusText(code)}\r\nServer: iolab\r\n`, 'latin1'));
}

let dateSec = -1;
let dateLine: Buffer = Buffer.alloc(0);
/** performance.now() time before which `dateLine` is still the current second (see dateAt). */
let dateUntil = -1;
/**
 * `Date: <IMF-fixdate>\r\n` (RFC 9110 §5.6.7), rebuilt when the second changes: a response costs a
 * Date.now() and a 37-byte copy, not a date format.
 */
export function dateHeader(now: number = Date.now()): Buffer {
  const sec = Math.floor(now / 1000);
  if (sec !== dateSec) {
    dateSec = sec;
    dateLine = Buffer.from(`Date: ${new Date(sec * 1000).toUTCString()}\r\n`, 'latin1');
    dateUntil = -1; // built from a wall-clock time of unknown age: the next dateAt() checks the clock
  }
  return dateLine;
}

/**
 * The Date line for a performance.now() reading the caller already has (WriteOptions.now): the wall
 * clock is read only when that reading passes the end of the second the line was built in, about
 * once a second instead of per response (Date.now() is a runtime call, ~1% of a hello-world
 * request's CPU under wrk). The end is computed from the reading, so it is never late; a wall-clock
 * step is seen at the next second.
 */
function dateAt(mono: number): Buffer {
  if (mono < dateUntil) return dateLine;
  const wall = Date.now();
  const line = dateHeader(wall);
  if (mono === mono) dateUntil = mono + 1000 - (wall % 1000);
  return line;
}

const CRLF = Buffer.from('\r\n');
const EMPTY = Buffer.alloc(0);
const COLON_SP = Buffer.from(': ');
const CONTENT_LENGTH = Buffer.from('Content-Length: ');
const CONNECTION_CLOSE = Buffer.from('Connection: close\r\n');
const CONNECTION_KEEP_ALIVE = Buffer.from('Connection: keep-alive\r\n');

/** 1xx, 204 and 304 never have a body, nor (we choose) a Content-Length (RFC 9110 §8.6, §15.3.5). */
function bodyless(status: number): boolean {
  return status < 200 || status === 204 || status === 304;
}

/** Headers the encoder owns (see the file comment). */
function isFraming(name: string): boolean {
  switch (name.length) {
    case 4: return eqIgnoreCase(name, 'date');
    case 10: return eqIgnoreCase(name, 'connection');
    case 14: return eqIgnoreCase(name, 'content-length');
    case 17: return eqIgnoreCase(name, 'transfer-encoding');
  }
  return false;
}

function eqIgnoreCase(s: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) if ((s.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

/** Why `res` cannot be encoded, or null. Header values: HTAB, SP, VCHAR, obs-text (RFC 9110 §5.5). */
function problem(res: HttpResponse): string | null {
  const s = res.status;
  if (!Number.isInteger(s) || s < 100 || s > 999) return 'invalid status';
  const b = res.body;
  if (b !== undefined && typeof b !== 'string' && !(b instanceof Uint8Array)) return 'invalid body';
  const hs = res.headers;
  if (hs === undefined) return null;
  for (let k = 0; k < hs.length; k++) {
    const [name, value] = hs[k]!;
    if (typeof name !== 'string' || name.length === 0) return 'invalid header name';
    for (let i = 0; i < name.length; i++) {
      const c = name.charCodeAt(i);
      if (c > 255 || TCHAR[c] === 0) return 'invalid header name';
    }
    if (typeof value !== 'string') return 'invalid header value';
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if ((c < 32 && c !== 9) || c === 127 || c > 255) return 'invalid header value';
    }
  }
  return null;
}

/** Append n >= 0 in decimal, without the string String(n) would allocate. */
function decimal(out: OutBuf, n: number): void {
  let digits = 1;
  for (let t = n; t >= 10; t = Math.floor(t / 10)) digits++;
  out.ensure(digits);
  let i = out.len + digits;
  out.len = i;
  do {
    out.buf[--i] = 48 + (n % 10);
    n = Math.floor(n / 10);
  } while (n > 0);
}

function writeConnection(out: OutBuf, keepAlive: boolean, versionMinor: 0 | 1): void {
  // RFC 9112 §9.3: a 1.1 client assumes persistence, a 1.0 client assumes close unless told.
  if (!keepAlive) put(out, CONNECTION_CLOSE);
  else if (versionMinor === 0) put(out, CONNECTION_KEEP_ALIVE);
}

export interface WriteOptions {
  /** Keep the connection open after this response (else `Connection: close`). */
  keepAlive: boolean;
  /** Answering HEAD: headers (with the Content-Length a GET would get) but no body (RFC 9110 §9.3.2). */
  head: boolean;
  /** The request's version: 1.0 keep-alive needs an explicit `Connection: keep-alive`. */
  versionMinor: 0 | 1;
  /**
   * A performance.now() reading taken just now (the Service's loop clock), to date the response from
   * without reading the wall clock (dateAt). NaN or absent: Date.now().
   */
  now?: number;
}

/**
 * Append `res` as `HTTP/1.1 <status> <reason>`, Server, Content-Length (not for 1xx/204/304), the
 * app's headers, Date, Connection when needed, a blank line and the body (not for HEAD). Always
 * HTTP/1.1: RFC 9110 §6.2 has a server send its own version, also to a 1.0 client.
 */
export function writeResponse(out: OutBuf, res: HttpResponse, opts: WriteOptions): void {
  const pre = res.prepared;
  if (pre !== undefined && pre.status === res.status && pre.body === res.body && pre.headers === res.headers) {
    const date = opts.now === undefined ? dateHeader() : dateAt(opts.now);
    if (opts.keepAlive && opts.versionMinor === 1 && !opts.head) {
      // The usual answer (1.1 keep-alive, not HEAD) as one copy, rebuilt when the Date line changes.
      const w = pre.whole;
      if (w.date !== date) {
        w.bytes = Buffer.concat([pre.head, date, pre.tail]);
        w.date = date;
      }
      out.bytes(w.bytes);
      return;
    }
    put(out, pre.head);
    put(out, date);
    writeConnection(out, opts.keepAlive, opts.versionMinor);
    if (opts.head) put(out, CRLF);
    else put(out, pre.tail);
    return;
  }
  const why = problem(res);
  if (why !== null) res = { status: 500, headers: TEXT_PLAIN, body: `Internal Server Error: ${why}\n` };

  const status = res.status;
  const body = res.body;
  const nobody = bodyless(status);
  // Same order as a prepared response (head, Date, Connection, tail), so both paths emit equal bytes.
  put(out, statusLine(status));
  let len = 0;
  if (!nobody) {
    len = res.file !== undefined ? res.file.length : body === undefined ? 0 : typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body.length;
    put(out, CONTENT_LENGTH);
    decimal(out, len);
    put(out, CRLF);
  }
  const hs = res.headers;
  if (hs !== undefined) {
    for (let k = 0; k < hs.length; k++) {
      const h = hs[k]!;
      if (isFraming(h[0])) continue;
      latin1(out, h[0]);
      put(out, COLON_SP);
      latin1(out, h[1]);
      put(out, CRLF);
    }
  }
  put(out, opts.now === undefined ? dateHeader() : dateAt(opts.now));
  writeConnection(out, opts.keepAlive, opts.versionMinor);
  put(out, CRLF);
  // A file body is the engine's to send, after these head bytes (Service: FeedResult.file).
  if (nobody || opts.head || len === 0 || body === undefined || res.file !== undefined) return;
  if (typeof body === 'string') {
    out.ensure(len);
    out.len += out.buf.write(body, out.len, len, 'utf8');
  } else out.bytes(body);
}

/**
 * Appends of up to 16 bytes by hand: below that a JS loop beats the native TypedArray.set /
 * latin1Write call (unprepared hello-world writeResponse ~450 -> ~300 ns, Node 20, this VM).
 */
function put(out: OutBuf, b: Uint8Array): void {
  const n = b.length;
  if (n > 16) return out.bytes(b);
  out.ensure(n);
  const dst = out.buf;
  let o = out.len;
  for (let i = 0; i < n; i++) dst[o++] = b[i]!;
  out.len = o;
}

/** Append a string already checked to be latin1 (problem() rejects code units > 255). */
function latin1(out: OutBuf, s: string): void {
  const n = s.length;
  if (n > 16) return out.ascii(s);
  out.ensure(n);
  const dst = out.buf;
  let o = out.len;
  for (let i = 0; i < n; i++) dst[o++] = s.charCodeAt(i);
  out.len = o;
}

const TEXT_PLAIN: ReadonlyArray<readonly [string, string]> = Object.freeze([Object.freeze(['Content-Type', 'text/plain; charset=utf-8'] as const)]);

/**
 * Pre-encode a constant response (a hello-world reply, an error page) once, at startup. The result
 * is a frozen HttpResponse that writeResponse() sends with four copies (head, Date, Connection, tail),
 * or one for an HTTP/1.1 keep-alive request (the whole response, rebuilt once a second for the Date).
 * Throws TypeError if `res` cannot be encoded (a startup bug, better loud than a 500 per request).
 */
export function prepareResponse(res: HttpResponse): HttpResponse {
  const why = problem(res);
  if (why !== null) throw new TypeError(`prepareResponse: ${why}`);
  const { status, headers, body } = res;
  const parts: Buffer[] = [statusLine(status)];
  const bytes = body === undefined ? Buffer.alloc(0) : typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body);
  if (!bodyless(status)) parts.push(Buffer.from(`Content-Length: ${bytes.length}\r\n`, 'latin1'));
  for (const [name, value] of headers ?? []) if (!isFraming(name)) parts.push(Buffer.from(`${name}: ${value}\r\n`, 'latin1'));
  const prepared: PreparedHead = Object.freeze({
    status,
    headers,
    body,
    head: Buffer.concat(parts),
    tail: bodyless(status) ? CRLF : Buffer.concat([CRLF, bytes]),
    whole: { date: null, bytes: EMPTY },
  });
  return Object.freeze({ status, headers, body, prepared });
}

const errorResponses = new Map<number, HttpResponse>();

/**
 * Append a small text/plain error response, e.g. `431 Request Header Fields Too Large`, with
 * `Connection: close` unless `keepAlive` (nginx and Node close after a request they could not parse:
 * the rest of the stream cannot be trusted to start at a request boundary).
 */
export function writeError(out: OutBuf, status: number, opts?: { keepAlive?: boolean }): void {
  if (!Number.isInteger(status) || status < 100 || status > 999 || bodyless(status)) status = 500;
  let res = errorResponses.get(status);
  if (res === undefined) {
    res = prepareResponse({ status, headers: TEXT_PLAIN, body: `${status} ${statusText(status)}\n` });
    errorResponses.set(status, res);
  }
  writeResponse(out, res, { keepAlive: opts?.keepAlive ?? false, head: false, versionMinor: 1 });
}
