/** The L3 cache probe: its chain is one cycle over every line, its readings are sane, its verdict relative. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildChain, cacheProbe, chase, contended, contendedAbove } from '../../src/lab/cacheprobe.js';

describe('cache probe', () => {
  it('links every cache line into one cycle, one int per 64-byte line', () => {
    for (const bytes of [128, 4096, 64 * 1000 + 10, 1 << 20]) {
      const a = buildChain(bytes);
      const lines = Math.floor(bytes / 64);
      assert.equal(a.length, lines * 16);
      const seen = new Uint8Array(lines);
      let p = 0;
      for (let i = 0; i < lines; i++) {
        assert.equal(p % 16, 0, 'every hop lands on the start of a line');
        assert.equal(seen[p / 16], 0, `line ${p / 16} visited twice before the cycle closed`);
        seen[p / 16] = 1;
        p = a[p]!;
      }
      assert.equal(p, 0, 'the chain closes after visiting every line once');
      assert.equal(chase(a, lines), 0);
    }
  });

  it('is random, not a stride a prefetcher could follow, and the same for the same seed', () => {
    const a = buildChain(64 * 1024);
    let sequential = 0;
    for (let p = 0, i = 0; i < 1024; i++) {
      if (a[p] === p + 16) sequential++;
      p = a[p]!;
    }
    assert.ok(sequential < 16, `${sequential} of 1024 hops went to the next line`);
    assert.deepEqual(buildChain(64 * 1024), a);
    assert.notDeepEqual(buildChain(64 * 1024, 7), a);
  });

  it('refuses sizes and load counts it cannot use', () => {
    assert.throws(() => buildChain(64), /at least 128/);
    assert.throws(() => buildChain(NaN), /at least 128/);
    assert.throws(() => buildChain(2 ** 40), /too large/);
    assert.throws(() => cacheProbe({ loads: 0 }), /positive integer/);
    assert.throws(() => cacheProbe({ loads: 1.5 }), /positive integer/);
  });

  it('reads a finite, positive number of nanoseconds per load', () => {
    const ns = cacheProbe({ bytes: 256 * 1024, loads: 100_000 });
    assert.ok(Number.isFinite(ns) && ns > 0, String(ns));
  });

  it('calls a reading contended relative to the best of the run, not against a fixed figure', () => {
    assert.deepEqual(contended([17, 18, 40, 150, 34]), [false, false, true, true, false]);
    // The same shape on a machine three times slower: the same verdicts.
    assert.deepEqual(contended([51, 54, 120, 450, 102]), [false, false, true, true, false]);
    assert.deepEqual(contended([17, NaN, 100], 5), [false, false, true]);
    assert.deepEqual(contended([]), []);
    assert.deepEqual(contended([NaN, -1]), [false, false]);
    assert.equal(contendedAbove([17, 18, 40]), 34);
    assert.equal(contendedAbove([NaN]), Infinity);
  });
});
