/**
 * A Service joins a protocol codec to an app: bytes in, bytes out. Engines call `feed()` with the
 * unconsumed input of one connection and write whatever lands in `out`; they never see requests.
 *
 * Requests of one connection are handled strictly in order. When a handler answers with a Promise
 * (or simulated async work is configured), `feed()` stops at that request and hands the engine a
 * `pending` promise; the engine stops reading the connection, writes the bytes the promise yields,
 * then feeds the rest. That keeps pipelined responses in order without a per-request queue.
 */
import { performance } from 'node:perf_hooks';
import { OutBuf } from '../protocols/outbuf.js';
import { M_HEAD, NEED_MORE, rq, scanRequest, scannedRequest } from '../protocols/http/request.js';
import { writeError as writeHttpError, writeResponse, type WriteOptions } from '../protocols/http/response.js';
import { DEFAULT_HTTP_LIMITS, type HttpLimits, type HttpRequest, type HttpResponse } from '../protocols/http/types.js';
import { parseCommand, parseCommandArgv, RespArgv } from '../protocols/resp/server.js';
import { writeError as writeRespError } from '../protocols/resp/encode.js';
import { DEFAULT_RESP_LIMITS, type RespLimits } from '../protocols/resp/types.js';
import { nanosleep } from '../sys/process.js';
import * as ffi from '../sys/ffi.js';
import type { FileSend } from '../sys/file.js';
import type { App, HttpApp, RespApp } from './types.js';
import type { WorkSpec } from './work.js';

/** What a finished async request hands back: its encoded response, and whether to close after it. */
export interface Deferred {
  bytes: Buffer;
  close: boolean;
}

/** Filled by feed(); reused by the engine for every call so feeding allocates nothing. */
export class FeedResult {
  /** Absolute offset of the first byte not consumed (a partial request the engine must keep). */
  next = 0;
  /** Close the connection once `out` (and any backlog) is written. */
  close = false;
  /** Requests completed by this call. */
  requests = 0;
  /** Set when a request is still being handled; see the file comment. */
  pending: Promise<Deferred> | null = null;
  /**
   * feed() stopped at the output bound (`maxOut`) with input left: buf[next,end) may hold complete
   * requests. Hold it, write `out`, and feed it again once the output is written, without waiting for
   * more bytes (none may come: the client may have sent everything and wait for the answers).
   */
  more = false;
  /**
   * Bytes one feed() call may append to `out` before it stops between requests (and sets `more`). A
   * client that pipelines small requests for large answers (64 KB of `GET k` for a 1 MB value is
   * ~3 GB of replies) would otherwise grow `out` without bound before the engine can apply
   * backpressure. Not reset: an engine that honours `more` sets it once (FEED_OUT_BOUND); the default
   * leaves feeding unbounded for engines that do not.
   */
  maxOut = Infinity;
  /**
   * A file body to send after `out` (a response with `file`, apps/static.ts); feed() stopped after
   * that response, and `more` says whether input is left. The engine owns the fd now: it sends the
   * bytes (engines/filebody.ts) and closes it, also if the connection dies first.
   */
  file: FileSend | null = null;
  /**
   * Set once by an engine that sends file bodies itself. Otherwise feed() copies the file into `out`
   * (pread), which is correct everywhere but holds the whole file in memory for a moment.
   */
  acceptsFile = false;

  reset(): void {
    this.next = 0;
    this.close = false;
    this.requests = 0;
    this.pending = null;
    this.more = false;
    this.file = null;
  }
}

/**
 * The output bound engines set in FeedResult.maxOut: a few socket buffers' worth, so a feed stops long
 * before memory matters, while pipelined small replies (hello, redis-benchmark -P) never reach it.
 */
export const FEED_OUT_BOUND = 256 * 1024;

export interface StallStats {
  /** App calls that held the loop longer than the threshold. */
  count: number;
  /** Longest app call seen, ms. */
  maxMs: number;
  /** Stall count by route (HTTP method + path) or RESP command. */
  byRoute: Map<string, number>;
}

export interface ServiceOptions {
  http?: Partial<HttpLimits>;
  resp?: Partial<RespLimits>;
  work?: WorkSpec | null;
  /**
   * Time each app call and count those that hold the loop longer than this (ms). Event-loop engines
   * set it (default 5 ms); blocking engines leave it off, since a slow handler only holds its own thread.
   */
  stallMs?: number | null;
  /** Called (rate-limited by the caller) when a stall is seen. */
  onStall?: (route: string, ms: number) => void;
  /**
   * File bodies: true (default) sends them with sendfile(2) (zero-copy, nginx's `sendfile on`), false
   * copies them through user space with pread(2) + write(2), to measure what the copy costs.
   */
  sendfile?: boolean;
}

