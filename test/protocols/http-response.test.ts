/**
 * Response encoder (golden bytes, Date normalised), client response parser (golden table), the
 * request encoder, and round trips: encoder -> client parser, encodeRequest -> parseRequest.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { performance } from 'node:perf_hooks';
import { OutBuf } from '../../src/protocols/outbuf.js';
import { writeResponse, writeError, prepareResponse, statusText, dateHeader } from '../../src/protocols/http/response.js';
import { parseResponse, finishAtEof, encodeRequest, type ResponseParseOptions } from '../../src/protocols/http/client.js';
import { parseRequest } from '../../src/protocols/http/request.js';
import type { HttpResponse, HttpResponseParse } from '../../src/protocols/http/types.js';

const IMF_FIXDATE = /^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT\r$/m;

/** Encode and return the bytes as a latin1 string with the Date value replaced by `<date>`. */
function encode(res: HttpResponse, opts: { keepAlive?: boolean; head?: boolean; versionMinor?: 0 | 1 } = {}): string {
  const out = new OutBuf(16);
  writeResponse(out, res, { keepAlive: opts.keepAlive ?? true, head: opts.head ?? false, versionMinor: opts.versionMinor ?? 1 });
  const s = out.take().toString('latin1');
  assert.match(s, IMF_FIXDATE);
  return s.replace(/^Date: [^\r]*\r$/m, 'Date: <date>\r');
}

const TEXT = [['Content-Type', 'text/plain']] as const;
const HELLO: HttpResponse = { status: 200, headers: TEXT, body: Buffer.from('Hello, World!') };

// prettier-ignore
const ENCODER_ROWS: { name: string; res: HttpResponse; opts?: { keepAlive?: boolean; head?: boolean; versionMinor?: 0 | 1 }; want: string }[] = [
  { name: '200 keep-alive (1.1 needs no Connection header)', res: HELLO,
    want: 'HTTP/1.1 200 OK\r\nServer: iolab\r\nContent-Length: 13\r\nContent-Type: text/plain\r\nDate: <date>\r\n\r\nHello, World!' },
  { name: '200 close', res: HELLO, opts: { keepAlive: false },
    want: 'HTTP/1.1 200 OK\r\nServer: iolab\r\nContent-Length: 13\r\nContent-Type: text/plain\r\nDate: <date>\r\nConnection: close\r\n\r\nHello, World!' },
  { name: '1.0 keep-alive says so', res: HELLO, opts: { versionMinor: 0 },
    want: 'HTTP/1.1 200 OK\r\nServer: iolab\r\nContent-Length: 13\r\nContent-Type: text/plain\r\nDate: <date>\r\nConnection: keep-alive\r\n\r\nHello, World!' },
  { name: '1.0 close', res: HELLO, opts: { versionMinor: 0, keepAlive: false },
    want: 'HTTP/1.1 200 OK\r\nServer: iolab\r\nContent-Length: 13\r\nContent-Type: text/plain\r\nDate: <date>\r\nConnection: close\r\n\r\nHello, World!' },
  { name: 'HEAD keeps Content-Length, drops the body', res: HELLO, opts: { head: true },
    want: 'HTTP/1.1 200 OK\r\nServer: iolab\r\nContent-Length: 13\r\nContent-Type: text/plain\r\nDate: <date>\r\n\r\n' },
  { name: '204 has no Content-Length and no body', res: { status: 204, body: 'ignored' },
    want: 'HTTP/1.1 204 No Content\r\nServer: iolab\r\nDate: <date>\r\n\r\n' },
  { name: '304 has no Content-Length and no body', res: { status: 304, headers: [['ETag', '"x"']] },
    want: 'HTTP/1.1 304 Not Modified\r\nServer: iolab\r\nETag: "x"\r\nDate: <date>\r\n\r\n' },
  { name: 'string body is UTF-8 and counted in bytes', res: { status: 200, body: 'h\u00e9llo \u2603' },
    want: 'HTTP/1.1 200 OK\r\nServer: iolab\r\nContent-Length: 10\r\nDate: <date>\r\n\r\nh\xc3\xa9llo \xe2\x98\x83' },
  { name: 'no body -> Content-Length: 0', res: { status: 404 },
    want: 'HTTP/1.1 404 Not Found\r\nServer: iolab\r\nContent-Length: 0\r\nDate: <date>\r\n\r\n' },
  { name: 'Uint8Array body', res: { status: 201, body: new Uint8Array([104, 105]) },
    want: 'HTTP/1.1 201 Created\r\nServer: iolab\r\nContent-Length: 2\r\nDate: <date>\r\n\r\nhi' },
  { name: 'multi-digit Content-Length', res: { status: 200, body: 'x'.repeat(1234) },
    want: `HTTP/1.1 200 OK\r\nServer: iolab\r\nContent-Length: 1234\r\nDate: <date>\r\n\r\n${'x'.repeat(1234)}` },
  { name: 'framing headers from the app are dropped', res: { status: 200, body: 'ok', headers: [['content-length', '99'], ['Transfer-Encoding', 'chunked'], ['CONNECTION', 'close'], ['Date', 'x'], ['X-Kept', 'y']] },
    want: 'HTTP/1.1 200 OK\r\nServer: iolab\r\nContent-Length: 2\r\nX-Kept: y\r\nDate: <date>\r\n\r\nok' },
  { name: 'unknown status code', res: { status: 299 },
    want: 'HTTP/1.1 299 Unknown\r\nServer: iolab\r\nContent-Length: 0\r\nDate: <date>\r\n\r\n' },
  { name: 'header value with CRLF (response splitting) -> 500', res: { status: 200, headers: [['X-A', 'a\r\nSet-Cookie: evil']] },
    want: 'HTTP/1.1 500 Internal Server Error\r\nServer: iolab\r\nContent-Length: 44\r\nContent-Type: text/plain; charset=utf-8\r\nDate: <date>\r\n\r\nInternal Server Error: invalid header value\n' },
  { name: 'header name with a space -> 500', res: { status: 200, headers: [['X A', 'b']] },
    want: 'HTTP/1.1 500 Internal Server Error\r\nServer: iolab\r\nContent-Length: 43\r\nContent-Type: text/plain; charset=utf-8\r\nDate: <date>\r\n\r\nInternal Server Error: invalid header name\n' },
  { name: 'invalid status -> 500', res: { status: 42 },
    want: 'HTTP/1.1 500 Internal Server Error\r\nServer: iolab\r\nContent-Length: 38\r\nContent-Type: text/plain; charset=utf-8\r\nDate: <date>\r\n\r\nInternal Server Error: invalid status\n' },
];

