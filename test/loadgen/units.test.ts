/** The load generator's pieces without sockets: option parsing, request templates, reply checks, histogram merging. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LoadUsageError, parseSources, parseTarget, parseTime, resolveOptions } from '../../src/loadgen/options.js';
import { compileRespTemplate, createWorkload } from '../../src/loadgen/workload.js';
import { encodeHistogram, mergeEncoded, newHistogram } from '../../src/loadgen/histogram.js';
import { shares, split } from '../../src/loadgen/run.js';
import { E_PROTOCOL, E_WRONG } from '../../src/loadgen/errors.js';
import { uringSizes } from '../../src/loadgen/uring-io.js';

describe('loadgen options', () => {
  it('targets: schemes imply protocols; host:port defaults to http', () => {
    assert.deepEqual(parseTarget('http://127.0.0.1:8080/x?y=1'), { url: 'http://127.0.0.1:8080/x?y=1', protocol: 'http', host: '127.0.0.1', port: 8080, path: '/x?y=1', authority: '127.0.0.1:8080' });
    assert.equal(parseTarget('redis://127.0.0.1').port, 6379);
    assert.equal(parseTarget('tcp://[::1]:7000').host, '::1');
    assert.equal(parseTarget('127.0.0.1:9').protocol, 'http');
    assert.equal(parseTarget('127.0.0.1:9', 'resp').protocol, 'resp');
    assert.throws(() => parseTarget('http://example.com/'), LoadUsageError);
  });

  it('times, sources and process shares', () => {
    assert.equal(parseTime('x', '500ms', 1000), 500);
    assert.equal(parseTime('x', '2', 1000), 2000);
    assert.equal(parseTime('x', '1.5m', 1), 90_000);
    assert.deepEqual(parseSources('127.0.0.1-127.0.0.3'), ['127.0.0.1', '127.0.0.2', '127.0.0.3']);
    assert.deepEqual(split(10, 3), [4, 3, 3]);
    const o = resolveOptions({ targets: 'http://127.0.0.1:1/', connections: 10, procs: 3, mode: 'rate', rate: 1000 });
    const s = shares(o);
    assert.deepEqual(s.map((x) => x.slots), [4, 3, 3]);
    assert.deepEqual(s.map((x) => x.slotBase), [0, 4, 7]);
    assert.equal(s.reduce((a, x) => a + x.rate, 0), 1000);
  });

  it('past the per-process fd limit and the per-source port range, processes and sources are added', () => {
    const o = resolveOptions({ targets: 'http://127.0.0.1:1/', mode: 'hold', connections: 100_000 });
    assert.equal(o.procs, 6);
    assert.equal(o.sources.length, 17);
    assert.equal(o.sources[16], '127.0.0.17');
    assert.ok(o.notes.length >= 2);
  });

  it('--max-errors: counts, fractions and percentages', () => {
    const base = { targets: 'http://127.0.0.1:1/' };
    assert.deepEqual([resolveOptions({ ...base, maxErrors: 5 }).maxErrors, resolveOptions({ ...base, maxErrors: 5 }).maxErrorsFraction], [5, false]);
    assert.equal(resolveOptions({ ...base, maxErrors: 1 }).maxErrorsFraction, false);
    assert.equal(resolveOptions({ ...base, maxErrors: '100%' }).maxErrorsFraction, true);
    assert.equal(resolveOptions({ ...base, maxErrors: '100%' }).maxErrors, 1);
    assert.equal(resolveOptions({ ...base, maxErrors: 0.01 }).maxErrorsFraction, true);
  });

  it('contradictions are usage errors', () => {
    assert.throws(() => resolveOptions({ targets: 'http://127.0.0.1:1/', mode: 'rate' }), /needs --rate/);
    assert.throws(() => resolveOptions({ targets: 'http://127.0.0.1:1/', duration: 1, requests: 5 }), /either/);
    assert.throws(() => resolveOptions({ targets: 'redis://127.0.0.1:1', method: 'POST' }), /HTTP targets/);
    assert.throws(() => resolveOptions({ targets: 'http://127.0.0.1:1/', commands: ['PING'] }), /RESP targets/);
  });
});

describe('loadgen io_uring sizes', () => {
  it('about one receive buffer per connection within a fixed budget; SQ and CQ grow with the connections', () => {
    assert.deepEqual(uringSizes(16), { sq: 256, cq: 1024, bufs: 256, bufSize: 16384 });
    assert.deepEqual(uringSizes(1000), { sq: 1024, cq: 4096, bufs: 2048, bufSize: 16384 });
    assert.deepEqual(uringSizes(19000), { sq: 8192, cq: 32768, bufs: 16384, bufSize: 2048 });
    for (const n of [1, 100, 5000, 19000]) {
      const z = uringSizes(n);
      assert.ok(z.bufs * z.bufSize <= 32 * 1024 * 1024, `${n}: ${JSON.stringify(z)}`);
      assert.ok(z.cq >= z.sq);
    }
  });

  it('IOLAB_LOAD_URING_RING and IOLAB_LOAD_URING_BUFS override them, and bad values are refused', () => {
    const keep = { ring: process.env.IOLAB_LOAD_URING_RING, bufs: process.env.IOLAB_LOAD_URING_BUFS };
    try {
      process.env.IOLAB_LOAD_URING_RING = '8x16';
      process.env.IOLAB_LOAD_URING_BUFS = '4x1024';
      assert.deepEqual(uringSizes(500), { sq: 8, cq: 16, bufs: 4, bufSize: 1024 });
      process.env.IOLAB_LOAD_URING_BUFS = '3x1024'; // not a power of two
      assert.throws(() => uringSizes(1), /IOLAB_LOAD_URING_BUFS=3x1024: want <a>x<b>/);
    } finally {
      if (keep.ring === undefined) delete process.env.IOLAB_LOAD_URING_RING;
      else process.env.IOLAB_LOAD_URING_RING = keep.ring;
      if (keep.bufs === undefined) delete process.env.IOLAB_LOAD_URING_BUFS;
      else process.env.IOLAB_LOAD_URING_BUFS = keep.bufs;
    }
  });
});

describe('loadgen workloads', () => {
  it('RESP templates: random fields are patched in place, expectations follow the command', () => {
    const t = compileRespTemplate('SET key:__rand_int__ __data__', 4);
    assert.equal(t.bytes.toString(), '*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000000\r\n$4\r\nxxxx\r\n');
    assert.deepEqual(t.rand, [t.bytes.indexOf('000000000000')]);
    assert.equal(t.exact!.toString(), '+OK\r\n');
    assert.equal(compileRespTemplate('GET k', 0).type, 36);
    assert.equal(compileRespTemplate('PING', 0).exact!.toString(), '+PONG\r\n');
  });

  it('RESP: replies split anywhere are framed; an -ERR is a wrong reply; junk is a protocol error', () => {
    const o = resolveOptions({ targets: 'redis://127.0.0.1:1', commands: ['SET a:__rand__ 1', 'GET a:__rand__'], keyspace: 10 });
    const w = createWorkload(o, 1, new Uint16Array(1));
    const len = w.fill(0, 4);
    const sent = w.buf.toString('latin1', 0, len);
    assert.equal(sent.match(/\*3/g)!.length, 2);
    assert.match(sent, /a:00000000000\d/);
    const replies = Buffer.from('+OK\r\n$1\r\n1\r\n+OK\r\n$-1\r\n');
    let done = 0;
    for (let i = 0; i < replies.length; i += 3) done += w.consume(0, replies.subarray(i, i + 3), Math.min(3, replies.length - i));
    assert.equal(done, 4);
    assert.equal(w.bad, 0);
    w.fill(0, 1);
    assert.equal(w.consume(0, Buffer.from('-ERR no\r\n'), 9), 1);
    assert.equal(w.bad, 1);
    w.fill(0, 1);
    w.consume(0, Buffer.from('?junk\r\n'), 7);
    assert.equal(w.err, E_PROTOCOL);
  });

  it('echo: payloads differ per request and one changed byte is found', () => {
    const o = resolveOptions({ targets: 'tcp://127.0.0.1:1', size: 100 });
    const w = createWorkload(o, 1, new Uint16Array(1));
    const len = w.fill(0, 3);
    const sent = Buffer.from(w.buf.subarray(0, len));
    assert.notDeepEqual(sent.subarray(0, 100), sent.subarray(100, 200));
    assert.equal(w.consume(0, sent.subarray(0, 150), 150), 1);
    assert.equal(w.consume(0, sent.subarray(150), 150), 2);
    w.reset(0);
    const again = Buffer.from(w.buf.subarray(0, w.fill(0, 1)));
    again[57]! ^= 1;
    assert.equal(w.consume(0, again, again.length), 0);
    assert.equal(w.err, E_WRONG);
    assert.match(w.reason, /byte 57 of reply 0 differs/);
  });

  it('HTTP: a response that differs from the remembered one is parsed again, not assumed', () => {
    const o = resolveOptions({ targets: 'http://127.0.0.1:1/' });
    const w = createWorkload(o, 1, new Uint16Array(1));
    const ok = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi';
    const notFound = 'HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nhi';
    const b = Buffer.from(ok + ok + notFound + ok.slice(0, 10));
    assert.equal(w.consume(0, b, b.length), 3);
    assert.equal(w.bad, 1);
    const rest = Buffer.from(ok.slice(10));
    assert.equal(w.consume(0, rest, rest.length), 1);
    assert.equal(w.bad, 0);
    const close = Buffer.from('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    assert.equal(w.consume(0, close, close.length), 1);
    assert.equal(w.closeAfter, true);
  });
});

describe('loadgen histograms', () => {
  it('merging encoded histograms is exact: counts and percentiles equal one histogram of everything', () => {
    const all = newHistogram();
    const parts = [newHistogram(), newHistogram(), newHistogram()];
    let x = 12345;
    for (let i = 0; i < 30_000; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      const v = 1 + (x % 500_000);
      all.recordValue(v);
      parts[i % 3]!.recordValue(v);
    }
    const merged = mergeEncoded(parts.map(encodeHistogram));
    // The encoding keeps bucket counts (3 significant digits): compare with the whole set encoded the same way.
    const whole = mergeEncoded([encodeHistogram(all)]);
    assert.equal(merged.totalCount, 30_000);
    for (const p of [1, 50, 90, 99, 99.9, 99.99, 100]) assert.equal(merged.getValueAtPercentile(p), whole.getValueAtPercentile(p));
    assert.equal(merged.maxValue, whole.maxValue);
    assert.ok(Math.abs(merged.maxValue - all.maxValue) <= all.maxValue / 1000);
  });
});
