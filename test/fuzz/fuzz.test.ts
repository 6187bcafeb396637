/**
 * A bounded fuzz run of each parser (RELIABILITY.md "How we test"): every saved regression input in
 * test/fuzz/corpus/<target>/ is replayed, then ~2 s of fresh mutations. A finding fails the test and
 * is saved as a new regression case. Longer runs: `npm run fuzz -- --seconds 600` (bench/fuzz.ts).
 * IOLAB_FUZZ_SEED=<n> replays one run's inputs.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { checkOne, corpus, run, save, targets, type FuzzTarget } from './lib.js';

const MS = Number(process.env.IOLAB_FUZZ_MS ?? 2000);
/** CPU ms per input: generous, yet far below what a quadratic blow-up costs. */
const MAX_INPUT_MS = 250;

const all = await targets();

for (const t of all) {
  describe(`fuzz ${t.name}`, () => {
    let target: FuzzTarget;
    before(() => {
      target = t;
      assert.ok(target.seeds.length >= 4, `${t.name}: only ${target.seeds.length} seeds`);
    });

    it('replays every saved regression input: no throw, no contract violation, no slow parse', () => {
      for (const { file, input } of corpus(t.name)) {
        const f = checkOne(target, input, 1, MAX_INPUT_MS);
        assert.equal(f, null, `${file}: ${f?.kind}: ${f?.message}`);
      }
    });

    it(`${MS} ms of mutated golden inputs: no throw, no contract violation, no slow parse`, { timeout: MS + 60_000 }, () => {
      const seed = Number(process.env.IOLAB_FUZZ_SEED ?? Math.floor(Math.random() * 0x7fffffff));
      const r = run(target, { ms: MS, seed, maxInputMs: MAX_INPUT_MS, stopOnFinding: true });
      const f = r.findings[0];
      if (f) {
        const path = save(f);
        assert.fail(`${f.kind} after ${r.execs} inputs (IOLAB_FUZZ_SEED=${seed}); saved as ${path}: ${f.message}`);
      }
      assert.ok(r.execs > 0);
    });
  });
}