describe('writeResponse golden', () => {
  for (const row of ENCODER_ROWS) {
    test(row.name, () => {
      assert.equal(encode(row.res, row.opts), row.want);
    });
  }

  test('a prepared response encodes to the same bytes as the plain one, every option', () => {
    for (const row of ENCODER_ROWS.slice(0, 13)) {
      const prepared = prepareResponse(row.res);
      for (const keepAlive of [true, false])
        for (const head of [true, false])
          for (const versionMinor of [0, 1] as const) {
            const opts = { keepAlive, head, versionMinor };
            assert.equal(encode(prepared, opts), encode(row.res, opts), `${row.name} ${JSON.stringify(opts)}`);
          }
    }
  });

  test('a prepared response copied with a new body is not sent stale', () => {
    const prepared = prepareResponse(HELLO);
    assert.ok(Object.isFrozen(prepared));
    const changed = { ...prepared, body: 'bye' };
    assert.match(encode(changed), /Content-Length: 3\r\n[\s\S]*\r\n\r\nbye$/);
  });

  test('prepareResponse throws on what it cannot encode', () => {
    assert.throws(() => prepareResponse({ status: 200, headers: [['X', 'a\nb']] }), TypeError);
    assert.throws(() => prepareResponse({ status: 1000 }), TypeError);
  });

  test('bodies larger than the OutBuf grow it', () => {
    const body = Buffer.alloc(100_000, 0x61);
    const out = new OutBuf(64);
    writeResponse(out, { status: 200, body }, { keepAlive: true, head: false, versionMinor: 1 });
    const r = parseResponse(out.buf, 0, out.len);
    assert.ok(r.kind === 'response');
    assert.ok(r.body.equals(body));
  });

  test('Date is an IMF-fixdate, cached per second', () => {
    assert.equal(dateHeader(0).toString(), 'Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n');
    assert.equal(dateHeader(784111777000).toString(), 'Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n');
    const a = dateHeader(784111777000);
    assert.equal(dateHeader(784111777999), a, 'same second, same bytes');
    assert.notEqual(dateHeader(784111778000), a);
  });

  test('Date from a performance.now() reading (WriteOptions.now) is the wall clock\'s, prepared or not, whatever Date was built for before', () => {
    const prepared = prepareResponse(HELLO);
    for (const res of [HELLO, prepared, prepared])
      for (const opts of [{ keepAlive: true, head: false, versionMinor: 1 as const }, { keepAlive: false, head: true, versionMinor: 0 as const }]) {
        for (let attempt = 0; ; attempt++) {
          dateHeader(0); // the cached line (and the prepared whole response) now say 1970
          const want = dateHeader().toString('latin1');
          const out = new OutBuf(16);
          writeResponse(out, res, { ...opts, now: performance.now() });
          const got = out.take().toString('latin1');
          if (dateHeader().toString('latin1') !== want && attempt < 3) continue; // a second passed meanwhile
          assert.ok(got.includes(want), `${JSON.stringify(got)} should carry ${JSON.stringify(want)}`);
          assert.equal(got.replace(want, ''), encode(res, opts).replace('Date: <date>\r\n', ''));
          break;
        }
      }
  });
});