export interface Service {
  readonly protocol: App['protocol'];
  readonly app: App;
  /** Set by the engine when shutting down: HTTP answers carry `Connection: close`, then the connection closes. */
  draining: boolean;
  readonly stalls: StallStats;
  /** How engines send file bodies: sendfile(2) (true) or pread(2) + write(2) (false). ServiceOptions.sendfile. */
  readonly sendfile: boolean;
  feed(buf: Buffer, start: number, end: number, out: OutBuf, r: FeedResult): void;
  /**
   * An event loop that reads the clock once per turn (after each wait) hands the reading here
   * (performance.now() ms), and NaN when its turn ends. Until then, feed() takes it as "now": a timed
   * feed reads the clock once (at its end, which becomes "now" for the next feed) instead of twice,
   * and HTTP responses take their Date from it instead of reading the wall clock. The time charged to
   * a batch then includes the loop's own work since the previous reading (a few µs of syscalls),
   * which a stall threshold in milliseconds does not notice. Engines that never call it keep reading
   * the clock around each feed.
   */
  tick(now: number): void;
  /** The answer to a connection over the connection cap (HTTP 503, RESP `-ERR max number of clients reached`). */
  refuse(out: OutBuf): void;
  /** The answer when a request stays incomplete past the header timeout (HTTP 408; RESP and echo close silently). */
  timeout(out: OutBuf): void;
}

// Redis's wording (networking.c acceptCommonHandler) and nginx's choice of 503 for an over-full server.
function refuseWith(protocol: App['protocol']): (out: OutBuf) => void {
  if (protocol === 'http') return (out) => writeHttpError(out, 503);
  if (protocol === 'resp') return (out) => writeRespError(out, 'ERR max number of clients reached');
  return () => {};
}

function timeoutWith(protocol: App['protocol']): (out: OutBuf) => void {
  return protocol === 'http' ? (out) => writeHttpError(out, 408) : () => {};
}

// `performance` from node:perf_hooks, not the global: in Node 20 the global is a lazy accessor on
// globalThis, a getter call on every use (it showed as LoadGlobalIC and util.js `get` in profiles).
const now = (): number => performance.now();

/** The loop's clock reading (Service.tick): NaN when there is none. */
interface Clock {
  at: number;
  ticking: boolean;
}

function newClock(): Clock {
  return { at: NaN, ticking: false };
}

function tickFor(clock: Clock): (t: number) => void {
  return (t) => {
    clock.at = t;
    clock.ticking = t === t; // not NaN
  };
}
const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

function isPromise<T>(v: unknown): v is Promise<T> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

function routeOf(req: HttpRequest): string {
  const q = req.target.indexOf('?');
  return `${req.method} ${q < 0 ? req.target : req.target.slice(0, q)}`;
}

/** One loop-stall warning at most this often: a stalling route would otherwise print on every request. */
const STALL_WARN_EVERY_MS = 5000;

/**
 * The loop-stall warning of every event-loop engine (ServiceOptions.onStall): on stderr, at most one
 * per STALL_WARN_EVERY_MS, none when quiet. `count` reads the stalls counted so far.
 */
export function stallWarner(engine: string, quiet: boolean, count: () => number): (route: string, ms: number) => void {
  let last = 0;
  return (route, ms) => {
    const t = Date.now();
    if (quiet || t - last < STALL_WARN_EVERY_MS) return;
    last = t;
    process.stderr.write(
      `iolab ${engine}: loop stall: ${route} held the event loop ${ms.toFixed(1)} ms ` +
        `(${count()} so far); every connection on this loop waited meanwhile\n`,
    );
  };
}

