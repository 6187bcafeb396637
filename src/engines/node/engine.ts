/**
 * The `node` engine: Node's own `net` and `http` modules (libuv over epoll, llhttp for HTTP), the
 * baseline most users know. Try: iolab serve --engine node --app hello & curl localhost:8080/
 *
 *  - echo and RESP apps run over `net.Socket` 'data' events through the same Service as every other
 *    engine (feed, partial input kept per connection, backpressure by pausing the socket).
 *  - HTTP apps run under `node:http`: llhttp parses, the app's handle() gets an HttpRequest built from
 *    the IncomingMessage, and its HttpResponse is written with the same status, body and
 *    Content-Length the iolab encoder would write. Node adds its own Date/Connection/Keep-Alive
 *    headers and answers bad input itself (llhttp's verdicts, not iolab's parser's).
 *
 * Limits (opts.limits, as the reactor enforces them): the connection cap answers with the Service's
 * refusal; HTTP header and idle timeouts are Node's own headersTimeout (408) and keepAliveTimeout;
 * for net, idle is the socket timeout and an incomplete request past the header timeout is closed; a
 * send timeout and lingering close are done here, as the reactor does them.
 *
 * What it cannot show: libuv's syscalls are not visible from JavaScript, so `syscalls` is empty and
 * `eagain`/`wakeups` are 0.
 */
import http from 'node:http';
import { closeSync, createReadStream } from 'node:fs';
import net from 'node:net';
import { loadApp } from '../../apps/index.js';
import { createService, FEED_OUT_BOUND, FeedResult, stallWarner, type Deferred, type Service, type StallStats } from '../../apps/service.js';
import type { App, HttpApp } from '../../apps/types.js';
import type { WorkSpec } from '../../apps/work.js';
import { OutBuf } from '../../protocols/outbuf.js';
import { statusText } from '../../protocols/http/response.js';
import { DEFAULT_HTTP_LIMITS, type HttpLimits, type HttpRequest, type HttpResponse } from '../../protocols/http/types.js';
import { listenTcp, nanosleep } from '../../sys/index.js';
import type { Engine, EngineOptions, EngineStats, Listening } from '../types.js';
import { performance } from 'node:perf_hooks'; // the global is a lazy accessor: a getter call per use

const EMPTY = Buffer.alloc(0);
const ERROR_500: HttpResponse = Object.freeze({ status: 500, headers: [['Content-Type', 'text/plain']] as const, body: 'Internal Server Error\n' });

/** Per-connection state for the `net` path (one small object per socket: this is Node's model). */
interface NetConn {
  sock: net.Socket;
  /** Bytes of a partial request, presented again with the next chunk. */
  held: Buffer | null;
  /** An async request is being handled: reading is paused. */
  pending: boolean;
  /** Close once what is queued is written. */
  closing: boolean;
  /** The peer sent FIN. */
  eof: boolean;
  /** When the held partial request began (performance.now()), 0 when none: the header timeout. */
  heldSince: number;
  /** `held` may hold complete requests (feed() stopped at its output bound): fed on 'drain'. */
  more: boolean;
}

/** Per socket: write progress, for the send timeout. */
interface SockState {
  written: number;
  progressAt: number;
}

/** How often send and header timeouts are checked (as the reactor's sweep). */
const SWEEP_MS = 250;

function bodyless(status: number): boolean {
  return status < 200 || status === 204 || status === 304;
}

/** Headers the iolab encoder owns (response.ts); an app's copies are dropped here too. */
function isFraming(name: string): boolean {
  const n = name.toLowerCase();
  return n === 'date' || n === 'connection' || n === 'content-length' || n === 'transfer-encoding';
}

export class NodeEngine implements Engine {
  readonly name = 'node';
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private server: net.Server | http.Server | null = null;
  private service: Service | null = null;
  private app: App | null = null;
  private stalls: StallStats = { count: 0, maxMs: 0, byRoute: new Map() };
  private readonly sockets = new Map<net.Socket, SockState>();
  private sweepTimer: NodeJS.Timeout | null = null;
  private refused = 0;
  private readonly conns = new Set<NetConn>();
  /** http: responses not yet finished, per socket (to tell idle connections at stop). */
  private readonly inflight = new Map<net.Socket, number>();
  private readonly out = new OutBuf(64 * 1024);
  private readonly fr = new FeedResult();
  private stopping = false;
  private draining = false;
  private drainTimer: NodeJS.Timeout | null = null;

