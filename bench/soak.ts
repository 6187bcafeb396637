/**
 * Soak one engine: minutes of mixed load against three `iolab serve` processes of that engine (echo,
 * hello over HTTP, kv over RESP), with well-behaved clients and clients that reset, half-close and
 * stall, then a report: errors, lost bytes, and server RSS after warm-up and at the end.
 *
 *   node dist/bench/soak.js --engine epoll [--minutes 2 | --seconds 30] [--workers N] [--warmup-seconds S]
 *                           [--max-rss-growth 5] [--json]
 *
 * Clients (in this process, node:net; every connection's lifetime is a random 0.3-4 s, then it ends
 * one of the ways below and a new one starts):
 *  - echo: streams a deterministic byte sequence (at most 256 KB unanswered, at most --echo-rate MB/s
 *    per client, default 4: a soak is about time and variety, and the machine may be shared) and
 *    checks every byte that comes back. Ends with a half-close (end(), then every byte must come back before the server's
 *    FIN), a stall (reading paused for 1 s, under the send timeout, then the half-close), or an RST.
 *    Lost bytes = bytes sent on a connection we closed cleanly that never came back.
 *  - HTTP: keep-alive GET /, GET /json, POST /echo with random bodies (checked), some pipelined.
 *    Ends with `Connection: close`, a half-close after the last request, an RST in the middle of a
 *    large response, or slowloris (a partial head, then nothing: 408 and a close are expected).
 *  HTTP and RESP clients pause --think-ms (default 2) between batches, for the same reason.
 *  - RESP: pipelined bursts of SET/GET/INCR/PING on keys of its own (GET must return what this
 *    connection SET; INCR must count). Ends with a half-close or an RST mid-burst.
 * Errors are unexpected outcomes only (a reset we did not cause, a wrong byte or reply, a timeout, a
 * server exit); the resets, half-closes and stalls we cause are counted apart.
 *
 * V8 grows a server's young generation (its semi-spaces, up to 16 MB each on 64-bit) only as the
 * allocation rate demands, in steps that can come minutes into a run: tens of MB of RSS growth that is
 * sizing, not a leak (measured: kv under RESP load, 87 -> 124 MB over 4 minutes; flat at 76 MB with the
 * semi-space capped). So the servers start with --min-semi-space-size=<--young-mb> (default 16, V8's
 * own maximum): the young generation is full-sized during the warm-up, and growth after it means what
 * a soak looks for. --young-mb 0 leaves V8's default.
 *
 * Exit code 1 when errors > 0, lost bytes > 0, a server exits non-zero, or the servers' total RSS
 * grew by more than --max-rss-growth percent between the warm-up window and the end. On threads and
 * prefork RSS follows the number of threads or processes alive (~10 MB each), which moves with the
 * clients' churn: a 30 s soak of threads read +7.8%, a 2 minute one -5.3%, so soak them for minutes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { CLI, cpuSeconds, median, reapOnExit, rssBytes, usageOnHelp } from './lib/util.js';
import { parseResponse } from '../src/protocols/http/client.js';
import { parseReply } from '../src/protocols/resp/client.js';
import type { RespValue } from '../src/protocols/resp/types.js';

usageOnHelp(import.meta.url);
const { values } = parseArgs({
  options: {
    engine: { type: 'string', default: 'epoll' },
    minutes: { type: 'string' },
    seconds: { type: 'string' },
    workers: { type: 'string', default: '1' },
    'warmup-seconds': { type: 'string' },
    'max-rss-growth': { type: 'string', default: '5' },
    echo: { type: 'string', default: '4' },
    http: { type: 'string', default: '4' },
    resp: { type: 'string', default: '4' },
    'echo-rate': { type: 'string', default: '4' },
    'think-ms': { type: 'string', default: '2' },
    'young-mb': { type: 'string', default: '16' },
    json: { type: 'boolean', default: false },
  },
});

const DURATION_MS = 1000 * (values.seconds !== undefined ? Number(values.seconds) : 60 * Number(values.minutes ?? 2));
/** RSS "at start" is taken after this: long enough for the JIT, heaps and socket buffers to settle. */
const WARMUP_MS = values['warmup-seconds'] !== undefined ? 1000 * Number(values['warmup-seconds']) : Math.min(60_000, Math.max(10_000, DURATION_MS / 4));
/** RSS is the median of the samples in a window this long (GC makes single samples jumpy). */
const RSS_WINDOW_MS = 10_000;
const MAX_GROWTH = Number(values['max-rss-growth']);
if (!(DURATION_MS > 0) || !(WARMUP_MS >= 0) || WARMUP_MS + 2 * RSS_WINDOW_MS > DURATION_MS) {
  throw new Error(`--minutes/--seconds must leave room for the warm-up (${WARMUP_MS / 1000} s) and two ${RSS_WINDOW_MS / 1000} s RSS windows`);
}
/** The limits the stalling clients meet (short, so they are met many times in a run). */
const HEADER_TIMEOUT_MS = 2000;
const SEND_TIMEOUT_MS = 5000;
const REPLY_TIMEOUT_MS = 15_000;
const THINK_MS = Number(values['think-ms']);

