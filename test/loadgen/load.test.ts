/**
 * `iolab load` against real servers over real sockets: iolab's own engines (test/helpers/server.ts),
 * redis-server when installed, and small node:net servers written here to misbehave on purpose
 * (a corrupting echo, an HTTP server that stalls once).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, has, CLI, type Served } from '../helpers/server.js';
import { load, listen, freePort, waitPort } from './cli.js';
import { runLoad, decodeHistogram, SCHEMA } from '../../src/loadgen/index.js';
import { probeIoUring } from '../../src/sys/io_uring.js';

function assertOrdered(l: { min: number; p50: number; p90: number; p99: number; 'p99.9': number; max: number }): void {
  assert.ok(l.min <= l.p50 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l['p99.9'] && l['p99.9'] <= l.max, `percentiles out of order: ${JSON.stringify(l)}`);
}

describe('iolab load: closed HTTP against epoll hello', () => {
  let srv: Served;
  before(async () => {
    srv = await startServer(['--engine', 'epoll', '--app', 'hello']);
  });
  after(async () => {
    await srv.stop();
  });

  it('zero errors, replies counted, percentiles ordered, JSON schema fields present', async () => {
    const r = await load([`http://127.0.0.1:${srv.port}/`, '-c', '16', '-d', '1500ms', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const j = r.json!;
    assert.equal(j.schema, SCHEMA);
    assert.equal(j.mode, 'closed');
    assert.equal(j.protocol, 'http');
    // The default backend is auto: io_uring where the kernel allows it (backends.test.ts runs both).
    assert.equal(j.backend, probeIoUring().ok ? 'io_uring' : 'epoll');
    assert.equal(j.ok, true);
    assert.equal(j.errors.total, 0, JSON.stringify(j.errors));
    assert.ok(j.requests.completed > 0);
    assert.ok(j.requests.perSec > 0);
    assert.equal(j.latency.count, j.requests.completed);
    assertOrdered(j.latency);
    assert.equal(j.connections.established, 16);
    // Every field the schema document promises.
    for (const k of ['schema', 'tool', 'mode', 'protocol', 'backend', 'targets', 'startedAt', 'ok', 'interrupted', 'deadlineHit', 'settings',
      'durationMs', 'connectMs', 'connections', 'requests', 'bytes', 'errors', 'latency', 'latencyUncorrected', 'connectLatency',
      'histograms', 'rate', 'hold', 'ramp', 'client', 'notes'] as const) {
      assert.ok(k in j, `missing ${k}`);
    }
    for (const k of ['refused', 'reset', 'timeout', 'protocol', 'wrong-reply', 'other', 'total', 'rate', 'byErrno', 'samples']) assert.ok(k in j.errors, `errors.${k}`);
    for (const k of ['count', 'min', 'mean', 'stdev', 'p50', 'p75', 'p90', 'p99', 'p99.9', 'p99.99', 'max', 'corrected']) assert.ok(k in j.latency, `latency.${k}`);
    assert.ok(j.bytes.sent > 0 && j.bytes.received > 0);
    assert.equal(decodeHistogram(j.histograms.latency).totalCount, j.requests.completed);
  });

  it('the human summary names throughput, percentiles, errors and bytes', async () => {
    const r = await load([`http://127.0.0.1:${srv.port}/`, '-c', '4', '-d', '500ms', '-p', '4']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /req\/s/);
    assert.match(r.stdout, /p50 .* p90 .* p99 .* p99\.9 .* max /);
    assert.match(r.stdout, /refused 0, reset 0, timeout 0, protocol 0, wrong-reply 0, other 0/);
    assert.match(r.stdout, /bytes +sent .* received /);
  });

  it('--requests stops at exactly that many replies; pipelining works', async () => {
    const r = await load([`http://127.0.0.1:${srv.port}/`, '-c', '8', '-p', '8', '-n', '5000', '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json!.requests.completed, 5000);
    assert.equal(r.json!.requests.sent, 5000);
    assert.equal(r.json!.errors.total, 0);
  });

  it('an unexpected status is a wrong-reply error and exit 1', async () => {
    const r = await load([`http://127.0.0.1:${srv.port}/nowhere`, '-c', '2', '-n', '100', '--json']);
    assert.equal(r.status, 1);
    assert.equal(r.json!.errors['wrong-reply'], 100);
    assert.match(r.json!.errors.samples.join(' '), /HTTP status 404/);
    const ok = await load([`http://127.0.0.1:${srv.port}/nowhere`, '-c', '2', '-n', '100', '--expect-status', '404', '--json']);
    assert.equal(ok.status, 0);
  });

  it('the module API runs the same load in-process', async () => {
    const r = await runLoad({ targets: `http://127.0.0.1:${srv.port}/`, connections: 4, duration: '300ms' });
    assert.equal(r.errors.total, 0);
    assert.ok(r.requests.completed > 0);
  });

  it('--procs 2 merges the histograms exactly (total count = sum over processes)', async () => {
    const r = await load([`http://127.0.0.1:${srv.port}/`, '-c', '10', '-d', '1s', '--procs', '2', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const j = r.json!;
    assert.equal(j.client.processes, 2);
    assert.equal(j.client.perProcess.length, 2);
    const sum = j.client.perProcess.reduce((a, p) => a + p.completed, 0);
    assert.ok(j.client.perProcess.every((p) => p.completed > 0));
    assert.equal(j.requests.completed, sum);
    assert.equal(j.latency.count, sum);
    assert.equal(decodeHistogram(j.histograms.latency).totalCount, sum);
    assert.equal(j.connections.established, 10);
    assert.equal(j.errors.total, 0);
  });

  it('hold keeps 2,000 connections with 0 failures, then a trickle is answered', async () => {
    const r = await load(['hold', `http://127.0.0.1:${srv.port}/`, '-c', '2000', '--connect-rate', '10000', '-d', '1500ms', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const h = r.json!.hold!;
    assert.equal(h.held, 2000);
    assert.equal(h.established, 2000);
    assert.equal(h.lost, 0);
    assert.equal(r.json!.errors.total, 0);
    const t = await load(['hold', `http://127.0.0.1:${srv.port}/`, '-c', '500', '--interval', '500ms', '-d', '1500ms', '--json']);
    assert.equal(t.status, 0, t.stderr);
    assert.equal(t.json!.hold!.held, 500);
    assert.ok(t.json!.requests.completed >= 1000, `trickle replies: ${t.json!.requests.completed}`);
    assert.ok(t.json!.latency.count > 0);
  });

  it('Ctrl-C stops cleanly: partial result printed, exit 130, child processes reaped', async () => {
    const child = spawn(process.execPath, [CLI, 'load', `http://127.0.0.1:${srv.port}/`, '-c', '4', '-d', '30s', '--procs', '2', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    // Wait until both load processes run (their pids are the parent's children), then interrupt.
    const kids = (): number[] => {
      const r = spawnSync('pgrep', ['-P', String(child.pid)]);
      return r.stdout.toString().trim().split(/\s+/).filter(Boolean).map(Number);
    };
    for (let i = 0; i < 100 && kids().length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    const pids = kids();
    assert.equal(pids.length, 2);
    await new Promise((r) => setTimeout(r, 1000));
    child.kill('SIGINT');
    assert.equal(await code, 130);
    const j = JSON.parse(out);
    assert.equal(j.interrupted, true);
    assert.ok(j.requests.completed > 0);
    assert.ok(j.durationMs < 30_000);
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `load process ${pid} still alive`);
  });

  it('--hdr-log writes an HdrHistogram interval log', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iolab-hdr-'));
    try {
      const file = join(dir, 'lat.hlog');
      const r = await load([`http://127.0.0.1:${srv.port}/`, '-c', '2', '-d', '2200ms', '--hdr-log', file]);
      assert.equal(r.status, 0, r.stderr);
      const text = readFileSync(file, 'utf8');
      assert.match(text, /#\[StartTime: /);
      assert.match(text, /"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"/);
      const lines = text.split('\n').filter((l) => /^\d/.test(l));
      assert.ok(lines.length >= 2, text);
      assert.match(lines[0]!, /^[\d.]+,[\d.]+,[\d.]+,HIST/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ramp reports the step that breaks the SLO and why', async () => {
    // An SLO no real server meets (p99 <= 1 us) breaks at the first step.
    const r = await load(['ramp', `http://127.0.0.1:${srv.port}/`, '--steps', '2,4', '--step-duration', '300ms', '--slo-p99', '0.001ms', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const ramp = r.json!.ramp!;
    assert.equal(ramp.steps.length, 1);
    assert.equal(ramp.breakingPoint!.value, 2);
    assert.match(ramp.breakingPoint!.reason, /p99 .* > 0\.001 ms/);
    const ok = await load(['ramp', `http://127.0.0.1:${srv.port}/`, '--steps', '2,4', '--step-duration', '300ms', '--slo-p99', '10s', '--json']);
    assert.equal(ok.json!.ramp!.breakingPoint, null);
    assert.equal(ok.json!.ramp!.lastGood, 4);
  });
});

describe('iolab load: refused connections and usage', () => {
  it('nothing listening: refused errors, exit 1', async () => {
    const port = await freePort();
    const r = await load([`http://127.0.0.1:${port}/`, '-c', '2', '-d', '300ms', '--json']);
    assert.equal(r.status, 1);
    assert.ok(r.json!.errors.refused > 0);
    assert.equal(r.json!.connections.established, 0);
  });

  it('usage errors exit 2 with a message', async () => {
    const a = await load(['rate', 'http://127.0.0.1:1/']);
    assert.equal(a.status, 2);
    assert.match(a.stderr, /rate mode needs --rate/);
    const b = await load(['http://127.0.0.1:1/', '--bogus']);
    assert.equal(b.status, 2);
    const c = await load([]);
    assert.equal(c.status, 2);
    const d = await load(['ftp://127.0.0.1:1/']);
    assert.equal(d.status, 2);
    assert.match(d.stderr, /unknown scheme/);
  });
});

describe('iolab load: echo verifies every byte', () => {
  it('against the epoll echo server: zero errors, every byte back', async () => {
    const srv = await startServer(['--engine', 'epoll', '--app', 'echo']);
    try {
      const r = await load([`tcp://127.0.0.1:${srv.port}`, '--size', '3000', '-c', '4', '-p', '4', '-n', '4000', '--json']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.json!.errors.total, 0);
      assert.equal(r.json!.requests.completed, 4000);
      assert.equal(r.json!.bytes.received, 4000 * 3000);
    } finally {
      await srv.stop();
    }
  });

  it('a server that flips one byte is caught: wrong-reply > 0', async () => {
    let seen = 0;
    const server = net.createServer((s) => {
      s.on('data', (d: Buffer) => {
        seen += d.length;
        // Flip a byte now and then, after the first few KB.
        if (seen > 20_000 && seen % 7 === 0) d[d.length >> 1]! ^= 0x40;
        s.write(d);
      });
      s.on('error', () => {});
    });
    const port = await listen(server);
    try {
      const r = await load([`tcp://127.0.0.1:${port}`, '--size', '512', '-c', '2', '-n', '2000', '--timeout', '1000ms', '--json']);
      assert.equal(r.status, 1);
      assert.ok(r.json!.errors['wrong-reply'] > 0, JSON.stringify(r.json!.errors));
      assert.match(r.json!.errors.samples.join(' '), /echo: byte \d+ of reply \d+ differs/);
    } finally {
      server.close();
    }
  });
});

describe('iolab load: RESP SET/GET', () => {
  const templates = ['--command', 'SET key:__rand_int__ __data__', '--command', 'GET key:__rand_int__', '--data-size', '32'];

  it('against iolab kv, pipeline 1 and 16: zero errors', async () => {
    const srv = await startServer(['--engine', 'epoll', '--app', 'kv']);
    try {
      for (const p of ['1', '16']) {
        const r = await load([`redis://127.0.0.1:${srv.port}`, ...templates, '-c', '8', '-p', p, '-d', '800ms', '--json']);
        assert.equal(r.status, 0, r.stderr + r.stdout);
        assert.equal(r.json!.errors.total, 0, JSON.stringify(r.json!.errors));
        assert.ok(r.json!.requests.completed > 0);
      }
      // A wrong expectation is caught by type: GET answers a bulk, never +OK or an error.
      const bad = await load([`redis://127.0.0.1:${srv.port}`, '--command', 'NOSUCHCOMMAND x', '-c', '1', '-n', '10', '--json']);
      assert.equal(bad.status, 1);
      assert.equal(bad.json!.errors['wrong-reply'], 10);
    } finally {
      await srv.stop();
    }
  });

  it('against redis-server, pipeline 1 and 16: zero errors', { skip: has('redis-server') ? false : 'redis-server not installed (apt-get install redis-server)' }, async () => {
    const port = await freePort();
    const redis: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    try {
      await waitPort(port);
      for (const p of ['1', '16']) {
        const r = await load([`redis://127.0.0.1:${port}`, ...templates, '-c', '8', '-p', p, '-d', '800ms', '--json']);
        assert.equal(r.status, 0, r.stderr + r.stdout);
        assert.equal(r.json!.errors.total, 0, JSON.stringify(r.json!.errors));
        assert.ok(r.json!.requests.completed > 0);
      }
    } finally {
      redis.kill('SIGKILL');
    }
  });
});

describe('iolab load: coordinated omission', () => {
  it('a server that stalls once for 500 ms shows in the corrected p99 and max, not in the uncorrected p99', async () => {
    // A minimal HTTP/1.1 server that answers every request at once, except during one 500 ms window,
    // when it holds every answer and then sends them all: a GC pause, as a closed-loop client sees it.
    const RESPONSE = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
    let first = 0;
    let stallFrom = Infinity, stallTo = Infinity;
    const held: (() => void)[] = [];
    const server = net.createServer((s) => {
      let partial = '';
      s.setNoDelay(true);
      s.on('data', (d: Buffer) => {
        const now = Date.now();
        if (first === 0) {
          first = now;
          stallFrom = now + 1500;
          stallTo = stallFrom + 500;
          setTimeout(() => {
            for (const f of held.splice(0)) f();
          }, stallTo - now);
        }
        partial += d.toString('latin1');
        let n = 0;
        let i: number;
        while ((i = partial.indexOf('\r\n\r\n')) >= 0) {
          n++;
          partial = partial.slice(i + 4);
        }
        if (n === 0) return;
        const answer = (): void => void s.write(RESPONSE.repeat(n));
        if (now >= stallFrom && now < stallTo) held.push(answer);
        else answer();
      });
      s.on('error', () => {});
    });
    const port = await listen(server);
    try {
      // 1000 req/s over 8 connections for 4 s: 4000 requests, ~500 of them due during the stall. A
      // closed-loop view sees only the 8 requests in flight when it began (0.2% < 1%).
      const r = await load(['rate', `http://127.0.0.1:${port}/`, '-R', '1000', '-c', '8', '-d', '4s', '--json']);
      assert.equal(r.status, 0, r.stderr);
      const j = r.json!;
      assert.equal(j.errors.total, 0);
      assert.ok(j.requests.completed > 3500, `completed ${j.requests.completed}`);
      assert.equal(j.latency.corrected, true);
      const unc = j.latencyUncorrected!;
      assert.ok(j.latency.p99 >= 400_000, `corrected p99 ${j.latency.p99} us should show the stall`);
      assert.ok(j.latency.max >= 450_000, `corrected max ${j.latency.max} us`);
      assert.ok(unc.p99 < 100_000, `uncorrected p99 ${unc.p99} us should not show the stall`);
      // The requests in flight when the stall began did wait; nothing else in the uncorrected view did.
      assert.ok(unc.max >= 400_000, `uncorrected max ${unc.max} us`);
      assert.equal(j.rate!.target, 1000);
      assert.ok(j.rate!.achieved > 850, `achieved ${j.rate!.achieved}`);
    } finally {
      server.close();
    }
  });
});
