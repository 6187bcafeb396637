/**
 * `iolab trace` from the command line (text, side by side, --json with its schema), IOLAB_TRACE by hand
 * (SIGUSR2 flushes; worker threads' records reach the same file), and the report's traces section.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { TraceSummary } from '../../src/lab/results.js';
import { renderHtml, renderMarkdown, renderTerminal } from '../../src/report/index.js';
import { parseTrace } from '../../src/sys/trace.js';
import { runTrace } from '../../src/trace/index.js';
import { exchange } from '../helpers/server.js';
import { buildResults } from '../report/fixtures.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function iolab(args: string[], timeoutMs = 30_000): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: timeoutMs });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

describe('iolab trace (cli)', () => {
  it('prints one connection by phase, with totals and the one-request picture', () => {
    const r = iolab(['trace', '--engine', 'epoll', '--app', 'echo', '--requests', '2']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /iolab trace: epoll — multiplexing, app echo, 2 requests on 1 connection/);
    assert.match(r.stdout, /accept4\(\d+, SOCK_NONBLOCK\|SOCK_CLOEXEC\) = \d+/);
    assert.match(r.stdout, /wait for data\s+epoll_wait/);
    for (const p of ['accept', 'wait for data', 'read', 'app', 'write', 'close']) assert.match(r.stdout, new RegExp(`^  ${p}\\s+\\d+\\s+`, 'm'));
    assert.match(r.stdout, /One request: epoll_wait → ready IN → read → app → write/);
  });

  it('--json follows docs/trace-json.md (iolab.trace/1); --raw adds every record', () => {
    const r = iolab(['trace', '--engine', 'poll', '--app', 'kv', '--json', '--raw']);
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { schema: string; traces: TraceSummary[]; records: unknown[] };
    assert.equal(j.schema, 'iolab.trace/1');
    assert.equal(j.traces.length, 1);
    const t = j.traces[0]!;
    assert.equal(t.status, 'ok');
    assert.equal(t.engine, 'poll');
    assert.equal(t.app, 'kv');
    assert.deepEqual(t.phases.map((p) => p.phase), ['accept', 'wait', 'read', 'app', 'write', 'close']);
    for (const k of ['syscalls', 'callsPerRequest', 'eagain', 'waits', 'sqes', 'cqes', 'kernelUs', 'userUs', 'lifeUs']) {
      assert.equal(typeof (t.totals as unknown as Record<string, unknown>)[k], 'number', k);
    }
    for (const s of t.steps) {
      assert.equal(typeof s.atUs, 'number');
      assert.equal(typeof s.text, 'string');
      assert.ok(['accept', 'wait', 'read', 'app', 'write', 'close'].includes(s.phase));
    }
    assert.ok(Array.isArray(j.records) && j.records.length > t.steps.length);
  });

  it('--engines a,b prints them side by side; a bad engine is a usage error', () => {
    const r = iolab(['trace', '--engines', 'epoll,threads']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /One connection, traced: what each model asks the kernel/);
    assert.match(r.stdout, /^epoll\s+multiplexing\s+[\d.]+\s+0\s+\d+/m);
    assert.match(r.stdout, /^threads\s+blocking\s+3\.0\s+0\s+0\s+.*read → app → write/m);
    const bad = iolab(['trace', '--engine', 'nope']);
    assert.equal(bad.status, 2);
  });
});

describe('IOLAB_TRACE by hand', () => {
  it('serve appends NDJSON on SIGUSR2 and at stop; records of worker threads land in the same file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iolab-trace-test-'));
    const file = join(dir, 't.ndjson');
    const child = spawn(process.execPath, [CLI, 'serve', '--engine', 'epoll', '--workers', '2', '--app', 'echo', '--port', '0', '--json', '--quiet'], {
      env: { ...process.env, IOLAB_TRACE: file },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    try {
      const first = await new Promise<{ port: number }>((res, rej) => {
        createInterface({ input: child.stdout! }).once('line', (l) => res(JSON.parse(l)));
        child.once('exit', (c) => rej(new Error(`serve exited ${c}`)));
      });
      // A few connections, so both loops (SO_REUSEPORT) are likely to serve one.
      for (let i = 0; i < 6; i++) {
        const r = await exchange(first.port, `ping ${i}\n`, { end: true, timeoutMs: 2000 });
        assert.equal(r.data.toString(), `ping ${i}\n`);
      }
      child.kill('SIGUSR2');
      let recs = parseTrace(existsSync(file) ? readFileSync(file, 'utf8') : '');
      for (let i = 0; i < 100 && !recs.some((r) => r.sys === 'read' && r.res > 0); i++) {
        await new Promise((r) => setTimeout(r, 20));
        recs = parseTrace(existsSync(file) ? readFileSync(file, 'utf8') : '');
      }
      assert.ok(recs.some((r) => r.sys === 'read' && r.res > 0), 'reads are in the file before the server stops');
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
      recs = parseTrace(readFileSync(file, 'utf8'));
      // The main thread (setup) and both loop threads wrote to the same file.
      const tids = new Set(recs.map((r) => r.tid));
      assert.ok(tids.size >= 3, `records from ${tids.size} threads`);
      assert.ok(recs.every((r) => r.pid === child.pid));
      const served = new Set(recs.filter((r) => r.sys === 'read' && r.res > 0).map((r) => r.tid));
      assert.ok(served.size >= 1);
      assert.equal(recs.filter((r) => r.sys === 'accept4' && r.res >= 0).length, 6);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('report: traces section', () => {
  it('terminal and markdown get the side-by-side table, HTML a sequence diagram per model; absent when not traced', async () => {
    const plain = buildResults();
    assert.doesNotMatch(renderTerminal(plain, { color: false }), /One connection, traced/);
    assert.doesNotMatch(renderMarkdown(plain), /One connection, traced/);
    assert.doesNotMatch(renderHtml(plain), /trace-seq/);

    const { summary } = await runTrace({ engine: 'epoll', app: 'hello', requests: 2 });
    const skipped: TraceSummary = { ...summary, engine: 'node', ran: 'node', model: 'reference', status: 'skipped', reason: 'libuv makes the calls', steps: [], request: [] };
    const r = { ...plain, traces: [summary, skipped] };
    const term = renderTerminal(r, { color: false });
    assert.match(term, /One connection, traced: what each model asks the kernel/);
    assert.match(term, /^epoll\s+multiplexing/m);
    assert.match(term, /skipped: libuv makes the calls/);
    const md = renderMarkdown(r);
    assert.match(md, /### One connection, traced/);
    assert.match(md, /\| epoll \| multiplexing \| [\d.]+ \| 0 \|/);
    const html = renderHtml(r);
    assert.equal((html.match(/<svg[^>]*class="trace-seq"/g) ?? []).length, 1, 'one diagram (the skipped engine has none)');
    assert.match(html, /data-trace="epoll"/);
    assert.match(html, /epoll_wait\(/);
    assert.match(html, /app: [\d.]+ (µs|ms) in user space/);
  });
});
