/**
 * parseRequest: golden cases as a table (raw bytes -> request or error status), in the spirit of
 * llhttp's markdown tests, then properties: chunk boundaries are invisible, junk never throws.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseRequest, INCOMPLETE } from '../../src/protocols/http/request.js';
import { DEFAULT_HTTP_LIMITS, type HttpLimits, type HttpRequestParse } from '../../src/protocols/http/types.js';

interface Want {
  method: string;
  target: string;
  /** Default 1. */
  v?: 0 | 1;
  /** Flat name/value list; checked only when given. */
  headers?: string[];
  /** latin1; default ''. */
  body?: string;
  /** Default: true for 1.1, false for 1.0. */
  keepAlive?: boolean;
  /** Bytes consumed; default the whole input. */
  next?: number;
}
type Expect = Want | number | 'incomplete';
interface Row {
  name: string;
  raw: string;
  expect: Expect;
  limits?: Partial<HttpLimits>;
}

const K = 1024;
const big = (n: number): string => 'x'.repeat(n);

// prettier-ignore
const ROWS: Row[] = [
  // --- request line -----------------------------------------------------------------------------
  { name: 'minimal GET', raw: 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', expect: { method: 'GET', target: '/', headers: ['host', 'a'] } },
  { name: 'HEAD is just a method', raw: 'HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n', expect: { method: 'HEAD', target: '/x' } },
  { name: 'unknown but valid method token', raw: 'PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n', expect: { method: 'PURGE', target: '/x' } },
  { name: 'methods are case-sensitive tokens', raw: 'get / HTTP/1.1\r\nHost: a\r\n\r\n', expect: { method: 'get', target: '/' } },
  { name: 'query string kept as sent', raw: 'GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: a\r\n\r\n', expect: { method: 'GET', target: '/a/b?x=1&y=%20' } },
  { name: 'absolute-form target', raw: 'GET http://a.example/p HTTP/1.1\r\nHost: a.example\r\n\r\n', expect: { method: 'GET', target: 'http://a.example/p' } },
  { name: 'asterisk-form target', raw: 'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n', expect: { method: 'OPTIONS', target: '*' } },
  { name: 'raw UTF-8 in target kept as latin1', raw: 'GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n', expect: { method: 'GET', target: '/\xc3\xa9' } },
  { name: 'empty lines before the request line are skipped (RFC 9112 2.2)', raw: '\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n', expect: { method: 'GET', target: '/' } },
  { name: 'invalid token character in method -> 400', raw: 'G(T / HTTP/1.1\r\nHost: a\r\n\r\n', expect: 400 },
  { name: 'empty method -> 400', raw: ' / HTTP/1.1\r\nHost: a\r\n\r\n', expect: 400 },
  { name: 'TLS handshake bytes -> 400 at once', raw: '\x16\x03\x01\x02\x00\x01\x00\x01', expect: 400 },
  { name: 'double space before target -> 400', raw: 'GET  / HTTP/1.1\r\nHost: a\r\n\r\n', expect: 400 },
  { name: 'double space before version -> 400', raw: 'GET /  HTTP/1.1\r\nHost: a\r\n\r\n', expect: 400 },
  { name: 'control byte in target -> 400', raw: 'GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n', expect: 400 },
  { name: 'DEL in target -> 400', raw: 'GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n', expect: 400 },
  { name: 'missing version (HTTP/0.9 style) -> 400', raw: 'GET /\r\n\r\n', expect: 400 },
  { name: 'lower-case http version -> 400', raw: 'GET / http/1.1\r\nHost: a\r\n\r\n', expect: 400 },
  { name: 'version with two digits -> 400', raw: 'GET / HTTP/1.10\r\nHost: a\r\n\r\n', expect: 400 },
  { name: 'version without minor -> 400', raw: 'GET / HTTP/1\r\nHost: a\r\n\r\n', expect: 400 },
  { name: 'trailing space after version -> 400', raw: 'GET / HTTP/1.1 \r\nHost: a\r\n\r\n', expect: 400 },
  { name: 'HTTP/2.0 -> 505', raw: 'GET / HTTP/2.0\r\nHost: a\r\n\r\n', expect: 505 },
  { name: 'HTTP/1.2 -> 505', raw: 'GET / HTTP/1.2\r\nHost: a\r\n\r\n', expect: 505 },
  { name: 'HTTP/0.9 with version -> 505', raw: 'GET / HTTP/0.9\r\n\r\n', expect: 505 },
  { name: 'HTTP/2 preface -> 505', raw: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', expect: 505 },
  { name: 'bare LF ending the request line -> 400', raw: 'GET / HTTP/1.1\nHost: a\r\n\r\n', expect: 400 },
  { name: 'bare CR ending the request line -> 400', raw: 'GET / HTTP/1.1\rHost: a\r\n\r\n', expect: 400 },
  { name: 'bare LF before the request line -> 400', raw: '\nGET / HTTP/1.1\r\nHost: a\r\n\r\n', expect: 400 },
  { name: 'request line too long -> 414', raw: `GET /${big(8 * K)} HTTP/1.1\r\nHost: a\r\n\r\n`, expect: 414 },
  { name: 'request line too long, no CRLF yet -> 414 early', raw: `GET /${big(8 * K)}`, expect: 414 },
  { name: 'request line exactly at the limit is fine', raw: `GET /${big(50)} HTTP/1.1\r\nHost: a\r\n\r\n`, limits: { maxRequestLine: 64 }, expect: { method: 'GET', target: `/${big(50)}` } },
  { name: 'request line one over the limit -> 414', raw: `GET /${big(51)} HTTP/1.1\r\nHost: a\r\n\r\n`, limits: { maxRequestLine: 64 }, expect: 414 },

  // --- header fields ---------------------------------------------------------------------------
  { name: 'names lower-cased, values trimmed of OWS', raw: 'GET / HTTP/1.1\r\nHOST:   a.example  \r\nX-Thing:\tv 1\t\r\n\r\n', expect: { method: 'GET', target: '/', headers: ['host', 'a.example', 'x-thing', 'v 1'] } },
  { name: 'inner whitespace of a value kept', raw: 'GET / HTTP/1.1\r\nHost: a\r\nX-A: a  b\t c\r\n\r\n', expect: { method: 'GET', target: '/', headers: ['host', 'a', 'x-a', 'a  b\t c'] } },
  { name: 'empty value', raw: 'GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Blank:   \r\n\r\n', expect: { method: 'GET', target: '/', headers: ['host', 'a', 'x-empty', '', 'x-blank', ''] } },
  { name: 'no space after colon', raw: 'GET / HTTP/1.1\r\nhost:a\r\n\r\n', expect: { method: 'GET', target: '/', headers: ['host', 'a'] } },
  { name: 'repeated fields kept in order', raw: 'GET / HTTP/1.1\r\nHost: a\r\nAccept: x\r\naccept: y\r\n\r\n', expect: { method: 'GET', target: '/', headers: ['host', 'a', 'accept', 'x', 'accept', 'y'] } },
  { name: 'obs-text in a value (latin1)', raw: 'GET / HTTP/1.1\r\nHost: a\r\nX-A: caf\xe9\r\n\r\n', expect: { method: 'GET', target: '/', headers: ['host', 'a', 'x-a', 'caf\xe9'] } },
  { name: 'colon inside a value', raw: 'GET / HTTP/1.1\r\nHost: a:8080\r\n\r\n', expect: { method: 'GET', target: '/', headers: ['host', 'a:8080'] } },
  { name: 'whitespace before the colon in a header name -> 400', raw: 'GET / HTTP/1.1\r\nHost : a\r\n\r\n', expect: 400 },
  { name: 'tab before the colon -> 400', raw: 'GET / HTTP/1.1\r\nHost\t: a\r\n\r\n', expect: 400 },
  { name: 'obs-fold continuation line -> 400', raw: 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n', expect: 400 },
  { name: 'invalid token character in header name -> 400', raw: 'GET / HTTP/1.1\r\nHo{st: a\r\n\r\n', expect: 400 },
  { name: 'empty header name -> 400', raw: 'GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n', expect: 400 },
  { name: 'header line without colon -> 400', raw: 'GET / HTTP/1.1\r\nHost: a\r\nnocolon\r\n\r\n', expect: 400 },
  { name: 'control character in header value -> 400', raw: 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01c\r\n\r\n', expect: 400 },
  { name: 'NUL in header value -> 400', raw: 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n', expect: 400 },
  { name: 'DEL in header value -> 400', raw: 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7fc\r\n\r\n', expect: 400 },
  { name: 'bare LF ending a header line -> 400', raw: 'GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n', expect: 400 },
  { name: 'bare LF ending the header section -> 400', raw: 'GET / HTTP/1.1\r\nHost: a\r\n\n', expect: 400 },
  { name: 'bare CR inside a header value -> 400', raw: 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n', expect: 400 },
  { name: 'HTTP/1.1 without Host -> 400', raw: 'GET / HTTP/1.1\r\nAccept: */*\r\n\r\n', expect: 400 },
  { name: 'HTTP/1.1 with two Host fields -> 400', raw: 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', expect: 400 },
  { name: 'empty Host is allowed (RFC 9112 3.2)', raw: 'GET / HTTP/1.1\r\nHost:\r\n\r\n', expect: { method: 'GET', target: '/', headers: ['host', ''] } },
  { name: 'headers over the limit (16 KB) -> 431', raw: `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${big(16 * K)}\r\n\r\n`, expect: 431 },
  { name: 'headers over the limit with no CRLFCRLF yet -> 431 early', raw: `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${big(16 * K)}`, expect: 431 },
  { name: 'many small headers over the limit -> 431', raw: `GET / HTTP/1.1\r\nHost: a\r\n${'X-A: b\r\n'.repeat(2100)}`, limits: { maxHeaders: 10000 }, expect: 431 },
  { name: 'empty lines before the request line count toward the limit -> 431', raw: '\r\n'.repeat(8 * K + 1), expect: 431 },
  { name: 'too many header fields -> 431', raw: `GET / HTTP/1.1\r\nHost: a\r\n${'X-A: b\r\n'.repeat(100)}\r\n`, expect: 431 },
  { name: 'exactly maxHeaders fields is fine', raw: `GET / HTTP/1.1\r\nHost: a\r\n${'X-A: b\r\n'.repeat(99)}\r\n`, expect: { method: 'GET', target: '/' } },
  { name: 'header section exactly at maxHeaderBytes is fine', raw: 'GET / HTTP/1.1\r\nHost: abcdefg\r\n\r\n', limits: { maxHeaderBytes: 33 }, expect: { method: 'GET', target: '/' } },
  { name: 'header section one over maxHeaderBytes -> 431', raw: 'GET / HTTP/1.1\r\nHost: abcdefgh\r\n\r\n', limits: { maxHeaderBytes: 33 }, expect: 431 },

  // --- keep-alive (RFC 9112 9.3) ---------------------------------------------------------------
  { name: '1.1 defaults to keep-alive', raw: 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', expect: { method: 'GET', target: '/', keepAlive: true } },
  { name: '1.1 Connection: close', raw: 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', expect: { method: 'GET', target: '/', keepAlive: false } },
  { name: '1.1 Connection is a case-insensitive list', raw: 'GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n', expect: { method: 'GET', target: '/', keepAlive: false } },
  { name: '1.1 close in a second Connection field', raw: 'GET / HTTP/1.1\r\nHost: a\r\nConnection: te\r\nconnection: close\r\n\r\n', expect: { method: 'GET', target: '/', keepAlive: false } },
  { name: '1.1 "closed" is not close', raw: 'GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n', expect: { method: 'GET', target: '/', keepAlive: true } },
  { name: 'HTTP/1.0 defaults to close, no Host needed', raw: 'GET / HTTP/1.0\r\n\r\n', expect: { method: 'GET', target: '/', v: 0, keepAlive: false } },
  { name: 'HTTP/1.0 Connection: keep-alive', raw: 'GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n', expect: { method: 'GET', target: '/', v: 0, keepAlive: true } },
  { name: 'HTTP/1.0 keep-alive, close wins', raw: 'GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n', expect: { method: 'GET', target: '/', v: 0, keepAlive: false } },
  { name: 'HTTP/1.0 POST with Content-Length', raw: 'POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi', expect: { method: 'POST', target: '/', v: 0, body: 'hi', keepAlive: false } },

  // --- Content-Length ------------------------------------------------------------------------------
  { name: 'Content-Length body', raw: 'POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello', expect: { method: 'POST', target: '/e', body: 'hello' } },
  { name: 'Content-Length: 0', raw: 'POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n', expect: { method: 'POST', target: '/e', body: '' } },
  { name: 'Content-Length with leading zeros', raw: 'POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 003\r\n\r\nabc', expect: { method: 'POST', target: '/e', body: 'abc' } },
  { name: 'Content-Length with OWS', raw: 'POST /e HTTP/1.1\r\nHost: a\r\nContent-Length:  3 \r\n\r\nabc', expect: { method: 'POST', target: '/e', body: 'abc' } },
  { name: 'GET with a body is allowed', raw: 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx', expect: { method: 'GET', target: '/', body: 'x' } },
  { name: 'body not here yet -> incomplete', raw: 'POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel', expect: 'incomplete' },
  { name: 'bytes after the body are the next request', raw: 'POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiGET', expect: { method: 'POST', target: '/e', body: 'hi', next: 50 } },
  { name: 'Content-Length together with Transfer-Encoding -> 400', raw: 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', expect: 400 },
  { name: 'Transfer-Encoding then Content-Length -> 400', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n', expect: 400 },
  { name: 'duplicate Content-Length, equal values -> 400 (llhttp)', raw: 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi', expect: 400 },
  { name: 'duplicate Content-Length, different values -> 400', raw: 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi', expect: 400 },
  { name: 'Content-Length as a list `2, 2` -> 400', raw: 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2, 2\r\n\r\nhi', expect: 400 },
  { name: 'malformed Content-Length `4 2` -> 400', raw: 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4 2\r\n\r\nhi', expect: 400 },
  { name: 'malformed Content-Length empty -> 400', raw: 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\nhi', expect: 400 },
  { name: 'malformed Content-Length `+5` -> 400', raw: 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello', expect: 400 },
  { name: 'malformed Content-Length `0x10` -> 400', raw: 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n', expect: 400 },
  { name: 'malformed Content-Length `-1` -> 400', raw: 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n', expect: 400 },
  { name: 'malformed Content-Length `1e3` -> 400', raw: 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1e3\r\n\r\n', expect: 400 },
  { name: 'Content-Length overflow beyond 2^53 -> 400', raw: 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9007199254740993\r\n\r\n', expect: 400 },
  { name: 'Content-Length overflow beyond 2^64 -> 400', raw: 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n', expect: 400 },
  { name: 'body over the limit (Content-Length) -> 413 before the body arrives', raw: 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048577\r\n\r\n', expect: 413 },
  { name: 'Content-Length exactly maxBody is fine', raw: 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcd', limits: { maxBody: 4 }, expect: { method: 'POST', target: '/', body: 'abcd' } },
  { name: 'Content-Length 2^53-1 is well-formed -> 413', raw: 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9007199254740991\r\n\r\n', expect: 413 },

  // --- Transfer-Encoding and chunked bodies (RFC 9112 6.1, 7.1) ----------------------------------
  { name: 'chunked body', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n', expect: { method: 'POST', target: '/', body: 'hello world' } },
  { name: 'chunked, only the last chunk', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', expect: { method: 'POST', target: '/', body: '' } },
  { name: 'chunked, upper- and lower-case hex sizes, leading zeros', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0b\r\nabcdefghijk\r\n000\r\n\r\n', expect: { method: 'POST', target: '/', body: '0123456789abcdefghijk' } },
  { name: 'chunk extensions allowed and ignored', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value;flag\r\nhello\r\n0;last="yes"\r\n\r\n', expect: { method: 'POST', target: '/', body: 'hello' } },
  { name: 'BWS before a chunk extension', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 ;x\r\nhello\r\n0\r\n\r\n', expect: { method: 'POST', target: '/', body: 'hello' } },
  { name: 'trailers allowed and ignored', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n', expect: { method: 'POST', target: '/', body: 'hello', headers: ['host', 'a', 'transfer-encoding', 'chunked'] } },
  { name: 'Transfer-Encoding is case-insensitive', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n', expect: { method: 'POST', target: '/', body: '' } },
  { name: 'chunked body not complete -> incomplete', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n', expect: 'incomplete' },
  { name: 'unknown Transfer-Encoding `gzip` -> 501', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n', expect: 501 },
  { name: 'chunked not last: `chunked, gzip` -> 501', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', expect: 501 },
  { name: 'any other coding, `gzip, chunked` -> 501', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', expect: 501 },
  { name: 'other coding in a second field -> 501', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n', expect: 501 },
  { name: 'chunked twice -> 400', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n', expect: 400 },
  { name: 'empty Transfer-Encoding -> 400', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n', expect: 400 },
  { name: 'Transfer-Encoding in HTTP/1.0 -> 400', raw: 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', expect: 400 },
  { name: 'bad chunk size: non-hex -> 400', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n', expect: 400 },
  { name: 'bad chunk size: empty -> 400', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n', expect: 400 },
  { name: 'bad chunk size: 0x prefix -> 400', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n', expect: 400 },
  { name: 'bad chunk size: negative -> 400', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n', expect: 400 },
  { name: 'bad chunk size: overflow -> 400', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n', expect: 400 },
  { name: 'bad chunk size: whitespace without extension -> 400', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n', expect: 400 },
  { name: 'bad chunk line: missing CRLF after data -> 400', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n', expect: 400 },
  { name: 'bad chunk line: data longer than its size -> 400', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n', expect: 400 },
  { name: 'bad chunk line: bare LF after size -> 400', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n', expect: 400 },
  { name: 'bad chunk line: bare LF after data -> 400', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n', expect: 400 },
  { name: 'bad chunk line: control byte in extension -> 400', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a\x00\r\nhello\r\n0\r\n\r\n', expect: 400 },
  { name: 'bad trailer field -> 400', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-A : b\r\n\r\n', expect: 400 },
  { name: 'body over the limit (chunked) -> 413 on the chunk size', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n100001\r\n', expect: 413 },
  { name: 'body over the limit (chunked) -> 413 once the total passes', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n', limits: { maxBody: 4 }, expect: 413 },
  { name: 'chunked body exactly maxBody is fine', raw: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n', limits: { maxBody: 4 }, expect: { method: 'POST', target: '/', body: 'abcd' } },
  { name: 'chunk extensions too large -> 413 (Node: HPE_CHUNK_EXTENSIONS_OVERFLOW)', raw: `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;${big(16 * K)}`, expect: 413 },
  { name: 'trailers too large -> 431', raw: `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-A: ${big(16 * K)}`, expect: 431 },
  { name: 'chunked wire form too large for the body -> 413', raw: `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${'0000000001\r\nx\r\n'.repeat(7)}`, limits: { maxBody: 16, maxHeaderBytes: 64 }, expect: 413 },

  // --- incomplete input ------------------------------------------------------------------------
  { name: 'empty input -> incomplete', raw: '', expect: 'incomplete' },
  { name: 'partial method -> incomplete', raw: 'GE', expect: 'incomplete' },
  { name: 'partial version -> incomplete', raw: 'GET / HTT', expect: 'incomplete' },
  { name: 'request line without its LF -> incomplete', raw: 'GET / HTTP/1.1\r', expect: 'incomplete' },
  { name: 'headers without the blank line -> incomplete', raw: 'GET / HTTP/1.1\r\nHost: a\r\n', expect: 'incomplete' },
  { name: 'a lone CRLF -> incomplete', raw: '\r\n', expect: 'incomplete' },
];

function limitsOf(row: { limits?: Partial<HttpLimits> }): HttpLimits {
  return { ...DEFAULT_HTTP_LIMITS, ...row.limits };
}

function check(r: HttpRequestParse, expect: Expect, rawLength: number): void {
  if (expect === 'incomplete') {
    assert.equal(r, INCOMPLETE);
    return;
  }
  if (typeof expect === 'number') {
    assert.equal(r.kind, 'error', `expected ${expect}, got ${JSON.stringify(r)}`);
    if (r.kind !== 'error') return;
    assert.equal(r.status, expect, r.reason);
    assert.ok(r.reason.length > 0);
    return;
  }
  assert.equal(r.kind, 'request', JSON.stringify(r));
  if (r.kind !== 'request') return;
  const q = r.request;
  assert.equal(q.method, expect.method);
  assert.equal(q.target, expect.target);
  const v = expect.v ?? 1;
  assert.equal(q.versionMinor, v);
  if (expect.headers) assert.deepEqual(q.headers, expect.headers);
  assert.equal(q.body.toString('latin1'), expect.body ?? '');
  assert.equal(q.keepAlive, expect.keepAlive ?? v === 1);
  assert.equal(r.next, expect.next ?? rawLength);
}

describe('parseRequest golden table', () => {
  for (const row of ROWS) {
    test(row.name, () => {
      const buf = Buffer.from(row.raw, 'latin1');
      const limits = limitsOf(row);
      const whole = parseRequest(buf, 0, buf.length, limits);
      check(whole, row.expect, buf.length);
      // Offsets are absolute: the same bytes in the middle of a bigger buffer, with junk around
      // them that the parser must not read, give the same answer.
      const framed = Buffer.concat([Buffer.from('\x00junk\r\n'), buf, Buffer.from('\r\n\r\nX')]);
      const r = parseRequest(framed, 7, 7 + buf.length, limits);
      if (r.kind === 'request' && whole.kind === 'request') {
        assert.deepEqual(r.request, whole.request);
        assert.equal(r.next, whole.next + 7);
      } else assert.deepEqual(r, whole);
      // Every prefix is either incomplete or already the same answer (errors fire early).
      for (let n = 0; n < buf.length; n += Math.max(1, buf.length >> 7)) {
        const p = parseRequest(buf, 0, n, limits);
        if (p.kind !== 'incomplete') assert.deepEqual(p, whole, `prefix of ${n} bytes`);
      }
    });
  }
});

describe('parseRequest pipelining', () => {
  const parseAll = (raw: string): HttpRequestParse[] => {
    const buf = Buffer.from(raw, 'latin1');
    const out: HttpRequestParse[] = [];
    let pos = 0;
    for (;;) {
      const r = parseRequest(buf, pos, buf.length);
      out.push(r);
      if (r.kind !== 'request') return out;
      pos = r.next;
    }
  };

  test('two requests in one buffer, in order via next', () => {
    const rs = parseAll('GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.deepEqual(rs.map((r) => (r.kind === 'request' ? r.request.target : r.kind)), ['/1', '/2', 'incomplete']);
    assert.equal(rs[0]!.kind === 'request' && rs[0]!.next, 28);
  });

  test('three requests: GET, POST with a chunked body, HEAD with close', () => {
    const rs = parseAll(
      'GET /a HTTP/1.1\r\nHost: h\r\n\r\n' +
        'POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n' +
        'HEAD /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n',
    );
    const got = rs.map((r) => (r.kind === 'request' ? [r.request.method, r.request.target, r.request.body.toString(), r.request.keepAlive] : r.kind));
    assert.deepEqual(got, [['GET', '/a', '', true], ['POST', '/b', 'abc', true], ['HEAD', '/c', '', false], 'incomplete']);
  });

  test('a request, then a partial one', () => {
    const rs = parseAll('GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc');
    assert.deepEqual(rs.map((r) => r.kind), ['request', 'incomplete']);
  });

  test('a good request, then a bad one: the first is still returned', () => {
    const rs = parseAll('GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost : a\r\n\r\n');
    assert.deepEqual(rs.map((r) => (r.kind === 'error' ? r.status : r.kind)), ['request', 400]);
  });

  test('the request does not alias the input buffer', () => {
    const buf = Buffer.from('POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello', 'latin1');
    const r = parseRequest(buf, 0, buf.length);
    buf.fill(0);
    assert.ok(r.kind === 'request');
    assert.equal(r.request.body.toString(), 'hello');
    assert.equal(r.request.target, '/e');
  });

  test('incomplete is a shared frozen singleton', () => {
    const a = parseRequest(Buffer.from('GET'), 0, 3);
    const b = parseRequest(Buffer.from('POST / HT'), 0, 9);
    assert.equal(a, b);
    assert.ok(Object.isFrozen(a));
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

interface Gen {
  raw: string;
  method: string;
  target: string;
  v: 0 | 1;
  headers: string[];
  body: string;
  keepAlive: boolean;
}

const tokenArb = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,10}$/);
const valueArb = fc.oneof(fc.constant(''), fc.stringMatching(/^[\x21-\x7e\x80-\xff]([\x20-\x7e\x80-\xff\t]{0,16}[\x21-\x7e\x80-\xff])?$/));
const owsArb = fc.constantFrom('', ' ', '\t', '  ');
const SPECIAL = new Set(['host', 'content-length', 'transfer-encoding', 'connection']);

/** A valid request with what parseRequest must return for it. */
const requestArb: fc.Arbitrary<Gen> = fc
  .record({
    method: fc.oneof(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH'), tokenArb),
    target: fc.stringMatching(/^\/[\x21-\x7e]{0,24}$/),
    v: fc.constantFrom<0 | 1>(0, 1, 1),
    host: fc.boolean(),
    fields: fc.array(fc.record({ name: fc.mixedCase(tokenArb), value: valueArb, pre: owsArb, post: owsArb }), { maxLength: 6 }),
    conn: fc.constantFrom('', 'close', 'keep-alive', 'Keep-Alive, Upgrade'),
    body: fc.string({ unit: 'binary-ascii', maxLength: 40 }),
    framing: fc.constantFrom('length', 'chunked', 'none'),
    cuts: fc.array(fc.nat(40), { maxLength: 4 }),
    ext: fc.boolean(),
    leadingCRLF: fc.boolean(),
  })
  .map((g) => {
    const fields = g.fields.filter((f) => !SPECIAL.has(f.name.toLowerCase()));
    const headers: string[] = [];
    let raw = `${g.leadingCRLF ? '\r\n' : ''}${g.method} ${g.target} HTTP/1.${g.v}\r\n`;
    if (g.host || g.v === 1) {
      raw += 'Host: example.test\r\n';
      headers.push('host', 'example.test');
    }
    for (const f of fields) {
      raw += `${f.name}:${f.pre}${f.value}${f.value === '' ? '' : f.post}\r\n`;
      headers.push(f.name.toLowerCase(), f.value);
    }
    if (g.conn !== '') {
      raw += `Connection: ${g.conn}\r\n`;
      headers.push('connection', g.conn);
    }
    const framing = g.framing === 'chunked' && g.v === 0 ? 'length' : g.framing === 'none' && g.body !== '' ? 'length' : g.framing;
    let tail = '';
    if (framing === 'length') {
      raw += `Content-Length: ${g.body.length}\r\n`;
      headers.push('content-length', String(g.body.length));
      tail = g.body;
    } else if (framing === 'chunked') {
      raw += 'Transfer-Encoding: chunked\r\n';
      headers.push('transfer-encoding', 'chunked');
      const cuts = [...new Set(g.cuts.map((c) => c % (g.body.length + 1)))].sort((a, b) => a - b);
      let at = 0;
      for (const c of [...cuts, g.body.length]) {
        if (c === at) continue;
        tail += `${(c - at).toString(16)}${g.ext ? ';x=1' : ''}\r\n${g.body.slice(at, c)}\r\n`;
        at = c;
      }
      tail += `0\r\n${g.ext ? 'X-Trailer: t\r\n' : ''}\r\n`;
    }
    raw += `\r\n${tail}`;
    const conn = g.conn.toLowerCase();
    const keepAlive = !conn.includes('close') && (g.v === 1 || conn.includes('keep-alive'));
    return { raw, method: g.method, target: g.target, v: g.v, headers, body: framing === 'none' ? '' : g.body, keepAlive };
  });

type Outcome = { kind: 'request'; method: string; target: string; v: number; headers: string[]; body: string; keepAlive: boolean; used: number } | { kind: 'error'; status: number } | { kind: 'incomplete'; left: number };

/**
 * Feed `chunks` to parseRequest as an engine does: keep the unconsumed remainder, append the next
 * chunk, parse until incomplete. Stops at the first error (the engine closes).
 */
function runEngine(chunks: Buffer[], limits: HttpLimits = DEFAULT_HTTP_LIMITS): Outcome[] {
  const out: Outcome[] = [];
  let pending = Buffer.alloc(0);
  for (const chunk of chunks) {
    // Junk past `end` that the parser must ignore: a buffer with spare capacity, as engines have.
    const buf = Buffer.alloc(pending.length + chunk.length + 8, 0x41);
    pending.copy(buf, 0);
    chunk.copy(buf, pending.length);
    const end = pending.length + chunk.length;
    let pos = 0;
    for (;;) {
      const r = parseRequest(buf, pos, end, limits);
      if (r.kind === 'incomplete') break;
      if (r.kind === 'error') {
        out.push({ kind: 'error', status: r.status });
        return out;
      }
      const q = r.request;
      out.push({ kind: 'request', method: q.method, target: q.target, v: q.versionMinor, headers: q.headers, body: q.body.toString('latin1'), keepAlive: q.keepAlive, used: r.next - pos });
      pos = r.next;
    }
    pending = Buffer.from(buf.subarray(pos, end));
  }
  out.push({ kind: 'incomplete', left: pending.length });
  return out;
}

/** Split `buf` at the given (unsorted, possibly repeated) offsets. */
function split(buf: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let prev = 0;
  for (const c of [...at, buf.length]) {
    parts.push(buf.subarray(prev, c));
    prev = c;
  }
  return parts;
}

describe('parseRequest properties', () => {
  test('valid pipelined requests parse to what was generated', () => {
    fc.assert(
      fc.property(fc.array(requestArb, { minLength: 1, maxLength: 4 }), (reqs) => {
        const stream = Buffer.from(reqs.map((r) => r.raw).join(''), 'latin1');
        const got = runEngine([stream]);
        assert.equal(got.length, reqs.length + 1);
        reqs.forEach((want, i) => {
          const g = got[i]!;
          assert.equal(g.kind, 'request', `${JSON.stringify(want.raw)} -> ${JSON.stringify(g)}`);
          if (g.kind !== 'request') return;
          assert.deepEqual(
            { method: g.method, target: g.target, v: g.v, headers: g.headers, body: g.body, keepAlive: g.keepAlive, used: g.used },
            { method: want.method, target: want.target, v: want.v, headers: want.headers, body: want.body, keepAlive: want.keepAlive, used: Buffer.byteLength(want.raw, 'latin1') },
          );
        });
        assert.deepEqual(got[reqs.length], { kind: 'incomplete', left: 0 });
      }),
      { numRuns: 500 },
    );
  });

  test('every split of a valid pipelined stream yields the same requests as parsing it whole', () => {
    fc.assert(
      fc.property(fc.array(requestArb, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(2000), { maxLength: 12 }), (reqs, cuts) => {
        const stream = Buffer.from(reqs.map((r) => r.raw).join(''), 'latin1');
        assert.deepEqual(runEngine(split(stream, cuts)), runEngine([stream]));
      }),
      { numRuns: 500 },
    );
  });

  test('byte-at-a-time feeding yields the same requests', () => {
    fc.assert(
      fc.property(fc.array(requestArb, { minLength: 1, maxLength: 3 }), (reqs) => {
        const stream = Buffer.from(reqs.map((r) => r.raw).join(''), 'latin1');
        const bytes = [...stream].map((b) => Buffer.from([b]));
        assert.deepEqual(runEngine(bytes), runEngine([stream]));
      }),
      { numRuns: 100 },
    );
  });

  const mutationArb = fc.array(
    fc.record({ op: fc.constantFrom('set', 'insert', 'delete'), at: fc.nat(), byte: fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(10, 13, 32, 9, 58, 59, 48, 0)) }),
    { minLength: 1, maxLength: 4 },
  );
  function mutate(buf: Buffer, ms: { op: string; at: number; byte: number }[]): Buffer {
    const a = [...buf];
    for (const m of ms) {
      const i = a.length === 0 ? 0 : m.at % (a.length + (m.op === 'insert' ? 1 : 0));
      if (m.op === 'set' && a.length > 0) a[i] = m.byte;
      else if (m.op === 'insert') a.splice(i, 0, m.byte);
      else if (a.length > 0) a.splice(i, 1);
    }
    return Buffer.from(a);
  }
  // Small limits so the 414/431/413 paths are reached by mutated inputs too.
  const SMALL: HttpLimits = { maxRequestLine: 48, maxHeaderBytes: 160, maxHeaders: 6, maxBody: 32 };

  test('mutated requests never throw, and splits still agree with the whole (errors included)', () => {
    fc.assert(
      fc.property(fc.array(requestArb, { minLength: 1, maxLength: 3 }), mutationArb, fc.array(fc.nat(2000), { maxLength: 8 }), fc.boolean(), (reqs, ms, cuts, small) => {
        const stream = mutate(Buffer.from(reqs.map((r) => r.raw).join(''), 'latin1'), ms);
        const limits = small ? SMALL : DEFAULT_HTTP_LIMITS;
        const whole = runEngine([stream], limits);
        for (const o of whole) if (o.kind === 'error') assert.ok([400, 413, 414, 431, 501, 505].includes(o.status), String(o.status));
        assert.deepEqual(runEngine(split(stream, cuts), limits), whole);
      }),
      { numRuns: 2000 },
    );
  });

  const soupArb = fc
    .array(
      fc.oneof(
        fc.constantFrom('GET', 'POST', ' ', '/', ' HTTP/1.1', ' HTTP/1.0', '\r\n', '\r', '\n', ':', 'Host', 'Content-Length', 'Transfer-Encoding', 'chunked', 'Connection', 'close', '0', '5', 'a', ';', '\t', ','),
        fc.string({ unit: 'binary', maxLength: 3 }),
      ),
      { maxLength: 60 },
    )
    .map((parts) => Buffer.from(parts.join(''), 'latin1'));

  test('random bytes and HTTP-ish token soup never throw and return a known shape quickly', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)), soupArb), fc.boolean(), (buf, small) => {
        const limits = small ? SMALL : DEFAULT_HTTP_LIMITS;
        const t0 = performance.now();
        for (let start = 0; start <= buf.length; start += 1 + (buf.length >> 3)) {
          const r = parseRequest(buf, start, buf.length, limits);
          assert.ok(r.kind === 'request' || r.kind === 'incomplete' || r.kind === 'error');
          if (r.kind === 'request') assert.ok(r.next > start && r.next <= buf.length);
          if (r.kind === 'error') assert.ok(r.status >= 400 && r.status < 600);
        }
        assert.ok(performance.now() - t0 < 100, 'bounded time');
      }),
      { numRuns: 3000 },
    );
  });

  test('worst-case inputs at the default limits return within bounded time', () => {
    const cases: [string, Buffer, number | 'incomplete'][] = [
      ['1 MB method', Buffer.alloc(1 << 20, 0x41), 414],
      ['1 MB target', Buffer.concat([Buffer.from('GET /'), Buffer.alloc(1 << 20, 0x61)]), 414],
      ['16 KB of one-byte headers', Buffer.from(`GET / HTTP/1.1\r\n${'a:\r\n'.repeat(4096)}`), 431],
      ['1 MB of CRLF', Buffer.from('\r\n'.repeat(1 << 19)), 431],
      ['maximal chunked body of 1-byte chunks', Buffer.from(`POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${'1\r\nx\r\n'.repeat(1 << 18)}`), 'incomplete'],
      ['chunked body past its wire bound', Buffer.from(`POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${'1\r\nx\r\n'.repeat(1 << 19)}`), 413],
    ];
    for (const [name, buf, want] of cases) {
      const t0 = performance.now();
      const r = parseRequest(buf, 0, buf.length);
      const ms = performance.now() - t0;
      assert.equal(r.kind === 'error' ? r.status : r.kind, want, name);
      assert.ok(ms < 1000, `${name}: ${ms.toFixed(0)} ms`);
    }
  });
});
