/**
 * What the busypoll, aio and node engines each exist to show, beyond the shared conformance suite:
 *  - busypoll spins: EAGAIN counts climb while no client is connected, and the CPU burnt while idle
 *    depends on the back-off (IOLAB_BACKOFF);
 *  - aio runs every request on glibc helper threads, visible in `threads`, and refuses past its cap;
 *  - node is Node's own net/http, serving curl and redis-cli.
 * Servers are real child processes (test/helpers/server.ts); stats come from SIGUSR2 (`iolab serve`
 * prints them as one JSON line on stderr).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { startServer, has, run, exchange, type Served } from '../helpers/server.js';
import type { EngineStats } from '../../src/engines/types.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const needs = (cmd: string, pkg: string): string | false => (has(cmd) ? false : `${cmd} not installed (apt-get install ${pkg})`);

/** Start a server with extra environment variables (the child inherits process.env at spawn). */
async function startWithEnv(env: Record<string, string>, args: string[]): Promise<Served> {
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  try {
    return await startServer(args);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** Ask the server for its stats (SIGUSR2 -> one JSON line on stderr). */
async function statsOf(s: Served): Promise<EngineStats> {
  const from = s.stderr().length;
  s.child.kill('SIGUSR2');
  for (let i = 0; i < 100; i++) {
    await sleep(20);
    const tail = s.stderr().slice(from);
    const nl = tail.indexOf('\n');
    const start = tail.indexOf('{');
    if (start >= 0 && nl > start) return JSON.parse(tail.slice(start, nl)) as EngineStats;
  }
  throw new Error(`no stats on stderr after SIGUSR2: ${s.stderr()}`);
}

/** utime + stime of a process, in clock ticks (proc(5): fields 14 and 15 of /proc/PID/stat). */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
  return Number(f[11]) + Number(f[12]);
}

/** Idle for `ms`: CPU ticks, EAGAIN and passes the server spent meanwhile. */
async function idleCost(s: Served, ms: number): Promise<{ ticks: number; eagain: number; wakeups: number }> {
  const a = await statsOf(s);
  const t0 = cpuTicks(s.child.pid!);
  await sleep(ms);
  const t1 = cpuTicks(s.child.pid!);
  const b = await statsOf(s);
  return { ticks: t1 - t0, eagain: b.eagain - a.eagain, wakeups: b.wakeups - a.wakeups };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => resolve(c));
    c.once('error', reject);
  });
}

/** Send one keep-alive request on `c` and wait for `until` in the answer. */
function ask(c: net.Socket, req: string, until: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const t = setTimeout(() => reject(new Error(`no answer matching ${until}: ${JSON.stringify(got)}`)), 5000);
    const onData = (d: Buffer): void => {
      got += d.toString('latin1');
      if (until.test(got)) {
        clearTimeout(t);
        c.off('data', onData);
        resolve(got);
      }
    };
    c.on('data', onData);
    c.write(req);
  });
}

const GET = 'GET / HTTP/1.1\r\nHost: a\r\n\r\n';

