/**
 * intern.ts: the strings it hands out are always the latin1 decoding of the bytes asked for, whether
 * they come from its table or not: after evictions, for ranges that share a slot, for long ranges,
 * and for every byte value; field names fold to lower case.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { latin1, latin1Lower, MAX_LEN } from '../../src/protocols/http/intern.js';

const lowerAscii = (s: string): string => s.replace(/[A-Z]/g, (c) => c.toLowerCase());

describe('intern', () => {
  test('any bytes, at any offset, read back as their latin1 string, the first time and again', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: MAX_LEN + 20 }), fc.nat(7), (bytes, pad) => {
        const buf = Buffer.alloc(bytes.length + 2 * pad, 0x7a);
        buf.set(bytes, pad);
        const want = Buffer.from(bytes).toString('latin1');
        assert.equal(latin1(buf, pad, pad + bytes.length), want);
        assert.equal(latin1(buf, pad, pad + bytes.length), want);
      }),
      { numRuns: 500 },
    );
  });

  test('ranges that differ in one byte never get each other\'s string (same length, same ends)', () => {
    // Same length, first, middle and last byte: the same slot. Each must evict, not match.
    const a = Buffer.from('/item/12345/x'), b = Buffer.from('/item/12945/x');
    for (let k = 0; k < 3; k++) {
      assert.equal(latin1(a, 0, a.length), '/item/12345/x');
      assert.equal(latin1(b, 0, b.length), '/item/12945/x');
    }
  });

  test('thousands of distinct values (every slot evicted many times) all read back right', () => {
    const seen: [Buffer, string][] = [];
    for (let i = 0; i < 5000; i++) {
      const s = `v${(i * 7919).toString(36)}-${i % 13}`;
      seen.push([Buffer.from(s, 'latin1'), s]);
    }
    for (let round = 0; round < 2; round++) for (const [b, s] of seen) assert.equal(latin1(b, 0, b.length), s);
  });

  test('one-byte ranges, bytes above 0x7F, and a range inside a bigger buffer', () => {
    for (let c = 0; c < 256; c++) assert.equal(latin1(Buffer.from([c]), 0, 1), String.fromCharCode(c));
    const buf = Buffer.from('GET /\xe9t\xe9 HTTP/1.1', 'latin1');
    assert.equal(latin1(buf, 4, 10), '/\xe9t\xe9 H');
    assert.equal(latin1(buf, 4, 8), '/\xe9t\xe9');
  });

  test('field names fold A-Z to lower case, and the two spellings share one entry without mixing', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,40}$/), (name) => {
        const raw = Buffer.from(name, 'latin1');
        assert.equal(latin1Lower(raw, 0, raw.length), lowerAscii(name));
        // The raw spelling asked for as a value must come back raw, not folded.
        assert.equal(latin1(raw, 0, raw.length), name);
        assert.equal(latin1Lower(raw, 0, raw.length), lowerAscii(name));
      }),
      { numRuns: 300 },
    );
  });

  test('ranges longer than the table holds are still right', () => {
    const long = Buffer.from('a'.repeat(MAX_LEN + 1) + 'B', 'latin1');
    assert.equal(latin1(long, 0, long.length), 'a'.repeat(MAX_LEN + 1) + 'B');
    assert.equal(latin1Lower(long, 0, long.length), 'a'.repeat(MAX_LEN + 1) + 'b');
  });
});

test('latin1Lower folds A-Z only, and bytes above 0x7F never poison the table', () => {
  const odd = Buffer.from('X-\xc0\xe9Z', 'latin1');
  assert.equal(latin1Lower(odd, 0, odd.length), 'x-\xc0\xe9z');
  assert.equal(latin1(odd, 0, odd.length), 'X-\xc0\xe9Z');
  const lowered = Buffer.from('x-\xc0\xe9z', 'latin1');
  assert.equal(latin1(lowered, 0, lowered.length), 'x-\xc0\xe9z');
  assert.equal(latin1Lower(odd, 0, odd.length), 'x-\xc0\xe9z');
});