export function createService(app: App, opts: ServiceOptions = {}): Service {
  const stalls: StallStats = { count: 0, maxMs: 0, byRoute: new Map() };
  const stallMs = opts.stallMs ?? null;
  const noteStall = (route: string, ms: number): void => {
    if (ms > stalls.maxMs) stalls.maxMs = ms;
    if (stallMs === null || ms < stallMs) return;
    stalls.count++;
    stalls.byRoute.set(route, (stalls.byRoute.get(route) ?? 0) + 1);
    opts.onStall?.(route, ms);
  };
  switch (app.protocol) {
    case 'http':
      return httpService(app, { ...DEFAULT_HTTP_LIMITS, ...opts.http }, opts.work ?? null, stallMs, stalls, noteStall, opts.sendfile ?? true);
    case 'resp':
      return respService(app, { ...DEFAULT_RESP_LIMITS, ...opts.resp }, opts.work ?? null, stallMs, stalls, noteStall, opts.sendfile ?? true);
    case 'echo':
      return {
        protocol: 'echo',
        app,
        draining: false,
        stalls,
        sendfile: opts.sendfile ?? true,
        refuse: refuseWith('echo'),
        timeout: timeoutWith('echo'),
        tick() {},
        feed(buf, start, end, out, r) {
          out.bytes(buf, start, end);
          r.next = end;
          r.requests++;
          if (this.draining) r.close = true;
        },
      };
  }
}

type NoteStall = (route: string, ms: number) => void;
type FeedFn = Service['feed'];

/**
 * feed() timed as one batch: clock readings per call, not per request (at 500k pipelined commands
 * a second, two performance.now() calls per command were ~5% of the server's CPU). A stall is a call
 * that held the loop, so the whole batch is what counts; it is charged to the batch's last request,
 * which the inner feed records in `seen`. With a ticking engine (Service.tick) the start is the
 * previous reading and only the end is read: one clock read per call (at -c100 without pipelining a
 * call is one request, and each reading is ~30-60 ns on this VM).
 * While it runs, `clock.at` is the call's start: the Date of the responses it writes.
 */
function timedFeed<T>(inner: FeedFn, seen: { last: T | null }, route: (t: T) => string, stallMs: number | null, stalls: StallStats, noteStall: NoteStall, clock: Clock): FeedFn {
  return (buf, start, end, out, r) => {
    const ticking = clock.ticking;
    const t0 = ticking ? clock.at : (clock.at = now());
    seen.last = null;
    inner(buf, start, end, out, r);
    const t1 = now();
    clock.at = ticking ? t1 : NaN;
    const ms = t1 - t0;
    const l = seen.last as T | null; // set by `inner` (TypeScript cannot see the call assign it)
    if (l !== null && (ms > stalls.maxMs || (stallMs !== null && ms >= stallMs))) noteStall(route(l), ms);
  };
}

function commandOf(args: Buffer[]): string {
  return args[0] ? args[0].toString('latin1').toUpperCase() : '?';
}