describe('writeError and statusText', () => {
  test('431 closes by default', () => {
    const out = new OutBuf();
    writeError(out, 431);
    const s = out.take().toString('latin1').replace(/^Date: [^\r]*\r$/m, 'Date: <date>\r');
    assert.equal(
      s,
      'HTTP/1.1 431 Request Header Fields Too Large\r\nServer: iolab\r\nContent-Length: 36\r\nContent-Type: text/plain; charset=utf-8\r\nDate: <date>\r\nConnection: close\r\n\r\n431 Request Header Fields Too Large\n',
    );
  });

  test('keepAlive option leaves the connection open', () => {
    const out = new OutBuf();
    writeError(out, 404, { keepAlive: true });
    const s = out.take().toString('latin1');
    assert.ok(!s.includes('Connection:'));
    assert.ok(s.endsWith('\r\n\r\n404 Not Found\n'));
  });

  test('every parser error status has a reason phrase', () => {
    for (const code of [400, 408, 413, 414, 431, 500, 501, 503, 505]) assert.notEqual(statusText(code), 'Unknown', String(code));
    assert.equal(statusText(413), 'Content Too Large');
    assert.equal(statusText(414), 'URI Too Long');
  });

  test('a status it cannot send becomes 500', () => {
    const out = new OutBuf();
    writeError(out, 7);
    assert.ok(out.take().toString().startsWith('HTTP/1.1 500 Internal Server Error\r\n'));
  });
});

// ---------------------------------------------------------------------------------------------
// Client response parser

interface RWant {
  status: number;
  v?: 0 | 1;
  headers?: string[];
  body?: string;
  keepAlive?: boolean;
  next?: number;
}
type RExpect = RWant | 'error' | 'incomplete';

