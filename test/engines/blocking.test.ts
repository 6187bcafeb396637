/**
 * The blocking engines' own behaviour, beyond the shared conformance suite: threads come and go with
 * connections, a bounded pool leaves the excess in the backlog, an unbounded one refuses past its
 * limit, prefork replaces a dead child, and no child process outlives the server (SIGTERM or SIGKILL).
 * wrk and redis-benchmark run against the bounded configurations within their limits.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { startServer, has, run, exchange, CLI, type Served } from '../helpers/server.js';

const dir = mkdtempSync(join(tmpdir(), 'iolab-blocking-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;

interface Started extends Served {
  statsFile: string;
}

/** startServer with extra environment (the child inherits ours) and a stats file. */
async function serveWith(env: Record<string, string>, args: string[]): Promise<Started> {
  const statsFile = join(dir, `stats-${++seq}.json`);
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  try {
    const s = await startServer([...args, '--stats-file', statsFile, '--quiet']);
    return { ...s, statsFile };
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

// Loose on purpose: the engines add a `pool` section that EngineStats does not declare (yet).
type Stats = {
  connections: { current: number; peak: number; total: number; refused: number };
  requests: number;
  threads: number;
  processes: number;
  pool: { connectionThreads?: number; idle?: number; pids?: number[]; waiting?: number; starting?: number };
};

function readStats(s: Started): Stats | null {
  try {
    return JSON.parse(readFileSync(s.statsFile, 'utf8')) as Stats;
  } catch {
    return null; // between the write and the rename
  }
}

/** Poll the stats file (written twice a second) until `pred` holds; fail with the last stats. */
async function statsUntil(s: Started, what: string, pred: (st: Stats) => boolean, ms = 8000): Promise<Stats> {
  const end = Date.now() + ms;
  let last: Stats | null = null;
  while (Date.now() < end) {
    last = readStats(s) ?? last;
    if (last && pred(last)) return last;
    await sleep(100);
  }
  assert.fail(`${what}: not within ${ms} ms; last stats ${JSON.stringify(last)}`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function osThreads(pid: number): number {
  return Number(/Threads:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1] ?? 0);
}

const alive = (pid: number): boolean => {
  try {
    // A zombie still has a /proc entry: count it as gone.
    return existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'latin1'));
  } catch {
    return false;
  }
};

/** Poll /proc until none of `pids` is alive, or give up after `ms`; returns the survivors. */
async function survivors(pids: number[], ms: number): Promise<number[]> {
  const end = Date.now() + ms;
  let left = pids.filter(alive);
  while (left.length > 0 && Date.now() < end) {
    await sleep(100);
    left = left.filter(alive);
  }
  return left;
}

/** A keep-alive connection that has had one request answered and stays open. */
async function openKeepAlive(port: number): Promise<net.Socket> {
  const c = net.connect(port, '127.0.0.1');
  await new Promise<void>((res, rej) => {
    c.once('error', rej);
    c.once('data', () => res());
    c.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
  });
  return c;
}

interface Probe {
  data: string;
  closed: boolean;
  sock: net.Socket;
}

/** Send one request; resolve after `ms` with a probe that keeps collecting what comes back. */
function requestWithin(port: number, req: string, ms: number): Promise<Probe> {
  return new Promise((resolve) => {
    const p: Probe = { data: '', closed: false, sock: net.connect(port, '127.0.0.1') };
    p.sock.on('data', (d) => (p.data += d.toString('latin1')));
    p.sock.on('error', () => (p.closed = true));
    p.sock.on('close', () => (p.closed = true));
    p.sock.write(req);
    setTimeout(() => resolve(p), ms);
  });
}

const GET = 'GET / HTTP/1.1\r\nHost: a\r\n\r\n';
const GET_CLOSE = 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n';

describe('threads: a thread per connection, pooled', () => {
  it('20 connections run on ~20 threads, which are released after close and an idle timeout', async () => {
    const s = await serveWith({ IOLAB_SPARE_THREADS: '2', IOLAB_THREAD_IDLE_MS: '300' }, ['--engine', 'threads', '--app', 'hello']);
    try {
      const before = osThreads(s.child.pid!);
      const conns = await Promise.all(Array.from({ length: 20 }, () => openKeepAlive(s.port)));
      // A burst waits in the engine's FIFO while threads start (at most a few at once): wait for it to drain.
      const busy = await statsUntil(s, '20 open connections, none waiting for a thread', (st) => st.connections.current === 20 && st.pool.waiting === 0 && st.pool.starting === 0);
      // 20 connection threads + the acceptor + the main thread.
      assert.ok(busy.threads >= 22 && busy.threads <= 24, `threads ${busy.threads}`);
      assert.equal(busy.pool.connectionThreads, busy.threads - 2);
      assert.ok(osThreads(s.child.pid!) >= before + 18, `OS threads ${before} -> ${osThreads(s.child.pid!)}`);
      for (const c of conns) c.destroy();
      const idle = await statsUntil(s, 'threads back to the 2 spares', (st) => st.connections.current === 0 && st.pool.connectionThreads === 2);
      assert.equal(idle.threads, 4);
      assert.equal(idle.connections.total, 20);
      // The OS threads are gone too, not just parked.
      const end = Date.now() + 3000;
      while (osThreads(s.child.pid!) > before && Date.now() < end) await sleep(100);
      assert.ok(osThreads(s.child.pid!) <= before, `OS threads ${before} -> ${osThreads(s.child.pid!)}`);
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });

  it('sequential connections reuse pooled threads (no thread per connection left behind)', async () => {
    const s = await serveWith({ IOLAB_SPARE_THREADS: '2' }, ['--engine', 'threads', '--app', 'hello']);
    try {
      for (let i = 0; i < 100; i++) {
        const r = await exchange(s.port, GET_CLOSE);
        assert.match(r.data.toString(), /Hello, World!$/);
      }
      const st = await statsUntil(s, '100 connections counted', (x) => x.connections.total === 100);
      assert.ok((st.pool.connectionThreads ?? 99) <= 3, `connection threads ${st.pool.connectionThreads}`);
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });

  it('stats count the syscalls of a connection that is still open (each thread counts straight into its shared row)', async () => {
    for (const engine of ['threads', 'prefork']) {
      const s = await serveWith({}, ['--engine', engine, '--app', 'hello', ...(engine === 'prefork' ? ['--procs', '1'] : [])]);
      try {
        const c = await openKeepAlive(s.port);
        let got = '';
        c.on('data', (d: Buffer) => (got += d.toString('latin1')));
        for (let i = 1; i <= 20; i++) {
          c.write(GET);
          const until = Date.now() + 5000;
          while (got.split('Hello, World!').length - 1 < i && Date.now() < until) await sleep(5);
        }
        assert.equal(got.split('Hello, World!').length - 1, 20, `${engine}: 20 answers`);
        // The connection stays open: nothing has ended that would publish a count at its end.
        const st = await statsUntil(s, `${engine}: 20 requests`, (x) => x.requests >= 20);
        const sc = (st as unknown as { syscalls: Record<string, number> }).syscalls;
        assert.ok((sc.read ?? 0) >= 20 && (sc.write ?? 0) >= 20, `${engine}: read/write counted while open: ${JSON.stringify(sc)}`);
        c.destroy();
      } finally {
        assert.equal(await s.stop(), 0);
      }
    }
  });

  it('a bounded pool leaves the excess connection in the backlog until a thread is free', async () => {
    const s = await serveWith({ IOLAB_MAX_THREADS: '2' }, ['--engine', 'threads', '--app', 'hello']);
    try {
      const a = await openKeepAlive(s.port);
      const b = await openKeepAlive(s.port);
      const third = await requestWithin(s.port, GET_CLOSE, 400);
      assert.equal(third.data, '', 'not served while both threads are busy');
      assert.ok(!third.closed, 'not refused either: it waits');
      a.destroy();
      const end = Date.now() + 3000;
      while (!third.data.includes('Hello, World!') && Date.now() < end) await sleep(50);
      assert.match(third.data, /Hello, World!$/, 'served once a thread was free');
      b.destroy();
      third.sock.destroy();
      const st = await statsUntil(s, 'all closed', (x) => x.connections.current === 0);
      assert.ok((st.pool.connectionThreads ?? 99) <= 2, `connection threads ${st.pool.connectionThreads}`);
      assert.equal(st.connections.refused, 0);
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });

  it('past its thread limit an unbounded pool refuses: HTTP 503 + Connection: close', async () => {
    const s = await serveWith({ IOLAB_THREAD_CAP: '2', IOLAB_SPARE_THREADS: '1' }, ['--engine', 'threads', '--app', 'hello']);
    try {
      const a = await openKeepAlive(s.port);
      const b = await openKeepAlive(s.port);
      const r = await exchange(s.port, GET, { timeoutMs: 3000 });
      assert.match(r.data.toString(), /^HTTP\/1\.1 503 Service Unavailable\r\n/);
      assert.match(r.data.toString(), /\r\nConnection: close\r\n/i);
      assert.ok(r.closed);
      a.destroy();
      b.destroy();
      const st = await statsUntil(s, 'refusal counted', (x) => x.connections.refused === 1 && x.connections.current === 0);
      assert.equal(st.connections.total, 2);
      // Served again once below the limit.
      assert.match((await exchange(s.port, GET_CLOSE)).data.toString(), /Hello, World!$/);
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });

  it('past its thread limit an unbounded pool refuses RESP with -ERR max number of clients reached', async () => {
    const s = await serveWith({ IOLAB_THREAD_CAP: '1', IOLAB_SPARE_THREADS: '1' }, ['--engine', 'threads', '--app', 'kv']);
    try {
      const a = net.connect(s.port, '127.0.0.1');
      await new Promise<void>((res) => {
        a.once('data', () => res());
        a.write('*1\r\n$4\r\nPING\r\n');
      });
      const r = await exchange(s.port, '*1\r\n$4\r\nPING\r\n', { timeoutMs: 3000 });
      assert.equal(r.data.toString(), '-ERR max number of clients reached\r\n');
      assert.ok(r.closed);
      a.destroy();
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });

  it('SIGTERM: an in-flight request is answered, an idle keep-alive connection is closed, exit 0', async () => {
    const s = await serveWith({}, ['--engine', 'threads', '--app', 'hello', '--work', 'async:400ms']);
    const idle = await openKeepAlive(s.port); // answered after 400 ms, then idle
    const idleClosed = new Promise<void>((r) => idle.once('close', () => r()));
    const inflight = exchange(s.port, GET, { timeoutMs: 5000 });
    await sleep(100);
    const t0 = Date.now();
    const code = await s.stop();
    assert.equal(code, 0);
    const r = await inflight;
    assert.match(r.data.toString(), /^HTTP\/1\.1 200 OK/);
    assert.match(r.data.toString(), /Hello, World!$/);
    assert.ok(r.closed, 'closed after the in-flight response');
    await idleClosed;
    assert.ok(Date.now() - t0 < 4000, 'stopped without waiting for the drain deadline');
  });
});

describe('threads: bursts, caps and stopping', () => {
  it('SIGTERM right after a burst of 200 connections that reset at once: still serving, exit 0 within the drain deadline', async () => {
    const s = await serveWith({}, ['--engine', 'threads', '--app', 'hello']);
    try {
      // 10 rounds of 20 at once, each reset right after its request: far more connections than
      // threads can start in the time. Each needs a thread only briefly, so most should wait for one
      // that is free or has started (at most a few start at once) rather than start 200 isolates.
      for (let round = 0; round < 10; round++) {
        await Promise.all(
          Array.from({ length: 20 }, async () => {
            const c = net.connect(s.port, '127.0.0.1');
            c.on('error', () => {});
            await new Promise((r) => c.once('connect', r));
            c.write(GET);
            await sleep(Math.random() * 20);
            c.resetAndDestroy();
          }),
        );
      }
      assert.match((await exchange(s.port, GET_CLOSE, { timeoutMs: 15_000 })).data.toString(), /Hello, World!$/);
    } finally {
      // Threads still starting at stop must end by themselves: one terminated while koffi loads aborts
      // the whole process (SIGABRT), and waiting for dozens to start outlasts the drain deadline.
      const t0 = Date.now();
      assert.equal(await s.stop(), 0, s.stderr());
      assert.ok(Date.now() - t0 < 5000, `exit ${Date.now() - t0} ms after SIGTERM (drain deadline 5000 ms)`);
    }
  });

  it('SIGTERM: an idle keep-alive client that ignores the FIN is closed after the lingering close (lingerMs), before the drain deadline', async () => {
    const s = await serveWith({}, ['--engine', 'threads', '--app', 'hello', '--drain-ms', '15000']);
    // allowHalfOpen: the client keeps its side open after the server's FIN, as a careless client would.
    const c = net.connect({ port: s.port, host: '127.0.0.1', allowHalfOpen: true });
    let fin = 0;
    let closed = 0;
    c.on('error', () => {});
    c.on('end', () => (fin = Date.now()));
    c.on('close', () => (closed = Date.now()));
    await new Promise<void>((res) => {
      c.once('data', () => res());
      c.write(GET);
    });
    const t0 = Date.now();
    const code = await s.stop();
    const ms = Date.now() - t0;
    assert.equal(code, 0);
    assert.ok(fin > 0, 'the server sent FIN at stop');
    // The server lingers 2 s (lingerMs) for our FIN, then closes: well before --drain-ms 15000.
    assert.ok(ms >= 1500 && ms < 10_000, `exit ${ms} ms after SIGTERM`);
    c.destroy();
    assert.ok(closed === 0 || closed >= fin);
  });

  it('--max-connections under a bounded pool refuses past the cap (503), and serves again when one closes', async () => {
    const s = await serveWith({}, ['--engine', 'threads', '--workers', '4', '--max-connections', '2', '--app', 'hello']);
    try {
      const a = await openKeepAlive(s.port);
      const b = await openKeepAlive(s.port);
      const r = await exchange(s.port, GET, { timeoutMs: 3000 });
      assert.match(r.data.toString(), /^HTTP\/1\.1 503 Service Unavailable\r\n/);
      assert.ok(r.closed);
      a.destroy();
      await statsUntil(s, 'one closed', (x) => x.connections.current === 1);
      assert.match((await exchange(s.port, GET_CLOSE)).data.toString(), /Hello, World!$/);
      b.destroy();
      const st = await statsUntil(s, 'refusal counted', (x) => x.connections.refused === 1 && x.connections.current === 0);
      assert.equal(st.connections.total, 3);
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });
});

describe('threads and prefork: wrk and redis-benchmark within the pool or process count', () => {
  const cases: [string, string[], number][] = [
    ['threads --workers 4', ['--engine', 'threads', '--workers', '4'], 4],
    ['prefork --workers 3', ['--engine', 'prefork', '--workers', '3'], 3],
  ];
  for (const [label, args, n] of cases) {
    it(`${label}: wrk -c${n}, zero socket errors, zero non-2xx`, { skip: has('wrk') ? false : 'wrk not installed (apt-get install wrk)' }, async () => {
      const s = await serveWith({}, [...args, '--app', 'hello']);
      try {
        const r = run('wrk', ['-t1', `-c${n}`, '-d1s', `http://127.0.0.1:${s.port}/`], { timeoutMs: 20_000 });
        assert.equal(r.status, 0, r.stderr);
        assert.ok(!/Socket errors/.test(r.stdout), r.stdout);
        assert.ok(!/Non-2xx/.test(r.stdout), r.stdout);
        assert.ok(Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1]) > 0, r.stdout);
      } finally {
        assert.equal(await s.stop(), 0);
      }
    });
    it(`${label}: redis-benchmark -c${n} runs without errors`, { skip: has('redis-benchmark') ? false : 'redis-benchmark not installed (apt-get install redis-tools)' }, async () => {
      const s = await serveWith({}, [...args, '--app', 'kv']);
      try {
        const r = run('redis-benchmark', ['-p', String(s.port), '-t', 'ping,set,get', '-n', '3000', '-c', String(n), '-q'], { timeoutMs: 60_000 });
        assert.equal(r.status, 0, r.stderr);
        assert.ok(r.stdout.split(/\r|\n/).filter((l) => /requests per second/.test(l)).length >= 4, r.stdout);
        assert.ok(!/error/i.test(r.stdout + r.stderr), r.stdout + r.stderr);
      } finally {
        assert.equal(await s.stop(), 0);
      }
    });
  }
});

describe('prefork: processes share the listening socket', () => {
  it('a killed child is replaced, and the server keeps serving', async () => {
    const s = await serveWith({}, ['--engine', 'prefork', '--workers', '3', '--app', 'hello']);
    try {
      const st = await statsUntil(s, '3 children', (x) => x.processes === 4 && (x.pool.pids?.length ?? 0) === 3);
      const victim = st.pool.pids![0]!;
      process.kill(victim, 'SIGKILL');
      const after = await statsUntil(s, 'a replacement child', (x) => x.processes === 4 && !x.pool.pids!.includes(victim));
      assert.equal(after.pool.pids!.length, 3);
      assert.deepEqual(await survivors([victim], 2000), []);
      for (let i = 0; i < 6; i++) assert.match((await exchange(s.port, GET_CLOSE)).data.toString(), /Hello, World!$/);
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });

  it('kv: one keyspace across the children and redis-cli runs, and across a replaced child', { skip: has('redis-cli') ? false : 'redis-cli not installed (apt-get install redis-tools)' }, async () => {
    const s = await serveWith({ IOLAB_PROCS: '4' }, ['--engine', 'prefork', '--app', 'kv']);
    try {
      const cli = (...a: string[]): string => run('redis-cli', ['-p', String(s.port), ...a]).stdout.trim();
      // Parked accept()s wake in FIFO order: successive redis-cli runs land on different children.
      assert.equal(cli('SET', 'k', 'v1'), 'OK');
      assert.equal(cli('GET', 'k'), 'v1');
      assert.equal(cli('INCR', 'n'), '1');
      assert.equal(cli('INCR', 'n'), '2');
      assert.equal(cli('DBSIZE'), '2');
      const st = await statsUntil(s, '4 children', (x) => (x.pool.pids?.length ?? 0) === 4);
      const victim = st.pool.pids![0]!;
      process.kill(victim, 'SIGKILL');
      await statsUntil(s, 'a replacement child', (x) => x.pool.pids!.length === 4 && !x.pool.pids!.includes(victim));
      for (let i = 0; i < 4; i++) assert.equal(cli('GET', 'k'), 'v1', 'every child, the new one too, reads the keyspace');
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });

  it('SIGTERM: in-flight request answered, exit 0, and no child survives', async () => {
    const s = await serveWith({}, ['--engine', 'prefork', '--workers', '3', '--app', 'hello', '--work', 'blocking:300ms']);
    const st = await statsUntil(s, '3 children', (x) => (x.pool.pids?.length ?? 0) === 3);
    const inflight = exchange(s.port, GET, { timeoutMs: 5000 });
    await sleep(100);
    assert.equal(await s.stop(), 0);
    const r = await inflight;
    assert.match(r.data.toString(), /Hello, World!$/);
    assert.ok(r.closed);
    assert.deepEqual(await survivors(st.pool.pids!, 3000), [], 'children still alive after the server exited');
  });

  it('SIGKILL of the server: no child survives (PR_SET_PDEATHSIG / IPC EOF)', async () => {
    const s = await serveWith({}, ['--engine', 'prefork', '--workers', '3', '--app', 'hello']);
    const st = await statsUntil(s, '3 children', (x) => (x.pool.pids?.length ?? 0) === 3);
    const exited = new Promise<void>((r) => s.child.once('exit', () => r()));
    s.child.kill('SIGKILL');
    await exited;
    assert.deepEqual(await survivors(st.pool.pids!, 3000), [], 'children outlived a SIGKILLed server');
  });
});

/** Send `n` keep-alive GETs over one connection, `batch` at a time, and wait for every answer. */
async function hammer(port: number, n: number, batch: number): Promise<void> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((res, rej) => sock.once('connect', res).once('error', rej));
  const req = Buffer.from('GET / HTTP/1.1\r\nHost: t\r\n\r\n'.repeat(batch));
  try {
    for (let done = 0; done < n; done += batch) {
      await new Promise<void>((res, rej) => {
        let seen = 0;
        let tail = '';
        const onData = (d: Buffer): void => {
          const text = tail + d.toString('latin1');
          seen += text.split('HTTP/1.1 200').length - 1;
          tail = text.slice(-12);
          if (seen >= batch) {
            sock.off('data', onData);
            res();
          }
        };
        sock.on('data', onData).once('error', rej);
        sock.write(req);
      });
    }
  } finally {
    sock.destroy();
  }
}

describe('threads and prefork: every per-connection isolate tiers up early (engines/tiering.ts)', () => {
  const FAST = ['--no-concurrent-recompilation', '--no-concurrent-osr', '--interrupt-budget=4096', '--ticks-before-optimization=1'];

  it('the connection isolates compile optimised code on their own thread (--trace-opt: kSynchronous); IOLAB_V8_TIERING=default leaves it to V8', async () => {
    for (const [engine, flag] of [['threads', '--spare-threads'], ['prefork', '--procs']] as const) {
      for (const [env, wantSync] of [[{}, true], [{ IOLAB_V8_TIERING: 'default' }, false]] as const) {
        // --trace-opt: V8 prints each compile job with its mode. The threads engine's isolates print to
        // its stdout; a prefork child's stdout is the server's stderr.
        const child = spawn(process.execPath, ['--trace-opt', CLI, 'serve', '--engine', engine, '--app', 'hello', flag, '1', '--port', '0', '--json', '--quiet'], {
          stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env },
        });
        let text = '';
        child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
        child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
        const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
        try {
          const deadline = Date.now() + 20_000;
          let m: RegExpExecArray | null = null;
          while ((m = /\{"event":"listening"[^\n]*"port":(\d+)/.exec(text)) === null) {
            assert.ok(Date.now() < deadline && child.exitCode === null, `${engine} did not start: ${text.slice(-500)}`);
            await new Promise((r) => setTimeout(r, 50));
          }
          await hammer(Number(m[1]), 4000, 100);
          const sync = /compiling method [^\n]*mode: ConcurrencyMode::kSynchronous/.test(text);
          assert.equal(sync, wantSync, `${engine} ${JSON.stringify(env)}: synchronous TurboFan compiles ${sync ? 'seen' : 'not seen'}`);
        } finally {
          child.kill('SIGTERM');
          const k = setTimeout(() => child.kill('SIGKILL'), 20_000);
          await exited;
          clearTimeout(k);
        }
      }
    }
  });
  type PoolFlags = { pool: { v8Flags?: string[]; pids?: number[] } };

  it('threads: the process runs with the lowered thresholds, and IOLAB_V8_TIERING=default keeps V8\'s own', async () => {
    for (const [env, want] of [[{}, FAST], [{ IOLAB_V8_TIERING: 'default' }, []]] as const) {
      const s = await serveWith(env, ['--engine', 'threads', '--app', 'hello']);
      try {
        const st = (await statsUntil(s, 'stats', () => true)) as unknown as PoolFlags;
        assert.deepEqual(st.pool.v8Flags, want);
        assert.match((await exchange(s.port, GET_CLOSE)).data.toString(), /Hello, World!$/);
      } finally {
        assert.equal(await s.stop(), 0);
      }
    }
  });

  it('prefork: the children apply the same flags (reported in the stats) and serve', async () => {
    for (const [env, want] of [[{}, FAST], [{ IOLAB_V8_TIERING: 'default' }, []]] as const) {
      const s = await serveWith(env, ['--engine', 'prefork', '--procs', '2', '--app', 'hello']);
      try {
        const st = (await statsUntil(s, '2 children', (x) => (x.pool.pids?.length ?? 0) === 2)) as unknown as PoolFlags;
        assert.deepEqual(st.pool.v8Flags, want);
        for (let i = 0; i < 4; i++) assert.match((await exchange(s.port, GET_CLOSE)).data.toString(), /Hello, World!$/);
      } finally {
        assert.equal(await s.stop(), 0);
      }
    }
  });

  it('--spare-threads N: N threads are started before the server listens and wait idle; other engines refuse the flag', async () => {
    const s = await serveWith({}, ['--engine', 'threads', '--app', 'hello', '--spare-threads', '6']);
    try {
      const st = await statsUntil(s, '6 idle threads', (x) => (x.pool.connectionThreads ?? 0) >= 6);
      assert.equal(st.connections.total, 0);
      assert.ok((st.pool.idle ?? 0) >= 6, `idle ${st.pool.idle}`);
      assert.match((await exchange(s.port, GET_CLOSE)).data.toString(), /Hello, World!$/);
    } finally {
      assert.equal(await s.stop(), 0);
    }
    const r = spawnSync(process.execPath, [CLI, 'serve', '--engine', 'epoll', '--spare-threads', '6', '--port', '0'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--spare-threads applies to the threads engine only/);
  });

  it('a bad IOLAB_V8_TIERING is a usage error at start, not a crash later', async () => {
    for (const engine of ['threads', 'prefork']) {
      const r = spawnSync(process.execPath, [CLI, 'serve', '--engine', engine, '--app', 'hello', '--port', '0'], {
        env: { ...process.env, IOLAB_V8_TIERING: 'fastest' }, encoding: 'utf8', timeout: 20_000,
      });
      assert.notEqual(r.status, 0, `${engine} exited ${r.status}`);
      assert.equal(r.signal, null, `${engine} was killed by ${r.signal}`);
      assert.match(r.stderr, /IOLAB_V8_TIERING must be "fast" or "default"/);
    }
  });
});