function httpService(app: HttpApp, limits: HttpLimits, work: WorkSpec | null, stallMs: number | null, stalls: StallStats, noteStall: NoteStall, sendfile: boolean): Service {
  const timed = stallMs !== null || work !== null;
  const seen: { last: HttpRequest | null } = { last: null };
  const clock = newClock();
  const svc: Service = {
    protocol: 'http',
    app,
    draining: false,
    stalls,
    sendfile,
    refuse: refuseWith('http'),
    timeout: timeoutWith('http'),
    tick: tickFor(clock),
    feed: timed ? timedFeed(feedAll, seen, routeOf, stallMs, stalls, noteStall, clock) : feedAll,
  };
  /** Reused for every response: writeResponse() reads it and keeps nothing. */
  const wo: WriteOptions = { keepAlive: true, head: false, versionMinor: 1, now: NaN };

  function feedAll(buf: Buffer, start: number, end: number, out: OutBuf, r: FeedResult): void {
    let pos = start;
    const outStop = out.len + r.maxOut;
    wo.now = clock.at;
    while (pos < end) {
      if (out.len >= outStop) {
        r.more = true; // the rest waits until this output is written (FeedResult.more)
        break;
      }
      // The scan and the request without a result object around them (request.ts scanRequest).
      const next = scanRequest(buf, pos, end, limits);
      if (next < 0) {
        if (next === NEED_MORE) break;
        writeHttpError(out, rq.status);
        r.close = true;
        pos = end;
        break;
      }
      const head = rq.method === M_HEAD;
      const req = scannedRequest(buf);
      seen.last = req;
      pos = next;
      const keepAlive = req.keepAlive && !svc.draining;
      if (work?.kind === 'async') {
        r.pending = sleep(work.ms).then(() => call(req)).then((res) => encode(res, req, keepAlive, head));
        break;
      }
      if (work?.kind === 'blocking') nanosleep(work.ms);
      const res = call(req);
      if (isPromise<HttpResponse>(res)) {
        r.pending = res.then((v) => encode(v, req, keepAlive, head), () => encode(ERROR_500, req, false, head));
        break;
      }
      r.requests++;
      if (res.file !== undefined) {
        const opts = { keepAlive, head, versionMinor: req.versionMinor };
        if (writeFileResponse(out, res, opts, r.acceptsFile ? r : null) === FILE_LOST) {
          r.close = true; // the file ended before its Content-Length: the framing cannot be kept
          pos = end;
          break;
        }
        if (r.file !== null) {
          // The engine sends the file after `out`; what follows waits for it (FeedResult.file).
          if (!keepAlive) {
            r.close = true;
            pos = end;
          } else if (pos < end) r.more = true;
          break;
        }
      } else {
        wo.keepAlive = keepAlive;
        wo.head = head;
        wo.versionMinor = req.versionMinor;
        writeResponse(out, res, wo);
      }
      if (!keepAlive) {
        r.close = true;
        pos = end; // anything pipelined after a closing request is discarded, as nginx does
        break;
      }
    }
    r.next = pos;
  }

  /** `alone`: called outside feed() (after async work), so timed by itself. */
  function call(req: HttpRequest, alone = false): HttpResponse | Promise<HttpResponse> {
    const t0 = alone && timed ? now() : 0;
    let res: HttpResponse | Promise<HttpResponse>;
    try {
      res = app.handle(req);
    } catch (e) {
      reportAppError(app.name, e);
      res = ERROR_500;
    }
    if (t0 !== 0) noteStall(routeOf(req), now() - t0);
    return res;
  }

  function encode(res: HttpResponse, req: HttpRequest, keepAlive: boolean, head: boolean): Deferred {
    // Shutdown may have begun while the handler ran: that reply must carry Connection: close too.
    if (svc.draining) keepAlive = false;
    const o = new OutBuf(256);
    const opts = { keepAlive, head, versionMinor: req.versionMinor };
    if (res.file !== undefined) {
      if (writeFileResponse(o, res, opts, null) === FILE_LOST) keepAlive = false;
    } else writeResponse(o, res, opts);
    return { bytes: o.take(), close: !keepAlive };
  }
  return svc;
}

const FILE_OK = 0, FILE_LOST = 1;

/**
 * The head of a response with a file body, then: with `r`, hand the file to the engine (r.file);
 * without, copy it into `out` here (pread). Always leaves the fd closed or owned by the engine.
 * FILE_LOST: the file came up short of the Content-Length already written (truncated meanwhile).
 */
function writeFileResponse(out: OutBuf, res: HttpResponse, opts: { keepAlive: boolean; head: boolean; versionMinor: 0 | 1 }, r: FeedResult | null): number {
  const f = res.file!;
  const ok = Number.isInteger(f.fd) && f.fd >= 0 && Number.isSafeInteger(f.offset) && f.offset >= 0 && Number.isSafeInteger(f.length) && f.length >= 0;
  if (!ok || res.body !== undefined) {
    if (Number.isInteger(f.fd) && f.fd >= 0) ffi.close(f.fd);
    writeResponse(out, { status: 500, headers: ERROR_500.headers, body: 'Internal Server Error: invalid file body\n' }, opts);
    return FILE_OK;
  }
  writeResponse(out, res, opts);
  const nobody = opts.head || f.length === 0 || res.status < 200 || res.status === 204 || res.status === 304;
  if (nobody) {
    ffi.close(f.fd);
    return FILE_OK;
  }
  if (r !== null) {
    r.file = { fd: f.fd, off: f.offset, end: f.offset + f.length };
    return FILE_OK;
  }
  out.ensure(f.length);
  let off = f.offset, left = f.length;
  while (left > 0) {
    const n = ffi.pread(f.fd, out.buf.subarray(out.len, out.len + left), left, off);
    if (n <= 0) break;
    out.len += n;
    off += n;
    left -= n;
  }
  ffi.close(f.fd);
  return left === 0 ? FILE_OK : FILE_LOST;
}

const ERROR_500: HttpResponse = Object.freeze({ status: 500, headers: [['Content-Type', 'text/plain']] as const, body: 'Internal Server Error\n' });

