/** The load generator's HTTP framing of large Content-Length bodies (static files): counted off, not held. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { resolveOptions } from '../../src/loadgen/options.js';
import { createWorkload } from '../../src/loadgen/workload.js';
import { E_PROTOCOL } from '../../src/loadgen/errors.js';

function response(status: number, body: number, extra = ''): Buffer {
  const head = Buffer.from(`HTTP/1.1 ${status} X\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body}\r\n${extra}\r\n`, 'latin1');
  const b = Buffer.alloc(body, 0x61);
  return Buffer.concat([head, b]);
}

/** Feed `bytes` in reads of `chunk` bytes; returns replies completed. */
function feed(w: ReturnType<typeof createWorkload>, bytes: Buffer, chunk: number): { done: number; bad: number; err: number; closeAfter: boolean } {
  let done = 0, bad = 0, err = 0, closeAfter = false;
  for (let i = 0; i < bytes.length; i += chunk) {
    const part = bytes.subarray(i, Math.min(bytes.length, i + chunk));
    // A read buffer is reused by the I/O layer: give the workload a scratch copy it must not keep.
    const scratch = Buffer.alloc(chunk + 7);
    part.copy(scratch);
    done += w.consume(0, scratch, part.length);
    bad += w.bad;
    err ||= w.err;
    closeAfter ||= w.closeAfter;
    scratch.fill(0); // a workload that kept a view of it would now see zeros
  }
  return { done, bad, err, closeAfter };
}

describe('loadgen HTTP bodies', () => {
  const o = resolveOptions({ targets: 'http://127.0.0.1:1/big.bin' });

  it('1 MB bodies in 2 KB and 64 KB reads, two pipelined: every reply counted once', () => {
    for (const chunk of [2048, 65536, 1000]) {
      const w = createWorkload(o, 1, new Uint16Array(1));
      const two = Buffer.concat([response(200, 1 << 20), response(200, 1 << 20)]);
      const r = feed(w, two, chunk);
      assert.deepEqual(r, { done: 2, bad: 0, err: 0, closeAfter: false }, `reads of ${chunk}`);
    }
  });

  // Holding the body would copy every earlier read again on each new one: 4,096 reads of a 16 MB
  // body copy ~34 GB (15 s here); counted off, it is one pass (~30 ms). The timeout is the assertion.
  it('a 16 MB body in 4 KB reads is one pass over the bytes, not quadratic', { timeout: 5_000 }, () => {
    const w = createWorkload(o, 1, new Uint16Array(1));
    assert.deepEqual(feed(w, response(200, 16 << 20), 4096), { done: 1, bad: 0, err: 0, closeAfter: false });
  });

  it('the status of a large body is checked; Connection: close after it is honoured', () => {
    const w = createWorkload(o, 1, new Uint16Array(1));
    assert.deepEqual(feed(w, response(500, 100_000), 4096), { done: 1, bad: 1, err: 0, closeAfter: false });
    assert.match(w.reason, /HTTP status 500/);
    const w2 = createWorkload(o, 1, new Uint16Array(1));
    assert.deepEqual(feed(w2, response(200, 100_000, 'Connection: close\r\n'), 4096), { done: 1, bad: 0, err: 0, closeAfter: true });
  });

  it('a connection closed in a large body is a protocol error, and a reset slot forgets the body', () => {
    const w = createWorkload(o, 1, new Uint16Array(1));
    const r = response(200, 200_000);
    feed(w, r.subarray(0, 100_000), 32_768);
    assert.equal(w.eof(0), 0);
    assert.equal(w.err, E_PROTOCOL);
    assert.match(w.reason, /closed in the body/);
    w.reset(0);
    feed(w, r.subarray(0, 100_000), 32_768);
    w.reset(0);
    assert.deepEqual(feed(w, response(200, 50_000), 8192), { done: 1, bad: 0, err: 0, closeAfter: false });
  });

  it('a body that ends exactly at a read boundary, then a small reply in the next read', () => {
    const w = createWorkload(o, 1, new Uint16Array(1));
    const big = response(200, 70_000);
    assert.equal(w.consume(0, big.subarray(0, 40_000), 40_000), 0);
    const rest = big.subarray(40_000);
    assert.equal(w.consume(0, Buffer.from(rest), rest.length), 1);
    const small = response(200, 5);
    assert.equal(w.consume(0, small, small.length), 1);
  });
});
