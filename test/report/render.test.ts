/** Terminal and markdown reports, compare, results files (write, read, schema check), and the CLI. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  readResults, renderCompare, renderMarkdown, renderTerminal, ResultsFileError, writeReports,
} from '../../src/report/index.js';
import { visibleLength } from '../../src/report/format.js';
import type { LabResults } from '../../src/lab/results.js';
import { buildResults, clone, patch, remove } from './fixtures.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const IDS = ['C1', 'C2', 'C3', 'C4', 'C5', 'C6', 'C7', 'C8', 'C9'];

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'iolab-report-'));
}

/** A run where only the throughput scenario was measured; the rest skipped with reasons. */
function partial(): LabResults {
  const r = buildResults({ static: false });
  r.results = r.results
    .filter((s) => s.scenario === 'throughput' || s.scenario === 'scaling' || s.scenario === 'idle' || s.scenario === 'blocking-handler')
    .map((s) =>
      s.scenario === 'throughput'
        ? s
        : { ...s, status: 'skipped' as const, reason: 'budget: 150 s spent', median: null, samples: [], idle: undefined, breaking: undefined },
    );
  return r;
}

describe('terminal report', () => {
  it('rebuilds the article\'s two tables with measured columns, lists every claim with its verdict', () => {
    const out = renderTerminal(buildResults(), { color: false });
    for (const id of IDS) assert.match(out, new RegExp(`^${id}  CONFIRMED`, 'm'));
    assert.match(out, /When each shines/);
    assert.match(out, /^Blocking \+\s+<1000 connections, simple\s+threads\s+30,000\s+5\.5 ms\s+2,000\s+4,000: memory guard/m);
    assert.match(out, /10k-1M connections/);
    assert.match(out, /IOCP \(Windows\)/);
    assert.match(out, /Cost per connection/);
    assert.match(out, /^Thread-per-\s+~10MB RAM, plus\s+threads\s+1,000\s+8\.6 MB\s+2\.3 KB\s+1\s+2\.1$/m);
    assert.match(out, /Throughput and cost per request/);
    // a measured row: epoll over HTTP at 100 connections
    assert.match(out, /^epoll\s+http\s+100\s+48,000\s+3\.2 ms\s+9 µs\s+2\.1\s+0\.02\s+60 MB/m);
    assert.ok(!out.includes('\x1b['), 'no colour when asked for none');
  });

  it('fits in 120 columns, with or without colour', () => {
    for (const color of [false, true]) {
      const out = renderTerminal(buildResults(), { color });
      for (const line of out.split('\n')) assert.ok(visibleLength(line) <= 120, `${visibleLength(line)} > 120: ${line}`);
      if (color) assert.match(out, /\x1b\[32mCONFIRMED\x1b\[0m/);
    }
  });

  it('renders partial and empty results, saying why a table is empty', () => {
    const out = renderTerminal(partial(), { color: false });
    for (const id of IDS) assert.match(out, new RegExp(`^${id}  `, 'm'));
    assert.match(out, /\(blocking-handler: nothing measured \(skipped: budget: 150 s spent\)\)/);
    const empty = buildResults();
    empty.results = [];
    const e = renderTerminal(empty, { color: false });
    assert.match(e, /\(throughput: not in this run\)/);
    assert.equal(e.match(/NOT MEASURED/g)?.length, 9);
  });
});

describe('markdown report', () => {
  it('has the machine, every claim, and the same tables as markdown', () => {
    const md = renderMarkdown(buildResults());
    assert.match(md, /^# iolab report/m);
    assert.match(md, /^### Machine$/m);
    assert.match(md, /^\| Kernel \| 6\.18\.0 \(x64\) \|$/m);
    for (const id of IDS) assert.match(md, new RegExp(`^\\| ${id} \\| .* \\| \\*\\*confirmed\\*\\* \\| `, 'm'));
    assert.match(md, /^### When each shines/m);
    assert.match(md, /^### Cost per connection/m);
    assert.match(md, /^\| Model \| Article's sweet spot \| Target \| req\/s @100 \|/m);
    assert.match(md, /^\| Thread-per-connection \| ~10MB RAM, plus context switch every syscall \| threads \| 1,000 \| 8\.6 MB \|/m);
    assert.match(md, /^## How each verdict is decided/m);
    // every table row has as many cells as its header
    for (const block of md.split('\n\n').filter((b) => b.startsWith('| '))) {
      const rows = block.split('\n').filter((l) => l.startsWith('|'));
      const n = (l: string): number => l.replace(/\\\|/g, '').split('|').length;
      for (const row of rows) assert.equal(n(row), n(rows[0]!), row);
    }
  });
});

describe('compare', () => {
  it('shows B\'s figures with B/A ratios and the claims whose verdict changed', () => {
    const a = buildResults();
    const b = clone(a);
    b.startedAt = '2025-11-27T02:00:00.000Z';
    patch(b, { name: 'epoll', scenario: 'throughput', protocol: 'http' }, { rps: 52_800 });
    patch(b, { name: 'io_uring', protocol: 'http' }, { syscallsPerReq: 2.4 });
    for (const s of b.results) if (s.scenario === 'idle' && s.target.name === 'epoll') s.idle!.rssPerConnBytes = 2.2 * 1024;
    const out = renderCompare(a, b);
    assert.match(out, /^throughput\s+epoll\s+http\s+100\s+52,800 \(1\.10x\)\s+3\.2 ms \(1\.00x\)/m);
    assert.match(out, /^throughput\s+io_uring\s+http\s+100\s+52,000 \(1\.00x\)\s+2\.9 ms \(1\.00x\)\s+7\.5 µs \(1\.00x\)\s+2\.4 \(6\.86x\)$/m);
    assert.match(out, /^epoll\s+10,000\s+2\.2 KB \(2\.00x\)/m);
    assert.match(out, /^C4  verdict changed: confirmed -> refuted/m);
    assert.match(out, /Unchanged: C1 confirmed, C2 confirmed, C3 confirmed, C5 confirmed/);
    for (const line of out.split('\n')) assert.ok(visibleLength(line) <= 120, line);
  });

  it('lists what only one side measured, and says so when nothing changed', () => {
    const a = buildResults();
    const b = clone(a);
    remove(b, (s) => s.target.name === 'nginx');
    const out = renderCompare(a, b);
    assert.match(out, /Only in A \(4\): throughput nginx http @100, scaling nginx http @10,000, idle nginx http @10,000, idle nginx http @150,000/);
    assert.match(out, /^nginx\s+150,000\s+-\s+-/m);
    const same = renderCompare(a, clone(a));
    assert.match(same, /No verdict changed \(C1 confirmed, C2 confirmed/);
  });
});

describe('results files', () => {
  it('writeReports writes results.json (with claims), report.md and report.html; readResults reads it back', () => {
    const dir = tmp();
    try {
      const p = writeReports(buildResults(), join(dir, 'out'));
      for (const f of [p.json, p.md, p.html]) assert.ok(existsSync(f), f);
      const back = readResults(p.json);
      assert.equal(back.claims?.length, 9);
      assert.equal(back.results.length, buildResults().results.length);
      assert.match(readFileSync(p.md, 'utf8'), /^# iolab report/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a wrong file or version gives a clear error', () => {
    const dir = tmp();
    try {
      const write = (name: string, v: unknown): string => {
        const f = join(dir, name);
        writeFileSync(f, typeof v === 'string' ? v : JSON.stringify(v));
        return f;
      };
      const cases: [string, RegExp][] = [
        [join(dir, 'absent.json'), /absent\.json: no such file \(run `iolab bench` to make one\)/],
        [write('garbage.json', 'not json {'), /garbage\.json: not JSON \(.*\); expected a results\.json written by `iolab bench`/],
        [write('pkg.json', { name: 'iolab', version: '0.1.0' }), /pkg\.json: not an iolab results file \(no "schema": "iolab\.results\/1"\)/],
        [write('v2.json', { ...buildResults(), schema: 'iolab.results/2' }), /v2\.json: results schema iolab\.results\/2, but this iolab reads iolab\.results\/1; re-run `iolab bench`/],
        [write('other.json', { schema: 'something/else' }), /not an iolab results file \(schema "something\/else", expected iolab\.results\/1\)/],
      ];
      const bad = buildResults() as unknown as { results: { params: Record<string, unknown> }[] };
      bad.results[0]!.params = { connections: '100' };
      cases.push([write('bad.json', bad), /bad\.json: malformed iolab\.results\/1 file: results\[0\]\.params\.connections: expected a number/]);
      for (const [file, re] of cases) {
        assert.throws(() => readResults(file), (e: unknown) => {
          assert.ok(e instanceof ResultsFileError, String(e));
          assert.match(e.message, re);
          return true;
        });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('iolab report / iolab compare (CLI)', () => {
  const run = (args: string[]): { code: number | null; out: string; err: string } => {
    const p = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, NO_COLOR: '1' } });
    return { code: p.status, out: p.stdout, err: p.stderr };
  };

  it('report prints the terminal report and writes report.md / report.html; compare prints ratios', () => {
    const dir = tmp();
    try {
      const a = join(dir, 'a.json');
      writeFileSync(a, JSON.stringify(buildResults()));
      const t = run(['report', a, '--format', 'terminal']);
      assert.equal(t.code, 0, t.err);
      for (const id of IDS) assert.match(t.out, new RegExp(`^${id}  CONFIRMED`, 'm'));
      assert.ok(!existsSync(join(dir, 'report.md')), 'terminal format writes nothing');

      const all = run(['report', a, '--out', join(dir, 'out')]);
      assert.equal(all.code, 0, all.err);
      for (const f of ['results.json', 'report.md', 'report.html']) assert.ok(existsSync(join(dir, 'out', f)), f);
      assert.match(all.out, /wrote .*results\.json/);

      const md = run(['report', a, '--format', 'md']);
      assert.equal(md.code, 0, md.err);
      assert.ok(existsSync(join(dir, 'report.md')));

      const b = clone(buildResults());
      patch(b, { name: 'epoll', scenario: 'throughput', protocol: 'http' }, { rps: 24_000 });
      writeFileSync(join(dir, 'b.json'), JSON.stringify(b));
      const c = run(['compare', a, join(dir, 'b.json')]);
      assert.equal(c.code, 0, c.err);
      assert.match(c.out, /24,000 \(0\.50x\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a wrong file exits 1 with the reason; a bad --format is a usage error (2)', () => {
    const dir = tmp();
    try {
      const f = join(dir, 'x.json');
      writeFileSync(f, JSON.stringify({ schema: 'iolab.results/9' }));
      const r = run(['report', f]);
      assert.equal(r.code, 1);
      assert.match(r.err, /^iolab: .*x\.json: results schema iolab\.results\/9, but this iolab reads iolab\.results\/1/m);
      const u = run(['report', f, '--format', 'pdf']);
      assert.equal(u.code, 2);
      assert.match(u.err, /Allowed choices are terminal, md, html, all/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
