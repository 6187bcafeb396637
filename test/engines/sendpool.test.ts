/**
 * The io_uring engine's send slots (engines/io_uring/sendpool.ts): take() must hold exactly the bytes
 * it was given, whichever copy it uses (32-bit words for small replies from an aligned source, the
 * native copy otherwise), and slots are reused without carrying old bytes into a shorter reply.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { LARGE, SMALL, SendPool } from '../../src/engines/io_uring/sendpool.js';

function filled(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafeSlow(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
}

describe('SendPool.take', () => {
  test('every length from 1 to 1100 bytes, from aligned and unaligned sources, comes out exact', () => {
    const pool = new SendPool();
    const aligned = filled(64 * 1024, 1);
    const backing = filled(8 * 1024, 2);
    const unaligned = backing.subarray(3, 3 + 4096); // byteOffset 3: no word view possible
    const small = filled(7, 3); // a source shorter than a word's worth past its end
    for (const src of [aligned, unaligned, small]) {
      for (let len = 1; len <= Math.min(1100, src.length); len++) {
        const s = pool.take(src, len, 9, 1);
        assert.ok(pool.buf[s]!.subarray(0, len).equals(src.subarray(0, len)), `len ${len} from offset ${src.byteOffset}`);
        assert.equal(pool.end[s], len);
        assert.equal(pool.off[s], 0);
        assert.equal(pool.fd[s], 9);
        pool.release(s);
      }
    }
    assert.equal(pool.inUse, 0);
  });

  test('a source whose bytes change between takes is read afresh each time', () => {
    const pool = new SendPool();
    const out = filled(64 * 1024, 4);
    const a = pool.take(out, 130, 1, 1);
    out.fill(0x5a, 0, 130);
    const b = pool.take(out, 130, 2, 1);
    assert.notEqual(a, b);
    assert.ok(pool.buf[b]!.subarray(0, 130).every((x) => x === 0x5a));
    assert.ok(!pool.buf[a]!.subarray(0, 130).every((x) => x === 0x5a), 'the slot in flight keeps its own bytes');
  });

  test('sizes pick their class, and a released slot is reused', () => {
    const pool = new SendPool();
    const src = filled(200 * 1024, 5);
    const s1 = pool.take(src, SMALL, 1, 1);
    const s2 = pool.take(src, SMALL + 1, 1, 1);
    const s3 = pool.take(src, LARGE + 1, 1, 1);
    assert.equal(pool.buf[s1]!.length, SMALL);
    assert.equal(pool.buf[s2]!.length, LARGE);
    assert.equal(pool.buf[s3]!.length, LARGE + 1);
    assert.ok(pool.buf[s3]!.equals(src.subarray(0, LARGE + 1)));
    pool.release(s1);
    assert.equal(pool.take(src, 10, 1, 2), s1);
    assert.equal(pool.inUse, 3);
  });
});
