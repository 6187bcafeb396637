/** `iolab bench` end to end on a tiny budget, and Ctrl-C leaving no process behind. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from '../helpers/server.js';

/** Live (non-zombie) processes whose environment marks them as started by lab `pid`. */
function childrenOfLab(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const env = readFileSync(`/proc/${d}/environ`, 'latin1');
      if (!env.includes(`IOLAB_EXIT_WITH_PARENT=${pid}\0`)) continue;
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z') out.push(Number(d));
    } catch {
      /* gone or not ours */
    }
  }
  return out;
}

describe('iolab bench', () => {
  it('a bad argument is a usage error (exit 2) that names the flag, before anything is written', () => {
    const parent = mkdtempSync(join(tmpdir(), 'iolab-bench-usage-'));
    try {
      const out = join(parent, 'results');
      for (const [args, says] of [
        [['--scenarios', 'nope'], /unknown scenario "nope"; choose from: throughput, /],
        [['--engines', 'epoll,nope'], /unknown engine "nope"/],
        [['--peers', 'httpd'], /unknown peer "httpd"/],
        [['--duration', 'abc'], /--duration must be a number above 0, e\.g\. --duration 2; got "abc"/],
        [['--repeats', '1.5'], /--repeats must be a whole number above 0/],
        [['--budget', '-3'], /--budget must be a number above 0/],
        [['--memory-share', '2'], /--memory-share must be a fraction/],
      ] as const) {
        const r = spawnSync(process.execPath, [CLI, 'bench', ...args, '--out', out], { encoding: 'utf8', timeout: 20_000 });
        assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, says, args.join(' '));
        assert.equal(existsSync(out), false, `${args.join(' ')} wrote ${out}`);
      }
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });

  it('runs end to end on a tiny budget and writes results.json, report.md and report.html', { timeout: 180_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), 'iolab-bench-test-'));
    try {
      const child = spawn(process.execPath, [CLI, 'bench', '--quick', '--engines', 'epoll,poll', '--peers', 'none',
        '--scenarios', 'throughput,idle,blocking-handler', '--duration', '0.5', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '', stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d));
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      const code = await new Promise<number | null>((r) => child.once('exit', r));
      assert.equal(code, 0, stderr);
      const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
      assert.equal(results.schema, 'iolab.results/1');
      const tp = results.results.filter((r: { scenario: string; status: string }) => r.scenario === 'throughput' && r.status === 'ok');
      assert.ok(tp.length >= 2, 'throughput measured for both engines');
      for (const r of tp) assert.ok(r.median.rps > 0 && r.median.syscallsPerReq > 0, JSON.stringify(r.median));
      assert.ok(results.results.some((r: { scenario: string }) => r.scenario === 'idle'));
      assert.ok(results.results.some((r: { scenario: string; params: { work?: string } }) => r.scenario === 'blocking-handler' && r.params.work === 'blocking:1ms'));
      assert.equal(results.claims.length, 9);
      assert.ok(existsSync(join(out, 'report.html')));
      const md = readFileSync(join(out, 'report.md'), 'utf8');
      for (const id of ['C1', 'C4', 'C8']) assert.ok(md.includes(id), `${id} in report.md`);
      assert.match(stdout, /C8/);
      assert.match(stderr, /throughput http epoll/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('Ctrl-C mid-run stops every server it started: no stray process survives', { timeout: 60_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), 'iolab-bench-test-'));
    try {
      const child = spawn(process.execPath, [CLI, 'bench', '--quick', '--engines', 'epoll', '--peers', 'none', '--scenarios', 'throughput', '--duration', '5', '--out', out],
        { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      await new Promise<void>((resolve) => {
        child.stderr.on('data', (d: Buffer) => {
          stderr += d;
          if (/throughput http epoll/.test(stderr)) resolve();
        });
      });
      await new Promise((r) => setTimeout(r, 1500)); // the server and the load are running now
      assert.ok(childrenOfLab(child.pid!).length >= 1, 'the lab has a server running');
      child.kill('SIGINT');
      const code = await new Promise<number | null>((r) => child.once('exit', r));
      assert.equal(code, 130);
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(childrenOfLab(child.pid!), []);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