let lastAppError = 0;
function reportAppError(name: string, e: unknown): void {
  const t = Date.now();
  if (t - lastAppError < 5000) return;
  lastAppError = t;
  process.stderr.write(`iolab: app ${name} threw: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
}

function respService(app: RespApp, limits: RespLimits, work: WorkSpec | null, stallMs: number | null, stalls: StallStats, noteStall: NoteStall, sendfile: boolean): Service {
  // Active expiry, as Redis's serverCron does ~10 times a second. The timer is unref'd, so it never keeps
  // a process alive, and it runs whenever the engine's loop yields to Node's (every <= 50 ms).
  if (typeof app.sweep === 'function') setInterval(() => app.sweep!(), 100).unref();
  const timed = stallMs !== null || work !== null;
  // Apps that read arguments in place (kv) get multibulk commands without a Buffer per argument, an
  // array and a result object: those were ~13% of kv's CPU samples at redis-benchmark -P 16, and
  // handleArgv took kv's CPU per GET/SET there from ~1.3-1.5 us to ~1.0-1.1 us. Simulated work keeps
  // the copies (an async reply runs after the read buffer has been reused).
  const argv = typeof app.handleArgv === 'function' && work === null ? new RespArgv() : null;
  // The last command of a feed, named only when a stall is charged to it (`seenBuf` holds its bytes then).
  const seen: { last: Buffer[] | RespArgv | null } = { last: null };
  let seenBuf: Buffer | null = null;
  const route = (l: Buffer[] | RespArgv): string =>
    l instanceof RespArgv ? seenBuf!.toString('latin1', l.pos[0], l.pos[0] + l.pos[1]).toUpperCase() : commandOf(l);
  const clock = newClock();
  const svc: Service = {
    protocol: 'resp',
    app,
    draining: false,
    stalls,
    sendfile,
    refuse: refuseWith('resp'),
    timeout: timeoutWith('resp'),
    tick: tickFor(clock),
    feed: timed ? timedFeed(feedAll, seen, route, stallMs, stalls, noteStall, clock) : feedAll,
  };

  function feedAll(buf: Buffer, start: number, end: number, out: OutBuf, r: FeedResult): void {
    let pos = start;
    const outStop = out.len + r.maxOut;
    seenBuf = buf;
    while (pos < end) {
      if (out.len >= outStop) {
        r.more = true; // the rest waits until this output is written (FeedResult.more)
        break;
      }
      const p = argv !== null ? parseCommandArgv(buf, pos, end, limits, argv) : parseCommand(buf, pos, end, limits);
      if (p.kind === 'argv') {
        pos = argv!.next;
        seen.last = argv;
        r.requests++;
        if (callArgv(buf, argv!, out)) {
          r.close = true;
          pos = end;
          break;
        }
        continue;
      }
      if (p.kind === 'incomplete') break;
      if (p.kind === 'skip') {
        pos = p.next;
        continue;
      }
      if (p.kind === 'error') {
        // Redis answers a protocol error and closes (networking.c: setProtocolError).
        writeRespError(out, `ERR ${p.message}`);
        r.close = true;
        pos = end;
        break;
      }
      pos = p.next;
      const args = p.args;
      seen.last = args;
      if (work?.kind === 'async') {
        r.pending = sleep(work.ms).then(() => {
          const o = new OutBuf(256);
          const close = call(args, o) || svc.draining;
          return { bytes: o.take(), close };
        });
        break;
      }
      if (work?.kind === 'blocking') nanosleep(work.ms);
      r.requests++;
      if (call(args, out)) {
        r.close = true;
        pos = end;
        break;
      }
    }
    r.next = pos;
    if (svc.draining && !r.more) r.close = true; // with `more`, the feed of the rest closes
  }

  function callArgv(buf: Buffer, a: RespArgv, out: OutBuf): boolean {
    let res: void | 'close';
    try {
      res = app.handleArgv!(buf, a, out);
    } catch (e) {
      reportAppError(app.name, e);
      writeRespError(out, 'ERR internal error');
      res = undefined;
    }
    return res === 'close';
  }

  /** `alone`: called outside feed() (after async work), so timed by itself. */
  function call(args: Buffer[], out: OutBuf, alone = false): boolean {
    const t0 = alone && timed ? now() : 0;
    let res: void | 'close';
    try {
      res = app.handle(args, out);
    } catch (e) {
      reportAppError(app.name, e);
      writeRespError(out, 'ERR internal error');
      res = undefined;
    }
    if (t0 !== 0) noteStall(commandOf(args), now() - t0);
    return res === 'close';
  }
  return svc;
}