  // ---- stats ----
  private current = 0;
  private peak = 0;
  private total = 0;
  private requests = 0;
  /** Bytes of sockets already closed; open ones are summed live. */
  private closedIn = 0;
  private closedOut = 0;

  constructor(private readonly opts: EngineOptions, private readonly reusePort = false) {
    this.done = new Promise((res) => (this.resolveDone = res));
    this.fr.maxOut = FEED_OUT_BOUND; // pipelined requests for large answers: see NetConn.more
    this.warnStall = stallWarner('node', opts.quiet, () => this.stalls.count);
  }

  async start(): Promise<Listening> {
    const o = this.opts;
    const app = await loadApp(o.app);
    this.app = app;
    // Every protocol gets a Service: echo and RESP are fed through it; HTTP uses its refusal bytes.
    this.service = createService(app, { ...o.service, onStall: (route, ms) => this.warnStall(route, ms) });
    const server = app.protocol === 'http' ? this.httpServer(app) : this.netServer();
    this.server = server;
    // First, before net's and http's own listeners: a refused socket must not reach them.
    server.prependListener('connection', (sock: net.Socket) => this.onConnection(sock));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const ready = (): void => {
        server.off('error', reject);
        resolve();
      };
      if (this.reusePort) {
        // Node 20's net has no reusePort option: make the SO_REUSEPORT listener ourselves and hand
        // libuv the fd (it calls listen() again, which only resets the backlog).
        const fd = listenTcp({ host: o.host, port: o.port, backlog: o.backlog, reusePort: true, nonBlocking: true });
        server.listen({ fd, backlog: o.backlog }, ready);
      } else server.listen({ host: o.host, port: o.port, backlog: o.backlog }, ready);
    });
    server.on('error', (e) => {
      if (!o.quiet) process.stderr.write(`iolab node: server error: ${e.message}\n`);
    });
    server.once('close', () => this.finish());
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweepTimer.unref();
    const addr = server.address() as net.AddressInfo;
    return { host: addr.address, port: addr.port, engine: this.name };
  }

  // ---------------------------------------------------------------- net (echo, RESP)

  private netServer(): net.Server {
    this.stalls = this.service!.stalls;
    // allowHalfOpen: after the peer's FIN we still answer what it sent, then end (RELIABILITY.md 2).
    return net.createServer({ allowHalfOpen: true, noDelay: true }, (sock) => this.onNetConnection(sock));
  }

  private onNetConnection(sock: net.Socket): void {
    if (!this.sockets.has(sock)) return; // refused
    const c: NetConn = { sock, held: null, pending: false, closing: false, eof: false, heldSince: 0, more: false };
    this.conns.add(c);
    // Idle keep-alive connections (no bytes either way) are closed after the idle timeout.
    sock.setTimeout(this.opts.limits.idleTimeoutMs, () => sock.destroy());
    sock.on('data', (d: Buffer) => this.onData(c, d));
    sock.on('end', () => {
      c.eof = true;
      if (c.more) return; // requests held back by the output bound are answered first (refeed)
      c.held = null; // a partial request can never complete now
      if (!c.pending) this.endConn(c);
    });
    sock.on('drain', () => {
      if (c.more) this.refeed(c);
      else if (!c.pending && !c.closing && !c.eof) sock.resume();
    });
    sock.on('close', () => this.conns.delete(c));
  }

  private onData(c: NetConn, d: Buffer): void {
    if (c.closing) return; // lingering close: discard
    let buf = d;
    if (c.held !== null) {
      buf = Buffer.concat([c.held, d]);
      c.held = null;
    }
    this.feed(c, buf);
  }

  private feed(c: NetConn, buf: Buffer): void {
    const r = this.fr, out = this.out, sock = c.sock;
    r.reset();
    this.service!.feed(buf, 0, buf.length, out, r);
    this.requests += r.requests;
    c.more = r.more;
    if (r.next < buf.length) {
      if (r.more) c.heldSince = 0; // not a slow request: our own output holds it back
      else if (r.next !== 0 || c.heldSince === 0) c.heldSince = performance.now(); // from the request's first byte
      c.held = Buffer.from(buf.subarray(r.next));
    } else c.heldSince = 0;
    let ok = true;
    if (out.len > 0) ok = sock.write(out.take());
    if (r.close) {
      this.endConn(c);
      return;
    }
    if (r.more) {
      // feed() stopped at its output bound: the rest once this is written ('drain'; at once if it was).
      sock.pause();
      if (ok) setImmediate(() => this.refeed(c));
      return;
    }
    if (r.pending !== null) {
      c.pending = true;
      sock.pause();
      r.pending.then(
        (d) => this.onDeferred(c, d),
        () => sock.destroy(),
      );
      return;
    }
    if (!ok) sock.pause(); // backpressure: resumed on 'drain'
    else if (this.stopping && c.held === null) this.endConn(c);
  }

  private refeed(c: NetConn): void {
    if (!c.more || c.pending || c.closing || c.sock.destroyed) return;
    c.more = false;
    const h = c.held!;
    c.held = null;
    this.feed(c, h);
    if (c.eof && !c.more && !c.pending && !c.closing) {
      c.held = null; // after the peer's FIN a partial request can never complete
      this.endConn(c);
    } else if (!c.more && !c.pending && !c.closing && !c.eof && !c.sock.writableNeedDrain) c.sock.resume(); // else on 'drain'
  }

  private onDeferred(c: NetConn, d: Deferred): void {
    c.pending = false;
    const sock = c.sock;
    if (sock.destroyed) return;
    const ok = d.bytes.length > 0 ? sock.write(d.bytes) : true;
    if (d.close || c.closing || c.eof || (this.stopping && c.held === null)) {
      this.endConn(c);
      return;
    }
    if (c.held !== null) {
      const h = c.held;
      c.held = null;
      this.feed(c, h);
      return;
    }
    if (ok) sock.resume();
  }

  /**
   * Write what is queued, then FIN, and linger as the reactor does: keep reading (discarding) until the
   * peer's FIN, which destroys the socket (allowHalfOpen, both sides ended), or lingerMs.
   */
  private endConn(c: NetConn): void {
    if (c.closing && c.sock.writableEnded) return;
    c.closing = true;
    c.held = null;
    const sock = c.sock;
    const linger = this.opts.limits.lingerMs;
    if (linger <= 0 || c.eof) {
      sock.end(() => sock.destroy());
      return;
    }
    sock.end(() => setTimeout(() => sock.destroy(), linger).unref());
    sock.resume();
  }

  // ---------------------------------------------------------------- http (hello)

  private httpServer(app: HttpApp): http.Server {
    const limits: HttpLimits = { ...DEFAULT_HTTP_LIMITS, ...this.opts.service.http };
    const work = this.opts.service.work ?? null;
    const stallMs = this.opts.service.stallMs ?? null;
    const { headerTimeoutMs, idleTimeoutMs } = this.opts.limits;
    const server = http.createServer(
      {
        maxHeaderSize: limits.maxHeaderBytes,
        noDelay: true,
        requireHostHeader: true,
        // Node answers 408 itself once a request's head takes longer than headersTimeout. It checks
        // every connectionsCheckingInterval (default 30 s, far coarser than the timeout); use the sweep's.
        headersTimeout: headerTimeoutMs,
        requestTimeout: Math.max(300_000, headerTimeoutMs),
        connectionsCheckingInterval: SWEEP_MS,
        keepAliveTimeout: idleTimeoutMs,
      },
      (req, res) => this.onHttpRequest(app, limits, work, stallMs, req, res),
    );
    return server;
  }

  private onHttpRequest(app: HttpApp, limits: HttpLimits, work: WorkSpec | null, stallMs: number | null, req: http.IncomingMessage, res: http.ServerResponse): void {
    const sock = req.socket;
    if (!this.sockets.has(sock)) return; // refused: the 503 is already on its way
    this.inflight.set(sock, (this.inflight.get(sock) ?? 0) + 1);
    res.once('close', () => {
      const n = (this.inflight.get(sock) ?? 1) - 1;
      if (n > 0) this.inflight.set(sock, n);
      else this.inflight.delete(sock);
    });
    const h = req.headers;
    if (h['content-length'] !== undefined && Number(h['content-length']) > limits.maxBody) {
      this.reject(req, res, 413);
      return;
    }
    if (h['content-length'] === undefined && h['transfer-encoding'] === undefined) {
      this.answer(app, work, stallMs, req, res, EMPTY);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (d: Buffer) => {
      if (over) return;
      size += d.length;
      if (size > limits.maxBody) {
        over = true;
        this.reject(req, res, 413);
        return;
      }
      chunks.push(d);
    });
    req.on('end', () => {
      if (!over) this.answer(app, work, stallMs, req, res, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    });
  }

  /** A status the iolab parser would give (e.g. 413), with close: llhttp has no body limit of its own. */
  private reject(req: http.IncomingMessage, res: http.ServerResponse, status: number): void {
    const body = `${status} ${statusText(status)}\n`;
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
    res.end(body, () => req.socket.destroy());
  }

  private answer(app: HttpApp, work: WorkSpec | null, stallMs: number | null, req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): void {
    // res.shouldKeepAlive is llhttp's verdict from the version and Connection header.
    const keepAlive = res.shouldKeepAlive && !this.draining;
    const raw = req.rawHeaders;
    const headers: string[] = new Array<string>(raw.length);
    for (let i = 0; i < raw.length; i += 2) {
      headers[i] = raw[i]!.toLowerCase();
      headers[i + 1] = raw[i + 1]!;
    }
    const request: HttpRequest = {
      method: req.method ?? 'GET',
      target: req.url ?? '/',
      versionMinor: req.httpVersionMinor === 0 ? 0 : 1,
      headers,
      body,
      keepAlive,
    };
    const head = request.method === 'HEAD';
    const call = (): void => {
      const t0 = stallMs === null && work === null ? 0 : performance.now();
      let r: HttpResponse | Promise<HttpResponse>;
      try {
        r = app.handle(request);
      } catch (e) {
        reportAppError(app.name, e);
        r = ERROR_500;
      }
      if (t0 !== 0) this.noteStall(request, performance.now() - t0 + (work?.kind === 'blocking' ? work.ms : 0), stallMs);
      if (typeof (r as { then?: unknown }).then === 'function') (r as Promise<HttpResponse>).then((v) => this.send(res, v, head, keepAlive), () => this.send(res, ERROR_500, head, false));
      else this.send(res, r as HttpResponse, head, keepAlive);
    };
    if (work?.kind === 'async') setTimeout(call, work.ms);
    else {
      if (work?.kind === 'blocking') nanosleep(work.ms);
      call();
    }
  }

  /** Write `r` as the iolab encoder would: same status, body and Content-Length (none for 1xx/204/304). */
  private send(res: http.ServerResponse, r: HttpResponse, head: boolean, keepAlive: boolean): void {
    if (res.destroyed || res.writableEnded) {
      if (r.file !== undefined) closeSync(r.file.fd); // the response owns the fd
      return;
    }
    keepAlive &&= !this.draining; // an answer that finishes during the drain closes its connection
    const b = r.body;
    const file = r.file;
    const len = file !== undefined ? file.length : b === undefined ? 0 : typeof b === 'string' ? Buffer.byteLength(b, 'utf8') : b.length;
    try {
      res.statusCode = r.status;
      for (const [name, value] of r.headers ?? []) if (!isFraming(name)) res.appendHeader(name, value);
      if (!bodyless(r.status)) res.setHeader('Content-Length', len);
      if (!keepAlive) res.setHeader('Connection', 'close');
      res.writeHead(r.status);
    } catch (e) {
      // Node rejects what the encoder turns into a 500 too (bad status, CR/LF in a header).
      for (const n of res.getHeaderNames()) res.removeHeader(n);
      if (file !== undefined) closeSync(file.fd);
      const body = `Internal Server Error: ${e instanceof Error ? e.message : String(e)}\n`;
      res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...(keepAlive ? {} : { Connection: 'close' }) });
      res.end(head ? undefined : body);
      this.requests++;
      return;
    }
    if (file !== undefined) {
      // Node has no sendfile: a file body is read into buffers and written, the way Node users do it.
      if (head || bodyless(r.status) || len === 0) {
        closeSync(file.fd);
        res.end();
      } else {
        const rs = createReadStream('', { fd: file.fd, start: file.offset, end: file.offset + file.length - 1, autoClose: true });
        rs.on('error', () => res.destroy());
        res.on('close', () => rs.destroy());
        rs.pipe(res);
      }
      this.requests++;
      return;
    }
    if (head || bodyless(r.status) || len === 0 || b === undefined) res.end();
    else res.end(b);
    this.requests++;
  }

  private noteStall(req: HttpRequest, ms: number, stallMs: number | null): void {
    const st = this.stalls;
    if (ms > st.maxMs) st.maxMs = ms;
    if (stallMs === null || ms < stallMs) return;
    const q = req.target.indexOf('?');
    const route = `${req.method} ${q < 0 ? req.target : req.target.slice(0, q)}`;
    st.count++;
    st.byRoute.set(route, (st.byRoute.get(route) ?? 0) + 1);
    this.warnStall(route, ms);
  }

  private readonly warnStall: (route: string, ms: number) => void;

  // ---------------------------------------------------------------- both

  private onConnection(sock: net.Socket): void {
    if (this.stopping) {
      sock.destroy();
      return;
    }
    const max = this.opts.limits.maxConnections;
    if (max > 0 && this.current >= max) {
      // Over the cap: the protocol's refusal (HTTP 503, RESP -ERR max number of clients reached), then close.
      this.refused++;
      this.service!.refuse(this.out);
      const bytes = this.out.take();
      sock.on('error', () => sock.destroy());
      sock.end(bytes, () => sock.destroy());
      return;
    }
    this.sockets.set(sock, { written: 0, progressAt: performance.now() });
    this.current++;
    this.total++;
    if (this.current > this.peak) this.peak = this.current;
    // A reset peer (ECONNRESET, EPIPE) ends only this connection.
    sock.on('error', () => sock.destroy());
    sock.once('close', () => {
      this.sockets.delete(sock);
      this.current--;
      this.closedIn += sock.bytesRead;
      this.closedOut += sock.bytesWritten;
    });
  }

  /** Send timeout (output stuck for sendTimeoutMs) and, for net, the header timeout, every SWEEP_MS. */
  private sweep(): void {
    const now = performance.now();
    const { sendTimeoutMs, headerTimeoutMs } = this.opts.limits;
    for (const [sock, st] of this.sockets) {
      if (sock.writableLength === 0 || sock.bytesWritten !== st.written) {
        st.written = sock.bytesWritten;
        st.progressAt = now;
      } else if (now - st.progressAt > sendTimeoutMs) sock.destroy(); // the peer stopped reading
    }
    for (const c of this.conns) if (c.held !== null && !c.pending && !c.more && now - c.heldSince > headerTimeoutMs) c.sock.destroy();
  }

  /** Stop accepting; close idle connections; let busy ones finish until drainMs, then destroy them. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return; // never started
    if (this.stopping) return this.done;
    this.stopping = true;
    this.draining = true;
    if (this.service) this.service.draining = true;
    server.close(); // 'close' fires once every connection has closed
    if (server instanceof http.Server) {
      // Node closes connections idle after a response; one that never sent a byte is ours to close.
      server.closeIdleConnections();
      for (const s of this.sockets.keys()) if (s.bytesRead === 0 && !this.inflight.has(s)) s.destroy();
    } else for (const c of this.conns) if (!c.pending && c.held === null && c.sock.writableLength === 0) this.endConn(c);
    this.drainTimer = setTimeout(() => {
      if (server instanceof http.Server) server.closeAllConnections();
      for (const s of this.sockets.keys()) s.destroy();
    }, this.opts.drainMs);
    return this.done;
  }

  private finish(): void {
    if (this.drainTimer) clearTimeout(this.drainTimer);
    this.drainTimer = null;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    this.resolveDone();
  }

  async stats(): Promise<EngineStats> {
    let bytesIn = this.closedIn, bytesOut = this.closedOut;
    for (const s of this.sockets.keys()) {
      bytesIn += s.bytesRead;
      bytesOut += s.bytesWritten;
    }
    const st = this.stalls;
    return {
      engine: this.name,
      app: this.app?.name ?? this.opts.app,
      protocol: this.app?.protocol ?? 'unknown',
      pid: process.pid,
      workers: 1,
      connections: { current: this.current, peak: this.peak, total: this.total, refused: this.refused },
      requests: this.requests,
      bytesIn,
      bytesOut,
      syscalls: {}, // libuv's calls are not visible from JavaScript
      eagain: 0,
      wakeups: 0,
      loopStalls: { count: st.count, maxMs: st.maxMs, byRoute: Object.fromEntries(st.byRoute) },
      threads: 1,
      processes: 1,
    };
  }
}

let lastAppError = 0;
function reportAppError(name: string, e: unknown): void {
  const t = Date.now();
  if (t - lastAppError < 5000) return;
  lastAppError = t;
  process.stderr.write(`iolab: app ${name} threw: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
}
