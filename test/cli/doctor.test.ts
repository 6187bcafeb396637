/** `iolab doctor`: every check read from this machine, in text and JSON, the L3 cache among them. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { CLI } from '../helpers/server.js';

interface Check { name: string; value: string; ok: boolean; advice?: string }

describe('iolab doctor', () => {
  it('--json lists the checks with what it read here, and exits 0', { timeout: 60_000 }, () => {
    const r = spawnSync(process.execPath, [CLI, 'doctor', '--json'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const { version, checks } = JSON.parse(r.stdout) as { version: number; checks: Check[] };
    assert.equal(version, 1);
    const by = (name: string): Check => {
      const c = checks.find((x) => x.name === name);
      assert.ok(c, `no ${name} check in ${checks.map((x) => x.name).join(', ')}`);
      return c;
    };
    assert.equal(by('kernel').value, `${os.type()} ${os.release()} (${os.arch()})`);
    assert.match(by('CPUs').value, new RegExp(`^${os.cpus().length} × `));
    assert.match(by('open files (RLIMIT_NOFILE)').value, /\d/);
    // Eight probe readings: a range of nanoseconds, and a verdict that agrees with its own text.
    const l3 = by('L3 cache (6 MB chase)');
    const m = /^(\d+)-(\d+) ns a load over 8 readings in [\d.]+ s(; (\d) above twice the best|, steady)$/.exec(l3.value);
    assert.ok(m, l3.value);
    assert.ok(Number(m[1]) <= Number(m[2]) && Number(m[1]) > 0, l3.value);
    assert.equal(l3.ok, m[3] === ', steady');
    assert.equal(l3.advice !== undefined, !l3.ok);
    // kv's shared keyspace needs a memfd; a test machine has one (the kv suites use it).
    assert.equal(by('shared memory (memfd)').ok, true, by('shared memory (memfd)').value);
    for (const c of checks) assert.equal(typeof c.ok, 'boolean', c.name);
  });

  it('prints one line a check, ok or warn, with advice under each warning', { timeout: 60_000 }, () => {
    const r = spawnSync(process.execPath, [CLI, 'doctor'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.ok(lines.some((l) => /^ ok  +kernel +Linux /.test(l)), r.stdout);
    assert.ok(lines.some((l) => /^( ok |warn) +L3 cache \(6 MB chase\) +\d+-\d+ ns/.test(l)), r.stdout);
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i]!;
      assert.match(l, /^( ok |warn)  |^ +-> /, `line ${i}: ${l}`);
      if (l.startsWith('warn') && i + 1 < lines.length) assert.match(lines[i + 1]!, /^ +-> /, `a warning without advice: ${l}`);
    }
  });
});
