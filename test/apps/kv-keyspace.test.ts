/**
 * kv's byte-keyed keyspace against a plain Map model: random sequences of sets (values of every size
 * class, big records, in-place and moving overwrites), objects, removals, deadlines and clears, with
 * every key read back after each step. Keys come from a small alphabet so that sequences overwrite and
 * remove the same keys, and long runs grow the slot table and shift entries back on removal.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Keyspace, T_OBJECT, T_STRING, type KvKeyspace } from '../../src/apps/kv-keyspace.js';
import { ShmKeyspace, type ObjectCodec } from '../../src/apps/kv-shm.js';

/** Objects here are { key } records; the shared keyspace stores them encoded. */
const jsonCodec: ObjectCodec<object> = {
  encode: (o) => Buffer.from(JSON.stringify(o)),
  decode: (b) => JSON.parse(b.toString()) as object,
};

/**
 * Both keyspaces kv can run on, against the same model: one isolate's, and the shared one (over a
 * SharedArrayBuffer here), whose every operation is a command between enter() and leave().
 */
const KINDS: [name: string, make: () => KvKeyspace<object>][] = [
  ['kv keyspace', () => new Keyspace<object>()],
  ['kv shared keyspace', () => new ShmKeyspace<object>(new SharedArrayBuffer(32 << 20), jsonCodec)],
];

interface Model {
  type: number;
  value: string; // latin1 bytes of a string value
  obj?: object;
  deadline: number;
}

const keyArb = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[ab\x00\xff]{0,3}$/) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 40 }) },
);
// Value lengths that land in many size classes, at class edges, and past the largest class (big records).
const valueArb = fc.oneof(
  fc.string({ unit: 'binary-ascii', maxLength: 20 }),
  fc.integer({ min: 0, max: 1100 }).map((n) => 'v'.repeat(n)),
  fc.constantFrom(1000, 1012, 1013, 2000, 5000).map((n) => 'x'.repeat(n)),
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('set' as const), key: keyArb, value: valueArb, keep: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('obj' as const), key: keyArb }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('remove' as const), key: keyArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('deadline' as const), key: keyArb, when: fc.integer({ min: 1, max: 1e9 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('persist' as const), key: keyArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('clear' as const) }) },
);

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

function check(ks: KvKeyspace<object>, model: Map<string, Model>, probes: string[]): void {
  assert.equal(ks.count, model.size);
  assert.equal(ks.expiringCount, [...model.values()].filter((m) => m.deadline !== 0).length);
  for (const [k, m] of model) {
    // Look the key up at an offset inside a larger buffer, as an engine's read buffer would hold it.
    const buf = Buffer.concat([bytes('##'), bytes(k), bytes('#')]);
    const id = ks.find(buf, 2, 2 + buf.length - 3);
    assert.ok(id >= 0, `key ${JSON.stringify(k)} is found`);
    assert.equal(ks.type(id), m.type);
    assert.equal(ks.deadlineOf(id), m.deadline);
    if (m.type === T_STRING) {
      assert.equal(ks.foundLen, m.value.length);
      assert.equal(ks.foundBuf.toString('latin1', ks.foundValue, ks.foundValue + ks.foundLen), m.value);
      assert.equal(ks.value(id).toString('latin1'), m.value);
    } else {
      assert.equal(ks.foundLen, -1);
      assert.deepEqual(ks.object(id), m.obj);
    }
  }
  for (const k of probes) if (!model.has(k)) assert.equal(ks.find(bytes(k), 0, k.length), -1, `key ${JSON.stringify(k)} is absent`);
}

type Op =
  | { op: 'set'; key: string; value: string; keep: boolean }
  | { op: 'obj' | 'remove' | 'persist'; key: string }
  | { op: 'deadline'; key: string; when: number }
  | { op: 'clear' };

function apply(ks: KvKeyspace<object>, model: Map<string, Model>, o: Op): void {
  if (!(ks instanceof ShmKeyspace)) return applyIn(ks, model, o);
  ks.enter();
  try {
    applyIn(ks, model, o);
  } finally {
    ks.leave();
  }
}

function applyIn(ks: KvKeyspace<object>, model: Map<string, Model>, o: Op): void {
  if (o.op === 'clear') {
    ks.clear();
    model.clear();
    return;
  }
  const k = bytes(o.key);
  const id = ks.find(k, 0, k.length);
  const m = model.get(o.key);
  assert.equal(id >= 0, m !== undefined);
  switch (o.op) {
    case 'set': {
      const v = bytes(o.value);
      ks.setString(k, 0, k.length, v, 0, v.length, o.keep);
      model.set(o.key, { type: T_STRING, value: o.value, deadline: o.keep && m ? m.deadline : 0 });
      break;
    }
    case 'obj':
      if (m !== undefined) break; // addObject is for missing keys only
      {
        const obj = { key: o.key };
        ks.addObject(k, 0, k.length, obj);
        model.set(o.key, { type: T_OBJECT, value: '', obj, deadline: 0 });
      }
      break;
    case 'remove':
      if (m === undefined) break;
      ks.remove(id);
      model.delete(o.key);
      break;
    case 'deadline':
      if (m === undefined) break;
      ks.setDeadline(id, o.when);
      m.deadline = o.when;
      break;
    case 'persist':
      if (m === undefined) break;
      assert.equal(ks.clearDeadline(id), m.deadline !== 0);
      m.deadline = 0;
      break;
  }
}

for (const [name, make] of KINDS) describe(name, () => {
  test('random operations agree with a Map', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
        const ks = make();
        const model = new Map<string, Model>();
        const probes = ops.flatMap((o) => ('key' in o ? [o.key] : []));
        for (const o of ops) {
          apply(ks, model, o);
          check(ks, model, probes);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('thousands of keys: the slot table grows, removals shift runs back, ids and slab places are reused', () => {
    const ks = make();
    const model = new Map<string, Model>();
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 6000; i++) {
        const key = `k${rand(4000)}`;
        const r = rand(10);
        if (r < 6) apply(ks, model, { op: 'set', key, value: 'v'.repeat(rand(r === 0 ? 3000 : 40)), keep: false });
        else if (r < 9) apply(ks, model, { op: 'remove', key });
        else apply(ks, model, { op: 'deadline', key, when: 1 + rand(1000) });
      }
      check(ks, model, ['nope', 'k-1', 'k4000']);
    }
    // Remove everything: the table must end empty and every key must read as missing.
    for (const key of [...model.keys()]) apply(ks, model, { op: 'remove', key });
    check(ks, model, ['k1', 'k2', 'k3999']);
    assert.equal(ks.count, 0);
  });

  test('binary keys that differ only in length or in one byte are distinct', () => {
    const ks = make();
    const keys = [Buffer.alloc(0), Buffer.from([0]), Buffer.from([0, 0]), Buffer.from([0xff]), Buffer.from([0, 0xff]), Buffer.from('a\r\nb')];
    keys.forEach((k, i) => ks.setString(k, 0, k.length, Buffer.from(`v${i}`), 0, 2));
    keys.forEach((k, i) => {
      const id = ks.find(k, 0, k.length);
      assert.ok(id >= 0);
      assert.equal(ks.value(id).toString(), `v${i}`);
    });
    assert.equal(ks.count, keys.length);
  });
});