describe('busypoll: non-blocking without a readiness API', () => {
  it('spins while idle: EAGAIN from accept4 every pass, one CPU burnt with no back-off, almost none with sleep:1000', async () => {
    const spin = await startWithEnv({ IOLAB_BACKOFF: 'none' }, ['--engine', 'busypoll', '--app', 'hello', '--quiet']);
    let none;
    try {
      assert.equal(spin.engine, 'busypoll');
      await sleep(300);
      none = await idleCost(spin, 1000);
    } finally {
      assert.equal(await spin.stop(), 0);
    }
    const calm = await startWithEnv({ IOLAB_BACKOFF: 'sleep:1000' }, ['--engine', 'busypoll', '--app', 'hello', '--quiet']);
    let slept;
    try {
      assert.equal(calm.engine, 'busypoll (sleep:1000us)');
      await sleep(300);
      slept = await idleCost(calm, 1000);
    } finally {
      assert.equal(await calm.stop(), 0);
    }
    const msg = `none: ${JSON.stringify(none)}; sleep:1000: ${JSON.stringify(slept)}`;
    // Every idle pass is one accept4() that returns EAGAIN: passes and EAGAIN climb together.
    assert.ok(none.eagain > 10_000, msg);
    assert.ok(none.wakeups > 10_000, msg);
    assert.ok(Math.abs(none.eagain - none.wakeups) < none.wakeups * 0.05 + 10, msg);
    // With a 1 ms sleep between idle passes: at most ~1,000 passes a second.
    assert.ok(slept.eagain > 100 && slept.eagain < 1500, msg);
    // CPU over 1 s idle (clock ticks, 100 a second): a spinning loop takes all the CPU it is given
    // (on a shared machine that can be well under 100), the sleeping one a few ticks.
    assert.ok(none.ticks >= 10, msg);
    assert.ok(none.ticks > 3 * Math.max(1, slept.ticks), msg);
  });

  it('counts EAGAIN on reads of a connected but silent client, and still serves it', async () => {
    const s = await startWithEnv({ IOLAB_BACKOFF: 'yield' }, ['--engine', 'busypoll', '--app', 'kv', '--quiet']);
    try {
      assert.equal(s.engine, 'busypoll (yield)');
      const c = await connect(s.port);
      await sleep(100);
      const a = await statsOf(s);
      await sleep(300);
      const b = await statsOf(s);
      const reads = (b.syscalls.read ?? 0) - (a.syscalls.read ?? 0);
      assert.ok(reads > 1000, `read() tried ${reads} times on a silent connection`);
      assert.equal(await ask(c, '*1\r\n$4\r\nPING\r\n', /\r\n$/), '+PONG\r\n');
      assert.ok(b.syscalls.epoll_wait === undefined && b.syscalls.poll === undefined && b.syscalls.select === undefined);
      c.destroy();
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });

  it(
    'closes an idle connection after --idle-timeout (only bytes count as activity, not maybe-readable passes)',
    async () => {
      const s = await startServer(['--engine', 'busypoll', '--app', 'kv', '--idle-timeout', '500', '--quiet']);
      try {
        const r = await exchange(s.port, '', { timeoutMs: 3000 });
        assert.ok(r.closed, 'idle connection closed by the server');
      } finally {
        assert.equal(await s.stop(), 0);
      }
    },
  );

  it('a bad IOLAB_BACKOFF fails at start and says what is accepted', async () => {
    await assert.rejects(
      startWithEnv({ IOLAB_BACKOFF: 'sometimes' }, ['--engine', 'busypoll', '--app', 'hello', '--quiet']),
      /none, yield or sleep:<microseconds>/,
    );
  });
});

describe('aio: glibc POSIX AIO', () => {
  it('runs requests on glibc helper threads (threads > 1 while a connection is open)', async () => {
    const s = await startServer(['--engine', 'aio', '--app', 'hello', '--quiet']);
    try {
      const before = await statsOf(s);
      assert.equal(before.engine, 'aio');
      assert.equal(before.threads, 1, 'no helper before the first request');
      const c = await connect(s.port);
      assert.match(await ask(c, GET, /Hello, World!$/), /^HTTP\/1\.1 200 OK/);
      const after = await statsOf(s);
      assert.ok(after.threads > 1, `threads ${after.threads}: the read in flight on the open connection holds a helper`);
      assert.ok((after.syscalls.aio_read ?? 0) >= 2 && (after.syscalls.aio_write ?? 0) >= 1, JSON.stringify(after.syscalls));
      assert.ok((after.syscalls.aio_suspend ?? 0) >= 1);
            const more = await Promise.all([connect(s.port), connect(s.port), connect(s.port)]);
      await sleep(200);
      const idle = await statsOf(s);
      // Each read in flight blocks its own helper in read(): 4 open connections, at least 4 helpers.
      assert.ok(idle.threads >= 1 + 4, `threads ${idle.threads} with 4 idle connections (was ${after.threads} with 1)`);
      for (const m of more) m.destroy();
      c.destroy();
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });

  it('refuses connections past --max-connections cleanly: HTTP 503, RESP -ERR max clients', async () => {
    for (const [app, req, want, refusal] of [
      ['hello', GET, /Hello, World!$/, /^HTTP\/1\.1 503 /],
      ['kv', '*1\r\n$4\r\nPING\r\n', /\+PONG\r\n$/, /^-ERR max number of clients reached\r\n$/],
    ] as const) {
      const s = await startServer(['--engine', 'aio', '--app', app, '--max-connections', '2', '--quiet']);
      try {
        const a = await connect(s.port);
        const b = await connect(s.port);
        await ask(a, req, want);
        await ask(b, req, want);
        const r = await exchange(s.port, req, { timeoutMs: 3000 });
        assert.match(r.data.toString('latin1'), refusal);
        assert.ok(r.closed, 'refused connection is closed');
        assert.equal((await statsOf(s)).connections.refused, 1);
        // A slot frees when a connection closes.
        a.destroy();
        await sleep(100);
        assert.match((await exchange(s.port, req, { timeoutMs: 500 })).data.toString('latin1'), want);
        b.destroy();
      } finally {
        assert.equal(await s.stop(), 0);
      }
    }
  });

  it('times out through shutdown(): slowloris gets 408 after --header-timeout, an idle connection is closed after --idle-timeout', async () => {
    const s = await startServer(['--engine', 'aio', '--app', 'hello', '--header-timeout', '300', '--idle-timeout', '600', '--quiet']);
    try {
      const t0 = Date.now();
      const slow = await exchange(s.port, 'GET / HTTP/1.1\r\nHo', { timeoutMs: 3000 });
      assert.match(slow.data.toString('latin1'), /^HTTP\/1\.1 408 /);
      assert.ok(slow.closed && Date.now() - t0 < 2000, `closed ${slow.closed} after ${Date.now() - t0} ms`);
      const t1 = Date.now();
      const idle = await exchange(s.port, '', { timeoutMs: 3000 });
      assert.ok(idle.closed && Date.now() - t1 >= 500, `closed ${idle.closed} after ${Date.now() - t1} ms`);
      assert.equal((await statsOf(s)).connections.current, 0);
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });

  it('stops promptly with idle keep-alive connections (their blocked reads are woken)', async () => {
    const s = await startServer(['--engine', 'aio', '--app', 'hello', '--quiet']);
    const c = await connect(s.port);
    c.on('error', () => {});
    await ask(c, GET, /Hello, World!$/);
    const t0 = Date.now();
    assert.equal(await s.stop(), 0);
    assert.ok(Date.now() - t0 < 2000, `stop took ${Date.now() - t0} ms with an idle connection`);
    c.destroy();
  });
});

describe("node: Node's own net and http", () => {
  it('serves curl (http), with the responses the iolab encoder would give', { skip: needs('curl', 'curl') }, async () => {
    const s = await startServer(['--engine', 'node', '--app', 'hello', '--quiet']);
    try {
      const r = run('curl', ['-s', '-i', `http://127.0.0.1:${s.port}/`]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(r.stdout, /content-length: 13\r\n/i);
      assert.ok(r.stdout.endsWith('\r\n\r\nHello, World!'), r.stdout);
      const head = run('curl', ['-s', '-I', `http://127.0.0.1:${s.port}/`]);
      assert.match(head.stdout, /content-length: 13/i);
      assert.equal(run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'DELETE', `http://127.0.0.1:${s.port}/`]).stdout, '405');
      const st = await statsOf(s);
      assert.equal(st.engine, 'node');
      assert.equal(st.requests, 3);
      assert.deepEqual(st.syscalls, {}, 'libuv syscalls are not visible');
      assert.ok(st.bytesIn > 0 && st.bytesOut > 0);
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });

  it('serves redis-cli (net + RESP Service)', { skip: needs('redis-cli', 'redis-tools') }, async () => {
    const s = await startServer(['--engine', 'node', '--app', 'kv', '--quiet']);
    try {
      const cli = (...a: string[]): string => run('redis-cli', ['-p', String(s.port), ...a]).stdout.trim();
      assert.equal(cli('SET', 'k', 'v'), 'OK');
      assert.equal(cli('GET', 'k'), 'v');
      assert.equal(cli('PING'), 'PONG');
      const st = await statsOf(s);
      assert.equal(st.protocol, 'resp');
      assert.equal(st.connections.total, 3);
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });

  it('honours the limits: --max-connections refuses with the protocol answer, timeouts close', async () => {
    const s = await startServer(['--engine', 'node', '--app', 'kv', '--max-connections', '1', '--header-timeout', '300', '--idle-timeout', '600', '--quiet']);
    try {
      const a = await connect(s.port);
      await ask(a, '*1\r\n$4\r\nPING\r\n', /\r\n$/);
      const over = await exchange(s.port, '*1\r\n$4\r\nPING\r\n', { timeoutMs: 2000 });
      assert.equal(over.data.toString(), '-ERR max number of clients reached\r\n');
      assert.ok(over.closed);
      a.destroy();
      await sleep(100);
      const t0 = Date.now();
      const partial = await exchange(s.port, '*1\r\n$4\r\nPI', { timeoutMs: 3000 });
      assert.ok(partial.closed && Date.now() - t0 < 2000, 'an incomplete command is closed after the header timeout');
      const idle = await exchange(s.port, '', { timeoutMs: 3000 });
      assert.ok(idle.closed, 'an idle connection is closed after the idle timeout');
      assert.equal((await statsOf(s)).connections.refused, 1);
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });

  it('counts loop stalls of a blocking handler (--work blocking:20ms) by route', async () => {
    const s = await startServer(['--engine', 'node', '--app', 'hello', '--work', 'blocking:20ms', '--quiet']);
    try {
      const c = await connect(s.port);
      await ask(c, 'GET /json HTTP/1.1\r\nHost: a\r\n\r\n', /\}$/);
      const st = await statsOf(s);
      assert.equal(st.loopStalls.count, 1);
      assert.equal(st.loopStalls.byRoute['GET /json'], 1);
      c.destroy();
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });
});