// prettier-ignore
const CLIENT_ROWS: { name: string; raw: string; opts?: ResponseParseOptions; want: RExpect; atEof?: RExpect }[] = [
  { name: 'Content-Length', raw: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello', want: { status: 200, body: 'hello', keepAlive: true } },
  { name: 'header names lower-cased, values trimmed', raw: 'HTTP/1.1 200 OK\r\nContent-Type:  text/plain \r\nCONTENT-LENGTH: 0\r\n\r\n',
    want: { status: 200, headers: ['content-type', 'text/plain', 'content-length', '0'], body: '' } },
  { name: 'chunked', raw: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;ext\r\n!\r\n0\r\nX-T: 1\r\n\r\n', want: { status: 200, body: 'hello!' } },
  { name: 'chunked last after another coding', raw: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n', want: { status: 200, body: 'hi' } },
  { name: 'Transfer-Encoding wins over Content-Length (RFC 9112 6.3)', raw: 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n', want: { status: 200, body: 'hi' } },
  { name: 'HEAD response keeps Content-Length but has no body', raw: 'HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n', opts: { head: true }, want: { status: 200, body: '' } },
  { name: '204 has no body', raw: 'HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1', want: { status: 204, body: '', next: 27 } },
  { name: '304 with Content-Length has no body', raw: 'HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n', want: { status: 304, body: '' } },
  { name: '100 Continue is returned alone', raw: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n', want: { status: 100, body: '', next: 25 } },
  { name: 'HTTP/1.0 defaults to close', raw: 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi', want: { status: 200, v: 0, body: 'hi', keepAlive: false } },
  { name: 'HTTP/1.0 with keep-alive', raw: 'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi', want: { status: 200, v: 0, body: 'hi', keepAlive: true } },
  { name: 'HTTP/1.1 Connection: close', raw: 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi', want: { status: 200, body: 'hi', keepAlive: false } },
  { name: 'HTTP/1.2 is read as 1.1', raw: 'HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n', want: { status: 200, v: 1, body: '' } },
  { name: 'no reason phrase', raw: 'HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n', want: { status: 200 } },
  { name: 'empty reason phrase', raw: 'HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n', want: { status: 200 } },
  { name: 'equal duplicate Content-Length accepted (RFC 9112 6.3)', raw: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi', want: { status: 200, body: 'hi' } },
  { name: 'read until close: incomplete, then finished at EOF', raw: 'HTTP/1.0 200 OK\r\n\r\nall of it', want: 'incomplete', atEof: { status: 200, v: 0, body: 'all of it', keepAlive: false } },
  { name: 'read until close after a non-chunked coding', raw: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nzz', want: 'incomplete', atEof: { status: 200, body: 'zz', keepAlive: false } },
  { name: 'partial head -> incomplete; EOF -> error', raw: 'HTTP/1.1 200 OK\r\nContent-Le', want: 'incomplete', atEof: 'error' },
  { name: 'partial body -> incomplete; EOF -> error', raw: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel', want: 'incomplete', atEof: 'error' },
  { name: 'partial chunked body -> incomplete; EOF -> error', raw: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel', want: 'incomplete', atEof: 'error' },
  { name: 'nothing at all -> incomplete; EOF -> error', raw: '', want: 'incomplete', atEof: 'error' },
  { name: 'not HTTP -> error', raw: 'SSH-2.0-OpenSSH_9.6\r\n', want: 'error' },
  { name: 'status not three digits -> error', raw: 'HTTP/1.1 2OO OK\r\n\r\n', want: 'error' },
  { name: 'status of four digits -> error', raw: 'HTTP/1.1 2000 OK\r\n\r\n', want: 'error' },
  { name: 'HTTP/2.0 -> error', raw: 'HTTP/2.0 200 OK\r\n\r\n', want: 'error' },
  { name: 'status below 100 -> error', raw: 'HTTP/1.1 099 X\r\n\r\n', want: 'error' },
  { name: 'conflicting Content-Length -> error', raw: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi', want: 'error' },
  { name: 'malformed Content-Length -> error', raw: 'HTTP/1.1 200 OK\r\nContent-Length: 4 2\r\n\r\n', want: 'error' },
  { name: 'bad chunk size -> error', raw: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n', want: 'error' },
  { name: 'missing CRLF after chunk data -> error', raw: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhiX', want: 'error' },
  { name: 'bare LF -> error', raw: 'HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n', want: 'error' },
  { name: 'head over maxHeaderBytes -> error', raw: `HTTP/1.1 200 OK\r\nX-Big: ${'x'.repeat(200)}`, opts: { maxHeaderBytes: 128 }, want: 'error' },
  { name: 'Content-Length over maxBody -> error', raw: 'HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n', opts: { maxBody: 10 }, want: 'error' },
  { name: 'read-until-close over maxBody -> error', raw: `HTTP/1.0 200 OK\r\n\r\n${'x'.repeat(11)}`, opts: { maxBody: 10 }, want: 'error' },
];

function checkResponse(r: HttpResponseParse, want: RExpect, rawLength: number): void {
  if (want === 'incomplete') return assert.equal(r.kind, 'incomplete', JSON.stringify(r));
  if (want === 'error') {
    assert.equal(r.kind, 'error', JSON.stringify(r));
    if (r.kind === 'error') assert.ok(r.reason.length > 0);
    return;
  }
  assert.equal(r.kind, 'response', JSON.stringify(r));
  if (r.kind !== 'response') return;
  assert.equal(r.status, want.status);
  const v = want.v ?? 1;
  assert.equal(r.versionMinor, v);
  if (want.headers) assert.deepEqual(r.headers, want.headers);
  if (want.body !== undefined) assert.equal(r.body.toString('latin1'), want.body);
  if (want.keepAlive !== undefined) assert.equal(r.keepAlive, want.keepAlive);
  assert.equal(r.next, want.next ?? rawLength);
}

describe('parseResponse golden table', () => {
  for (const row of CLIENT_ROWS) {
    test(row.name, () => {
      const buf = Buffer.from(row.raw, 'latin1');
      checkResponse(parseResponse(buf, 0, buf.length, row.opts), row.want, buf.length);
      checkResponse(finishAtEof(buf, 0, buf.length, row.opts), row.atEof ?? row.want, buf.length);
      // Offsets are absolute and nothing past `end` is read.
      const framed = Buffer.concat([Buffer.from('junk'), buf, Buffer.from('HTTP/1.1 200 OK\r\n\r\n')]);
      const a = parseResponse(buf, 0, buf.length, row.opts);
      const b = parseResponse(framed, 4, 4 + buf.length, row.opts);
      if (a.kind === 'response' && b.kind === 'response') {
        assert.equal(b.next, a.next + 4);
        assert.deepEqual({ ...b, next: 0 }, { ...a, next: 0 });
      } else assert.deepEqual(b, a);
    });
  }

  test('pipelined responses parse in order via next', () => {
    const buf = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nb\r\n0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n');
    const got: [number, string][] = [];
    let pos = 0;
    for (;;) {
      const r = parseResponse(buf, pos, buf.length);
      if (r.kind !== 'response') break;
      got.push([r.status, r.body.toString()]);
      pos = r.next;
    }
    assert.deepEqual(got, [[200, 'a'], [404, 'b'], [204, '']]);
    assert.equal(pos, buf.length);
  });

  test('random bytes never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (a, eof) => {
        const buf = Buffer.from(a);
        const r = (eof ? finishAtEof : parseResponse)(buf, 0, buf.length);
        assert.ok(r.kind === 'response' || r.kind === 'incomplete' || r.kind === 'error');
      }),
      { numRuns: 2000 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Round trips

const nameArb = fc.stringMatching(/^X-[A-Za-z0-9-]{1,10}$/);
const valueArb = fc.stringMatching(/^[\x21-\x7e]([\x20-\x7e]{0,16}[\x21-\x7e])?$/);
const bodyArb = fc.oneof(fc.string({ maxLength: 60 }), fc.uint8Array({ maxLength: 200 }));
const statusArb = fc.oneof(fc.constantFrom(200, 201, 204, 301, 304, 400, 404, 413, 431, 500, 503), fc.integer({ min: 100, max: 599 }));
const responseArb = fc.record({
  res: fc.record({ status: statusArb, headers: fc.array(fc.tuple(nameArb, valueArb), { maxLength: 4 }), body: bodyArb }),
  keepAlive: fc.boolean(),
  head: fc.boolean(),
  versionMinor: fc.constantFrom<0 | 1>(0, 1),
  prepared: fc.boolean(),
});

describe('round trips', () => {
  test('writeResponse -> parseResponse gives back status, headers, body and keep-alive, across splits', () => {
    fc.assert(
      fc.property(fc.array(responseArb, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(4000), { maxLength: 8 }), (items, cuts) => {
        const out = new OutBuf(32);
        for (const it of items) writeResponse(out, it.prepared ? prepareResponse(it.res) : it.res, it);
        const stream = out.take();
        // Feed the stream as the load generator would: remainder + next chunk, parse until incomplete.
        const at = [...new Set(cuts.map((c) => c % (stream.length + 1))), stream.length].sort((a, b) => a - b);
        let pending = Buffer.alloc(0);
        let prev = 0;
        let i = 0;
        for (const c of at) {
          pending = Buffer.concat([pending, stream.subarray(prev, c)]);
          prev = c;
          let pos = 0;
          for (;;) {
            const it = items[i];
            const r = parseResponse(pending, pos, pending.length, { head: it?.head ?? false });
            if (r.kind === 'incomplete') break;
            assert.equal(r.kind, 'response', JSON.stringify(r));
            if (r.kind !== 'response' || it === undefined) return;
            const { status, body, headers } = it.res;
            assert.equal(r.status, status);
            const bodyless = status < 200 || status === 204 || status === 304 || it.head;
            const bytes = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body);
            assert.deepEqual(r.body, bodyless ? Buffer.alloc(0) : bytes);
            const own = ['server', 'date', 'content-length', 'connection'];
            const appHeaders: [string, string][] = [];
            for (let k = 0; k < r.headers.length; k += 2) if (!own.includes(r.headers[k]!)) appHeaders.push([r.headers[k]!, r.headers[k + 1]!]);
            assert.deepEqual(appHeaders, headers.map(([n, v]) => [n.toLowerCase(), v]));
            assert.equal(r.keepAlive, it.keepAlive);
            pos = r.next;
            i++;
          }
          pending = pending.subarray(pos);
        }
        assert.equal(i, items.length);
        assert.equal(pending.length, 0);
      }),
      { numRuns: 500 },
    );
  });

  test('encodeRequest -> parseRequest gives back method, target, headers and body', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PURGE'),
        fc.stringMatching(/^\/[\x21-\x7e]{0,30}$/),
        fc.array(fc.tuple(nameArb, valueArb), { maxLength: 4 }),
        fc.option(bodyArb, { nil: undefined }),
        (method, target, extra, body) => {
          const headers: [string, string][] = [['Host', 'bench.test'], ...extra];
          const buf = encodeRequest(method, target, headers, body);
          const r = parseRequest(buf, 0, buf.length);
          assert.equal(r.kind, 'request', JSON.stringify(r));
          if (r.kind !== 'request') return;
          assert.equal(r.next, buf.length);
          assert.equal(r.request.method, method);
          assert.equal(r.request.target, target);
          const bytes = body === undefined ? Buffer.alloc(0) : Buffer.from(body);
          assert.deepEqual(r.request.body, bytes);
          const want = headers.flatMap(([n, v]) => [n.toLowerCase(), v]);
          if (body !== undefined) want.push('content-length', String(bytes.length));
          assert.deepEqual(r.request.headers, want);
          assert.equal(r.request.keepAlive, true);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('encodeRequest', () => {
  test('golden bytes', () => {
    assert.equal(encodeRequest('GET', '/plaintext', [['Host', 'localhost:8080']]).toString(), 'GET /plaintext HTTP/1.1\r\nHost: localhost:8080\r\n\r\n');
    assert.equal(
      encodeRequest('POST', '/echo', [['Host', 'h'], ['Content-Type', 'text/plain']], 'h\u00e9').toString('latin1'),
      'POST /echo HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nh\xc3\xa9',
    );
    assert.equal(encodeRequest('POST', '/e', [['Host', 'h']], '').toString(), 'POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n');
  });

  test('a caller-supplied Content-Length or Transfer-Encoding is not doubled', () => {
    assert.equal(encodeRequest('POST', '/', [['Host', 'h'], ['content-length', '2']], 'hi').toString(), 'POST / HTTP/1.1\r\nHost: h\r\ncontent-length: 2\r\n\r\nhi');
    const chunked = encodeRequest('POST', '/', [['Host', 'h'], ['Transfer-Encoding', 'chunked']], '2\r\nhi\r\n0\r\n\r\n');
    const r = parseRequest(chunked, 0, chunked.length);
    assert.ok(r.kind === 'request' && r.request.body.toString() === 'hi');
  });

  test('rejects what would break the framing', () => {
    assert.throws(() => encodeRequest('G T', '/', []), TypeError);
    assert.throws(() => encodeRequest('GET', '/a b', []), TypeError);
    assert.throws(() => encodeRequest('GET', '', []), TypeError);
    assert.throws(() => encodeRequest('GET', '/', [['Host', 'a\r\nX: y']]), TypeError);
    assert.throws(() => encodeRequest('GET', '/', [['Ho st', 'a']]), TypeError);
  });
});