// ------------------------------------------------------------------------------------------------
// servers

interface Server {
  app: string;
  child: ChildProcess;
  port: number;
  statsFile: string;
  stderr: string;
  exitCode: number | null | undefined;
}

const dir = mkdtempSync(join(tmpdir(), 'iolab-soak-'));
const servers: Server[] = [];
reapOnExit(() => servers.map((s) => s.child));

async function startServer(app: string): Promise<Server> {
  const statsFile = join(dir, `${app}.json`);
  const args = [
    CLI, 'serve', '--port', '0', '--json', '--engine', values.engine!, '--app', app, '--quiet', '--stats-file', statsFile,
    '--header-timeout', String(HEADER_TIMEOUT_MS), '--send-timeout', String(SEND_TIMEOUT_MS), '--idle-timeout', '30000',
    // kv keeps one keyspace for all the loops, threads or processes (apps/kv-shm.ts), so a GET on a
    // new connection must see the values set on earlier ones, whichever isolate served them.
    ...(Number(values.workers) > 1 ? ['--workers', values.workers!] : []),
  ];
  const young = Number(values['young-mb']);
  const v8Flags = young > 0 ? [`--min-semi-space-size=${young}`, `--max-semi-space-size=${young}`] : [];
  const child = spawn(process.execPath, [...v8Flags, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const s: Server = { app, child, port: 0, statsFile, stderr: '', exitCode: undefined };
  child.stderr!.on('data', (d: Buffer) => (s.stderr += d.toString()));
  child.once('exit', (code) => {
    s.exitCode = code;
    if (!stopping) error(`server ${app}: exited (${code}) during the run: ${s.stderr.slice(-500)}`);
  });
  const line = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${app} server did not start in 20 s: ${s.stderr}`)), 20_000);
    createInterface({ input: child.stdout! }).once('line', (l) => {
      clearTimeout(t);
      resolve(l);
    });
    child.once('exit', () => reject(new Error(`${app} server exited before listening: ${s.stderr}`)));
  });
  s.port = (JSON.parse(line) as { port: number }).port;
  servers.push(s);
  return s;
}

// ------------------------------------------------------------------------------------------------
// bookkeeping

let stopping = false;
const errors = new Map<string, number>();
const errorSamples: string[] = [];
const caused = { resets: 0, halfCloses: 0, stalledReaders: 0, slowloris: 0, connectionClose: 0 };
const done = { echoBytes: 0, echoConnections: 0, httpRequests: 0, respCommands: 0 };
let lostBytes = 0;

function error(what: string): void {
  if (what.startsWith('echo: connect failed') && servers.some((s) => s.exitCode !== undefined)) return; // the server's exit is the error
  const kind = what.replace(/\d+/g, 'N').slice(0, 80);
  errors.set(kind, (errors.get(kind) ?? 0) + 1);
  if (errorSamples.length < 20) errorSamples.push(`${((performance.now() - t0) / 1000).toFixed(1)} s: ${what}`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const rand = (lo: number, hi: number): number => lo + Math.floor(Math.random() * (hi - lo + 1));

/**
 * A connection with an inbox: `take(n|pred)` waits for bytes, `closed` resolves on close with how it
 * ended. Reading can be paused (a stalled reader).
 */
class Conn {
  readonly sock: net.Socket;
  buf: Buffer = Buffer.alloc(0);
  fin = false;
  reset = false;
  isClosed = false;
  readonly closed: Promise<void>;
  private waiter: (() => void) | null = null;

  constructor(port: number) {
    this.sock = net.connect(port, '127.0.0.1');
    this.sock.setNoDelay(true);
    this.sock.on('data', (d: Buffer) => {
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
      this.wake();
    });
    this.sock.on('end', () => {
      this.fin = true;
      this.wake();
    });
    this.sock.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET' || e.code === 'EPIPE') this.reset = true;
      else this.otherError = `${e.code ?? e.message}`;
    });
    this.closed = new Promise((r) =>
      this.sock.once('close', () => {
        this.isClosed = true;
        this.wake();
        r();
      }),
    );
  }

  otherError = '';

  connected(): Promise<boolean> {
    return new Promise((resolve) => {
      if (!this.sock.connecting) return resolve(!this.sock.destroyed);
      this.sock.once('connect', () => resolve(true));
      this.sock.once('close', () => resolve(false));
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** Wait until `ready()` holds, the connection closes, or the timeout; true when ready. */
  async until(ready: () => boolean, timeoutMs = REPLY_TIMEOUT_MS): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (!ready()) {
      if (this.isClosed || this.fin) return ready();
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiter = () => {
          clearTimeout(t);
          r();
        };
      });
    }
    return true;
  }

  /** The next message `parse` finds in the inbox ({kind: 'incomplete'} when none came in time). */
  async next<R extends { kind: string }>(parse: (b: Buffer) => R): Promise<R | { kind: 'incomplete' }> {
    let r: R | { kind: 'incomplete' } = { kind: 'incomplete' };
    await this.until(() => (r = parse(this.buf)).kind !== 'incomplete');
    return r;
  }

  consume(n: number): void {
    this.buf = this.buf.subarray(n);
  }

  /** RST: the kernel discards what is queued and the peer sees ECONNRESET. */
  resetNow(): void {
    this.sock.resetAndDestroy();
  }
}

// ------------------------------------------------------------------------------------------------
// echo clients

const L = 1_000_003; // prime, so a loss of whole blocks cannot line up with the pattern
const BLOCK = randomBytes(L);
function cycle(b: Buffer, at: number): void {
  for (let o = 0; o < b.length; ) {
    const p = (at + o) % L;
    o += BLOCK.copy(b, o, p, Math.min(L, p + b.length - o));
  }
}

async function echoClient(port: number): Promise<void> {
  while (!stopping) {
    const c = new Conn(port);
    if (!(await c.connected())) {
      error(`echo: connect failed: ${c.otherError}`);
      await sleep(100);
      continue;
    }
    const off = rand(0, L - 1);
    let sent = 0, got = 0, corrupt = false, paused = false;
    const WINDOW = 256 * 1024;
    const began = performance.now();
    const perMs = (Number(values['echo-rate']) * 1e6) / 1000;
    let paceTimer: NodeJS.Timeout | null = null;
    const pump = (): void => {
      const budget = (performance.now() - began) * perMs + 32 * 1024;
      if (writing && sent >= budget && paceTimer === null) paceTimer = setTimeout(() => ((paceTimer = null), pump()), 20);
      while (writing && sent < budget && sent - got < WINDOW && c.sock.writable && c.sock.writableLength < 64 * 1024) {
        const b = Buffer.allocUnsafe(rand(1, 32 * 1024));
        cycle(b, off + sent);
        sent += b.length;
        c.sock.write(b);
      }
    };
    let writing = true;
    c.sock.removeAllListeners('data');
    c.sock.on('data', (d: Buffer) => {
      if (!corrupt) {
        const want = Buffer.allocUnsafe(d.length);
        cycle(want, off + got);
        if (!want.equals(d)) corrupt = true;
      }
      got += d.length;
      if (!paused) pump();
    });
    c.sock.on('drain', pump);
    pump();
    const mode = Math.random();
    const lifetime = rand(300, 4000);
    if (mode < 0.15) {
      await sleep(lifetime);
      writing = false;
      if (paceTimer) clearTimeout(paceTimer);
      c.resetNow();
      caused.resets++;
      await c.closed;
      continue;
    }
    if (mode < 0.3) {
      // A stalled reader: stop reading (under the send timeout), then go on.
      await sleep(lifetime / 2);
      paused = true;
      c.sock.pause();
      caused.stalledReaders++;
      await sleep(1000);
      paused = false;
      c.sock.resume();
      pump();
      await sleep(lifetime / 2);
    } else await sleep(lifetime);
    writing = false;
    if (paceTimer) clearTimeout(paceTimer);
    c.sock.end(); // half-close: everything sent must come back, then the server's FIN
    caused.halfCloses++;
    const t = setTimeout(() => c.sock.destroy(), REPLY_TIMEOUT_MS);
    await c.closed;
    clearTimeout(t);
    if (corrupt) error('echo: a byte came back different from what was sent');
    if (got < sent) {
      lostBytes += sent - got;
      error(`echo: ${sent - got} of ${sent} bytes never came back (${c.reset ? 'RST' : c.fin ? 'FIN' : 'timeout'})`);
    } else if (!c.fin) error(`echo: closed without a FIN (${c.reset ? 'RST' : c.otherError || 'timeout'})`);
    done.echoBytes += got;
    done.echoConnections++;
  }
}

// ------------------------------------------------------------------------------------------------
// HTTP clients

const BODIES = [0, 1, 100, 4096, 65_536, 300_000];

async function httpClient(port: number): Promise<void> {
  while (!stopping) {
    const c = new Conn(port);
    if (!(await c.connected())) {
      error(`http: connect failed: ${c.otherError}`);
      await sleep(100);
      continue;
    }
    const mode = Math.random();
    if (mode < 0.05) {
      // slowloris: a partial head, then nothing: the header timeout answers 408 and closes.
      c.sock.write('GET / HTTP/1.1\r\nHost: a\r\nX-Slow: 1');
      caused.slowloris++;
      const ok = await c.until(() => false, HEADER_TIMEOUT_MS + 10_000);
      await c.closed;
      if (ok || !/^HTTP\/1\.1 408 /.test(c.buf.toString('latin1'))) error(`http: slowloris got ${JSON.stringify(c.buf.subarray(0, 40).toString('latin1'))} instead of 408`);
      continue;
    }
    const n = rand(3, 40);
    let okConn = true;
    for (let i = 0; i < n && okConn && !stopping; i++) {
      const last = i === n - 1;
      // Pipelined batches of 1-3 requests.
      const batch = rand(1, 3);
      const wants: (Buffer | string)[] = [];
      const reqs: Buffer[] = [];
      for (let k = 0; k < batch; k++) {
        const r = Math.random();
        const closeIt = last && k === batch - 1 && mode < 0.5;
        const hdr = `Host: a\r\n${closeIt ? 'Connection: close\r\n' : ''}`;
        if (r < 0.4) {
          reqs.push(Buffer.from(`GET / HTTP/1.1\r\n${hdr}\r\n`));
          wants.push('Hello, World!');
        } else if (r < 0.6) {
          reqs.push(Buffer.from(`GET /json HTTP/1.1\r\n${hdr}\r\n`));
          wants.push('{"message":"Hello, World!"}');
        } else {
          const body = randomBytes(BODIES[rand(0, BODIES.length - 1)]!);
          reqs.push(Buffer.concat([Buffer.from(`POST /echo HTTP/1.1\r\n${hdr}Content-Length: ${body.length}\r\n\r\n`), body]));
          wants.push(body);
        }
      }
      const resetMid = last && mode >= 0.5 && mode < 0.6;
      if (resetMid) {
        const body = randomBytes(512 * 1024);
        c.sock.write(Buffer.concat([Buffer.from(`POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n`), body]));
        await c.until(() => c.buf.length > 1000);
        c.resetNow();
        caused.resets++;
        break;
      }
      await sleep(THINK_MS);
      c.sock.write(Buffer.concat(reqs));
      if (last && mode >= 0.6 && mode < 0.8) {
        c.sock.end();
        caused.halfCloses++;
      }
      for (const want of wants) {
        const res = await c.next((b) => parseResponse(b, 0, b.length));
        if (res.kind !== 'response') {
          error(`http: ${res.kind === 'error' ? `bad response: ${res.reason}` : c.isClosed || c.fin ? `connection ended (${c.reset ? 'RST' : 'FIN'}) with a request unanswered` : 'no response in 15 s'}`);
          okConn = false;
          break;
        }
        const body = res.body;
        if (res.status !== 200 || !(typeof want === 'string' ? body.toString() === want : body.equals(want))) {
          error(`http: status ${res.status} or body differs`);
          okConn = false;
        }
        c.consume(res.next);
        done.httpRequests++;
      }
    }
    if (mode < 0.5 && okConn) caused.connectionClose++;
    if (!c.isClosed) {
      if (mode >= 0.8 || !okConn) c.sock.end();
      const t = setTimeout(() => c.sock.destroy(), REPLY_TIMEOUT_MS);
      await c.closed;
      clearTimeout(t);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// RESP clients

function cmd(...args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

let clientSeq = 0;
async function respClient(port: number): Promise<void> {
  // Keys are this client's own (a bounded set, so the keyspace does not grow with the run), and every
  // value set on them is known: one keyspace serves every connection, on every engine.
  const id = ++clientSeq;
  const known = new Map<string, Buffer>();
  // Keys SET in a burst we reset before all its replies came: the server may have run those SETs or not.
  const uncertain = new Set<string>();
  while (!stopping) {
    const c = new Conn(port);
    if (!(await c.connected())) {
      error(`resp: connect failed: ${c.otherError}`);
      await sleep(100);
      continue;
    }
    let counter = -1; // INCR answers must count up by one on a connection, from wherever they start
    const bursts = rand(3, 30);
    const mode = Math.random();
    let okConn = true;
    for (let b = 0; b < bursts && okConn && !stopping; b++) {
      const out: Buffer[] = [];
      const wants: ((v: RespValue) => boolean)[] = [];
      const setHere: string[] = [];
      for (let k = rand(1, 16); k > 0; k--) {
        const key = `soak${id}:k${rand(0, 20)}`;
        const r = Math.random();
        if (r < 0.35) {
          const v = randomBytes(rand(0, 4096));
          known.set(key, v);
          uncertain.delete(key);
          setHere.push(key);
          out.push(cmd('SET', key, v));
          wants.push((x) => x === 'OK');
        } else if (r < 0.7) {
          const v = known.get(key);
          const any = uncertain.has(key);
          out.push(cmd('GET', key));
          wants.push((x) => (any ? x === null || Buffer.isBuffer(x) : v === undefined ? x === null : Buffer.isBuffer(x) && x.equals(v)));
        } else if (r < 0.9) {
          out.push(cmd('INCR', `soak${id}:n`));
          wants.push((x) => {
            if (typeof x !== 'number' || (counter >= 0 && x !== counter + 1)) return false;
            counter = x;
            return true;
          });
        } else {
          out.push(cmd('PING'));
          wants.push((x) => x === 'PONG');
        }
      }
      await sleep(THINK_MS);
      c.sock.write(Buffer.concat(out));
      if (b === bursts - 1 && mode < 0.1) {
        for (const k of setHere) {
          known.delete(k);
          uncertain.add(k);
        }
        await c.until(() => c.buf.length > 0);
        c.resetNow();
        caused.resets++;
        okConn = false;
        break;
      }
      for (const want of wants) {
        const r = await c.next((b) => parseReply(b, 0, b.length));
        if (r.kind !== 'reply') {
          error(`resp: ${r.kind === 'error' ? `bad reply: ${r.reason}` : c.isClosed || c.fin ? 'connection ended with a command unanswered' : 'no reply in 15 s'}`);
          okConn = false;
          break;
        }
        if (!want(r.value)) {
          error(`resp: unexpected reply ${JSON.stringify(r.value instanceof Buffer ? r.value.subarray(0, 20).toString('latin1') : r.value)}`);
          okConn = false;
        }
        c.consume(r.next);
        done.respCommands++;
      }
    }
    if (!c.isClosed) {
      c.sock.end(); // half-close: the server answers what it has, then closes
      caused.halfCloses++;
      const t = setTimeout(() => c.sock.destroy(), REPLY_TIMEOUT_MS);
      await c.closed;
      clearTimeout(t);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// the run

interface ServerStats {
  connections: { total: number; refused: number };
  requests: number;
  bytesIn: number;
  bytesOut: number;
  engine: string;
}

const t0 = performance.now();

async function main(): Promise<void> {
  const [echo, http, resp] = [await startServer('echo'), await startServer('hello'), await startServer('kv')];
  const engineRan = (JSON.parse(readFileSync(echo.statsFile, 'utf8')) as ServerStats).engine;
  const clients: Promise<void>[] = [];
  for (let i = 0; i < Number(values.echo); i++) clients.push(echoClient(echo.port));
  for (let i = 0; i < Number(values.http); i++) clients.push(httpClient(http.port));
  for (let i = 0; i < Number(values.resp); i++) clients.push(respClient(resp.port));

  const rss: { t: number; bytes: number[] }[] = [];
  const cpu0 = servers.map((s) => cpuSeconds(s.child.pid!));
  const started = performance.now();
  const progressEvery = 30_000;
  let nextProgress = started + progressEvery;
  while (performance.now() - started < DURATION_MS) {
    await sleep(1000);
    const t = performance.now() - started;
    rss.push({ t, bytes: servers.map((s) => (s.exitCode === undefined ? rssBytes(s.child.pid!) : 0)) });
    if (performance.now() >= nextProgress && !values.json) {
      nextProgress += progressEvery;
      const e = [...errors.values()].reduce((a, b) => a + b, 0);
      process.stderr.write(
        `soak ${values.engine}: ${(t / 1000).toFixed(0)} s, echo ${(done.echoBytes / 1e6).toFixed(0)} MB, ${done.httpRequests} HTTP, ` +
          `${done.respCommands} RESP, errors ${e}, lost ${lostBytes}, RSS ${(rss.at(-1)!.bytes.reduce((a, b) => a + b, 0) / 1048576).toFixed(1)} MB\n`,
      );
    }
  }
  const cpu = servers.map((s, i) => cpuSeconds(s.child.pid!) - cpu0[i]!);
  stopping = true;
  await Promise.race([Promise.all(clients), sleep(REPLY_TIMEOUT_MS + 5000)]);
  const finals: (ServerStats | null)[] = [];
  for (const s of servers) {
    s.child.kill('SIGTERM');
    const code = s.exitCode !== undefined ? s.exitCode : await new Promise<number | null>((r) => s.child.once('exit', (c) => r(c)));
    if (code !== 0) error(`server ${s.app}: SIGTERM exit code ${code}: ${s.stderr.slice(-800)}`);
    try {
      finals.push(JSON.parse(readFileSync(s.statsFile, 'utf8')) as ServerStats);
    } catch {
      finals.push(null);
    }
  }

  const window = (from: number, to: number): number[] => {
    const inW = rss.filter((r) => r.t >= from && r.t < to);
    return servers.map((_, i) => median(inW.map((r) => r.bytes[i]!)));
  };
  const start = window(WARMUP_MS, WARMUP_MS + RSS_WINDOW_MS);
  const end = window(DURATION_MS - RSS_WINDOW_MS, DURATION_MS + 1);
  const total = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
  const growth = (total(end) - total(start)) / total(start) * 100;
  const errorCount = [...errors.values()].reduce((a, b) => a + b, 0);
  const serverFailed = servers.some((s) => s.exitCode !== 0);
  const pass = errorCount === 0 && lostBytes === 0 && !serverFailed && growth <= MAX_GROWTH;
  const mb = (b: number): string => (b / 1048576).toFixed(1);
  const report = {
    engine: values.engine,
    engineRan,
    workers: Number(values.workers),
    seconds: DURATION_MS / 1000,
    warmupSeconds: WARMUP_MS / 1000,
    done: { ...done, echoMB: Math.round(done.echoBytes / 1e6) },
    caused,
    errors: errorCount,
    errorKinds: Object.fromEntries(errors),
    errorSamples,
    lostBytes,
    rssStartMB: Object.fromEntries(servers.map((s, i) => [s.app, Number(mb(start[i]!))])),
    rssEndMB: Object.fromEntries(servers.map((s, i) => [s.app, Number(mb(end[i]!))])),
    rssGrowthPct: Number(growth.toFixed(2)),
    serverCpuSeconds: Object.fromEntries(servers.map((s, i) => [s.app, Number(cpu[i]!.toFixed(1))])),
    servers: Object.fromEntries(servers.map((s, i) => [s.app, { exit: s.exitCode, connections: finals[i]?.connections.total, refused: finals[i]?.connections.refused, requests: finals[i]?.requests }])),
    pass,
  };
  if (values.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else {
    const o = process.stdout;
    o.write(`soak: ${report.engineRan} (asked ${values.engine}${report.workers > 1 ? `, --workers ${report.workers}` : ''}), ${report.seconds} s, warm-up ${report.warmupSeconds} s, servers' young generation ${Number(values['young-mb']) > 0 ? `${values['young-mb']} MB semi-spaces` : "V8's default sizing"}\n`);
    o.write(`  load:   echo ${report.done.echoMB} MB over ${done.echoConnections} checked connections, ${done.httpRequests} HTTP requests, ${done.respCommands} RESP commands\n`);
    o.write(`  caused: ${caused.resets} resets, ${caused.halfCloses} half-closes, ${caused.stalledReaders} stalled readers, ${caused.slowloris} slowloris, ${caused.connectionClose} Connection: close\n`);
    o.write(`  errors: ${errorCount}${errorCount ? ` ${JSON.stringify(report.errorKinds)}` : ''}\n`);
    for (const e of errorSamples) o.write(`          ${e}\n`);
    o.write(`  lost bytes: ${lostBytes}\n`);
    o.write(`  RSS (median of ${RSS_WINDOW_MS / 1000} s): after warm-up ${servers.map((s, i) => `${s.app} ${mb(start[i]!)}`).join(', ')} = ${mb(total(start))} MB; ` +
      `end ${servers.map((s, i) => `${s.app} ${mb(end[i]!)}`).join(', ')} = ${mb(total(end))} MB; growth ${growth.toFixed(2)}% (limit ${MAX_GROWTH}%)\n`);
    o.write(`  server CPU: ${servers.map((s, i) => `${s.app} ${cpu[i]!.toFixed(1)} s`).join(', ')}; exits: ${servers.map((s) => `${s.app} ${s.exitCode}`).join(', ')}\n`);
    for (const s of servers) if (s.exitCode !== 0) o.write(`  server ${s.app} stderr: ${s.stderr.slice(-2000)}\n`);
    o.write(`  ${pass ? 'PASS' : 'FAIL'}\n`);
  }
  rmSync(dir, { recursive: true, force: true });
  process.exitCode = pass ? 0 : 1;
}

await main();
process.exit(); // client sockets still lingering must not hold the exit
