/**
 * Workloads: what a connection sends and how its replies are framed and checked, one per protocol,
 * over the shared sans-I/O codecs (protocols/http/client.ts, protocols/resp/client.ts + encode.ts).
 *
 * Requests are encoded once, up front; per request only what must vary is written (a RESP key's
 * random digits, the echo payload's pattern offset). Replies are framed by the codec and verified:
 *  - http: status line, headers and body framing by `parseResponse`; the status must be one of
 *    --expect-status; `Connection: close` is honoured (the loop reconnects).
 *  - resp: framing by `skipReply` (no allocation); the reply's type must fit the command (+OK for
 *    SET, $ for GET, :n for INCR ..., never an -ERR).
 *  - echo: every byte is compared with what was sent (payloads differ per request, so a lost or
 *    repeated payload shows too).
 *
 * Large HTTP bodies framed by Content-Length are not held: once the head of a response that is
 * still incomplete has been read (and its status checked), the rest of its body is counted off as
 * it arrives, so a 16 MB file costs no copies here (holding it would copy every earlier read again
 * on each new one: quadratic, and the load generator, not the server, would set the rate).
 *
 * A reply that is framed correctly but wrong (a 500, an -ERR, a flipped byte) is counted in `bad`
 * and the connection goes on (as wrk counts non-2xx); broken framing sets `err` and the loop closes
 * the connection, since the byte stream can no longer be trusted.
 */
import { parseResponse, finishAtEof, type ResponseParseOptions } from '../protocols/http/client.js';
import { encodeRequest } from '../protocols/http/client.js';
import { skipReply } from '../protocols/resp/client.js';
import { encodeCommand } from '../protocols/resp/encode.js';
import { OutBuf } from '../protocols/outbuf.js';
import { E_PROTOCOL, E_WRONG } from './errors.js';
import { LoadUsageError, type ResolvedOptions } from './options.js';

export interface Workload {
  readonly protocol: 'http' | 'resp' | 'echo';
  /** The bytes prepared by fill(): buf[0, len). Valid until the next fill(). */
  buf: Buffer;
  /** After consume()/eof(): replies that parsed but failed verification (counted as wrong-reply). */
  bad: number;
  /** After consume()/eof(): 0, or E_PROTOCOL / E_WRONG when the connection must be closed. */
  err: number;
  /** What went wrong (the first `bad` reply, or the `err`). */
  reason: string;
  /** The server said it closes after the last counted reply (HTTP keep-alive off). */
  closeAfter: boolean;
  /** A (re)connected slot: forget partial input and per-connection sequence state. */
  reset(slot: number): void;
  /** Prepare `count` requests for `slot`; returns their length in `buf`. */
  fill(slot: number, count: number): number;
  /** Feed bytes read from `slot`; returns how many replies completed. */
  consume(slot: number, data: Buffer, n: number): number;
  /** The peer closed: replies completed by the EOF itself (HTTP bodies read until close). */
  eof(slot: number): number;
}

export function createWorkload(o: ResolvedOptions, slots: number, targetOf: Uint16Array): Workload {
  switch (o.protocol) {
    case 'http':
      return new HttpWorkload(o, slots, targetOf);
    case 'resp':
      return new RespWorkload(o, slots);
    case 'echo':
      return new EchoWorkload(o, slots);
  }
}

/** Copy held partial input and new bytes into one buffer. */
function join(held: Buffer, data: Buffer, n: number): Buffer {
  const b = Buffer.allocUnsafe(held.length + n);
  held.copy(b, 0);
  data.copy(b, held.length, 0, n);
  return b;
}

// ---------------------------------------------------------------------------------------------- http

/** Held input of an incomplete response at least this long is checked for a head to skip the body after (see the file comment). */
const SKIP_MIN = 16 * 1024;
const HEAD_ONLY: ResponseParseOptions = { head: true };

class HttpWorkload implements Workload {
  readonly protocol = 'http' as const;
  buf: Buffer;
  bad = 0;
  err = 0;
  reason = '';
  closeAfter = false;
  private readonly targetOf: Uint16Array;
  /** Per target: the request `pipeline` times over, so `count` requests are a prefix (no copy). */
  private readonly reqs: Buffer[];
  private readonly reqLen: number[];
  private readonly inbuf: (Buffer | null)[];
  private readonly statusOk = new Uint8Array(1000);
  private readonly popts: ResponseParseOptions;
  /**
   * The last good response, byte for byte. A server answering the same request sends the same bytes
   * (until its Date header ticks), and the parser's result depends only on those bytes when the
   * body is framed by Content-Length or chunked: so equal bytes are the same verified response, and
   * one memcmp replaces a parse. Responses read until close are never remembered.
   */
  private memo: Buffer | null = null;
  private memoLen = 0;
  /** Per slot: body bytes still to come of a response whose head was read, its status and whether it keeps the connection. */
  private readonly bodyLeft: Float64Array;
  private readonly pendStatus: Uint16Array;
  private readonly pendKeep: Uint8Array;

  constructor(o: ResolvedOptions, slots: number, targetOf: Uint16Array) {
    this.targetOf = targetOf;
    this.inbuf = new Array<Buffer | null>(slots).fill(null);
    this.bodyLeft = new Float64Array(slots);
    this.pendStatus = new Uint16Array(slots);
    this.pendKeep = new Uint8Array(slots);
    for (const [lo, hi] of o.expectStatus) for (let s = lo; s <= hi && s < 1000; s++) this.statusOk[s] = 1;
    this.popts = { head: o.method === 'HEAD' };
    this.reqs = [];
    this.reqLen = [];
    for (const t of o.targets) {
      const headers: [string, string][] = [];
      if (!o.headers.some(([n]) => n.toLowerCase() === 'host')) headers.push(['Host', t.authority]);
      headers.push(...o.headers);
      let one: Buffer;
      try {
        one = encodeRequest(o.method, t.path || '/', headers, o.body ?? undefined);
      } catch (e) {
        throw new LoadUsageError((e as Error).message.replace(/^encodeRequest: /, ''));
      }
      const all = Buffer.allocUnsafe(one.length * o.pipeline);
      for (let i = 0; i < o.pipeline; i++) one.copy(all, i * one.length);
      this.reqs.push(all);
      this.reqLen.push(one.length);
    }
    this.buf = this.reqs[0]!;
  }

  reset(slot: number): void {
    this.inbuf[slot] = null;
    this.bodyLeft[slot] = 0;
  }

  fill(slot: number, count: number): number {
    const t = this.targetOf[slot]!;
    this.buf = this.reqs[t]!;
    return this.reqLen[t]! * count;
  }

  consume(slot: number, data: Buffer, n: number): number {
    this.bad = 0;
    this.err = 0;
    this.closeAfter = false;
    let p = 0;
    let count = 0;
    const left = this.bodyLeft[slot]!;
    if (left > 0) {
      // The rest of a body whose head was checked: count it off, then parse what follows it.
      if (n < left) {
        this.bodyLeft[slot] = left - n;
        return 0;
      }
      this.bodyLeft[slot] = 0;
      p = left;
      count = 1;
      const status = this.pendStatus[slot]!;
      if (this.statusOk[status] === 0 && this.bad++ === 0) this.reason = `HTTP status ${status}`;
      if (this.pendKeep[slot] === 0) {
        this.closeAfter = true;
        return 1;
      }
      if (p === n) return 1;
    }
    let buf = data;
    let end = n;
    const held = this.inbuf[slot];
    if (held !== null) {
      buf = join(held, data, n);
      end = buf.length;
      this.inbuf[slot] = null;
    }
    return count + this.parse(slot, buf, p, end, false);
  }

  eof(slot: number): number {
    this.bad = 0;
    this.err = 0;
    this.closeAfter = false;
    if (this.bodyLeft[slot]! > 0) {
      this.bodyLeft[slot] = 0;
      this.err = E_PROTOCOL;
      this.reason = 'HTTP response: connection closed in the body';
      return 0;
    }
    const held = this.inbuf[slot];
    this.inbuf[slot] = null;
    if (held === null) return 0;
    return this.parse(slot, held, 0, held.length, true);
  }

  private parse(slot: number, buf: Buffer, p: number, end: number, atEof: boolean): number {
    let count = 0;
    const memo = this.memo, ml = this.memoLen;
    while (p < end) {
      if (memo !== null && end - p >= ml && buf.compare(memo, 0, ml, p, p + ml) === 0) {
        p += ml;
        count++;
        continue;
      }
      const r = atEof ? finishAtEof(buf, p, end, this.popts) : parseResponse(buf, p, end, this.popts);
      if (r.kind === 'incomplete') {
        if (end - p < SKIP_MIN || !this.skipBody(slot, buf, p, end)) this.inbuf[slot] = Buffer.from(buf.subarray(p, end));
        return count;
      }
      if (r.kind === 'error') {
        this.err = E_PROTOCOL;
        this.reason = `HTTP response: ${r.reason}`;
        return count;
      }
      if (r.status < 200) {
        if (r.status === 101) {
          this.err = E_PROTOCOL;
          this.reason = 'HTTP 101 Switching Protocols: not an HTTP/1.1 load target';
          return count;
        }
        p = r.next; // 100 Continue and other interim responses precede the real one
        continue;
      }
      count++;
      if (this.statusOk[r.status] === 0) {
        if (this.bad++ === 0) this.reason = `HTTP status ${r.status}`;
      } else if (r.keepAlive && r.next - p <= 4096 && (memo === null || r.next - p !== ml || buf.compare(memo, 0, ml, p, r.next) !== 0)) {
        this.memo = Buffer.from(buf.subarray(p, r.next));
        this.memoLen = r.next - p;
      }
      if (!r.keepAlive) {
        this.closeAfter = true;
        return count;
      }
      p = r.next;
    }
    return count;
  }

  /**
   * buf[p, end) is an incomplete response: if its head is all here and its body is framed by
   * Content-Length, remember how much body is still to come instead of holding the bytes.
   */
  private skipBody(slot: number, buf: Buffer, p: number, end: number): boolean {
    const h = parseResponse(buf, p, end, HEAD_ONLY);
    if (h.kind !== 'response' || h.status < 200) return false;
    let length = -1;
    for (let i = 0; i < h.headers.length; i += 2) {
      const name = h.headers[i];
      if (name === 'transfer-encoding') return false; // chunked or read until close: held as before
      if (name === 'content-length') length = Number(h.headers[i + 1]);
    }
    // The full parse said incomplete, so the body is not all here: length > what arrived.
    if (!(length > end - h.next)) return false;
    this.bodyLeft[slot] = length - (end - h.next);
    this.pendStatus[slot] = h.status;
    this.pendKeep[slot] = h.keepAlive ? 1 : 0;
    return true;
  }
}

// ---------------------------------------------------------------------------------------------- resp

const MINUS = 45, COLON = 58, DOLLAR = 36, STAR = 42;
const RAND_DIGITS = 12;

interface RespTemplate {
  bytes: Buffer;
  /** Offsets of each 12-digit random field in `bytes`. */
  rand: number[];
  /** Expected first byte of the reply (0: any type but an error). */
  type: number;
  /** The exact reply expected (+OK, +PONG), or null. */
  exact: Buffer | null;
  text: string;
}

const OK_CMDS = new Set(['set', 'mset', 'flushall', 'flushdb', 'select', 'hmset', 'lset', 'ltrim', 'rename', 'setex', 'psetex']);
const BULK_CMDS = new Set(['get', 'getset', 'getdel', 'lpop', 'rpop', 'spop', 'hget', 'lindex', 'echo', 'getrange', 'incrbyfloat']);
const INT_CMDS = new Set([
  'incr', 'decr', 'incrby', 'decrby', 'del', 'exists', 'lpush', 'rpush', 'sadd', 'srem', 'hset', 'hdel', 'llen', 'scard',
  'strlen', 'append', 'expire', 'pexpire', 'ttl', 'pttl', 'zadd', 'hincrby', 'setnx', 'unlink', 'zcard', 'hlen', 'dbsize',
]);
const ARRAY_CMDS = new Set(['lrange', 'mget', 'keys', 'smembers', 'hgetall', 'zrange', 'hmget', 'scan']);

/** Split a command line into words; "double quotes" group words (no escapes). */
function words(s: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) out.push(m[1] ?? m[2]!);
  return out;
}

/** buf[p, p + want.length) equals `want` (short: a JS loop, no native call). */
function same(buf: Buffer, p: number, want: Buffer): boolean {
  for (let i = 0; i < want.length; i++) if (buf[p + i] !== want[i]) return false;
  return true;
}

function digitCount(n: number): number {
  return String(n).length;
}

export function compileRespTemplate(text: string, dataSize: number): RespTemplate {
  const w = words(text);
  if (w.length === 0) throw new LoadUsageError(`--command: empty command ${JSON.stringify(text)}`);
  const data = 'x'.repeat(dataSize);
  const zeros = '0'.repeat(RAND_DIGITS);
  const args: string[] = [];
  const randAt: { arg: number; byteOff: number }[] = [];
  for (let i = 0; i < w.length; i++) {
    let a = w[i]!.split('__data__').join(data);
    // __rand_int__ (redis-benchmark's name) and __rand__ (the short form) become 12 digits patched per request.
    for (;;) {
      const m = /__rand_int__|__rand__/.exec(a);
      if (!m) break;
      randAt.push({ arg: i, byteOff: Buffer.byteLength(a.slice(0, m.index)) });
      a = a.slice(0, m.index) + zeros + a.slice(m.index + m[0].length);
    }
    args.push(a);
  }
  const bytes = encodeCommand(args);
  // encodeCommand's layout: *<n>\r\n then $<len>\r\n<arg>\r\n per argument.
  const argStart: number[] = [];
  let pos = 1 + digitCount(args.length) + 2;
  for (const a of args) {
    const len = Buffer.byteLength(a);
    pos += 1 + digitCount(len) + 2;
    argStart.push(pos);
    pos += len + 2;
  }
  const rand = randAt.map((r) => argStart[r.arg]! + r.byteOff);
  const name = w[0]!.toLowerCase();
  let type = 0;
  let exact: Buffer | null = null;
  if (name === 'ping') {
    if (w.length === 1) exact = Buffer.from('+PONG\r\n');
    else type = DOLLAR;
  } else if (OK_CMDS.has(name) && !(name === 'set' && w.length > 3)) exact = Buffer.from('+OK\r\n');
  else if (BULK_CMDS.has(name)) type = DOLLAR;
  else if (INT_CMDS.has(name)) type = COLON;
  else if (ARRAY_CMDS.has(name)) type = STAR;
  return { bytes, rand, type, exact, text };
}

class RespWorkload implements Workload {
  readonly protocol = 'resp' as const;
  buf: Buffer;
  bad = 0;
  err = 0;
  reason = '';
  closeAfter = false;
  private readonly tpl: RespTemplate[];
  private readonly keyspace: number;
  private readonly out = new OutBuf(64 * 1024);
  private readonly inbuf: (Buffer | null)[];
  /** Per slot: index of the next template to send and of the one whose reply comes next. */
  private readonly sendIdx: Uint32Array;
  private readonly recvIdx: Uint32Array;
  /** All templates static: `pipeline` copies encoded once, sent as a prefix. */
  private readonly fixed: Buffer | null;
  private readonly fixedLen: number;
  private rng = 0x9e3779b9;

  constructor(o: ResolvedOptions, slots: number) {
    this.tpl = o.commands.map((c) => compileRespTemplate(c, o.dataSize));
    this.keyspace = o.keyspace;
    this.inbuf = new Array<Buffer | null>(slots).fill(null);
    this.sendIdx = new Uint32Array(slots);
    this.recvIdx = new Uint32Array(slots);
    if (this.tpl.length === 1 && this.tpl[0]!.rand.length === 0) {
      const one = this.tpl[0]!.bytes;
      this.fixed = Buffer.allocUnsafe(one.length * o.pipeline);
      for (let i = 0; i < o.pipeline; i++) one.copy(this.fixed, i * one.length);
      this.fixedLen = one.length;
    } else {
      this.fixed = null;
      this.fixedLen = 0;
    }
    this.buf = this.out.buf;
  }

  reset(slot: number): void {
    this.inbuf[slot] = null;
    this.sendIdx[slot] = 0;
    this.recvIdx[slot] = 0;
  }

  /** xorshift32: cheap, and good enough to spread keys. */
  private next(): number {
    let x = this.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x >>> 0;
    return this.rng;
  }

  fill(slot: number, count: number): number {
    if (this.fixed !== null) {
      this.buf = this.fixed;
      return this.fixedLen * count;
    }
    const out = this.out;
    out.reset();
    const tpl = this.tpl, nt = tpl.length;
    let idx = this.sendIdx[slot]!;
    for (let i = 0; i < count; i++) {
      const t = tpl[idx % nt]!;
      idx++;
      const at = out.len;
      const src = t.bytes, len = src.length;
      out.ensure(len);
      const b = out.buf;
      // Short commands: a JS copy beats the native call of Buffer#set (~50 ns of overhead).
      if (len <= 96) for (let j = 0; j < len; j++) b[at + j] = src[j]!;
      else b.set(src, at);
      out.len = at + len;
      for (let r = 0; r < t.rand.length; r++) {
        let v = this.keyspace > 1 ? this.next() % this.keyspace : 0;
        const first = at + t.rand[r]!;
        for (let d = first + RAND_DIGITS - 1; d >= first; d--) {
          const q = (v / 10) | 0; // keyspace < 2^31
          b[d] = 48 + v - q * 10;
          v = q;
        }
      }
    }
    this.sendIdx[slot] = idx;
    this.buf = out.buf;
    return out.len;
  }

  consume(slot: number, data: Buffer, n: number): number {
    this.bad = 0;
    this.err = 0;
    let buf = data;
    let end = n;
    const held = this.inbuf[slot];
    if (held !== null) {
      buf = join(held, data, n);
      end = buf.length;
      this.inbuf[slot] = null;
    }
    let p = 0;
    let count = 0;
    const tpl = this.tpl, nt = tpl.length;
    let idx = this.recvIdx[slot]!;
    while (p < end) {
      const q = skipReply(buf, p, end);
      if (q === -1) {
        this.inbuf[slot] = Buffer.from(buf.subarray(p, end));
        break;
      }
      if (q === -2) {
        this.err = E_PROTOCOL;
        this.reason = `RESP reply: not valid RESP2 at ${JSON.stringify(buf.toString('latin1', p, Math.min(end, p + 24)))}`;
        break;
      }
      const t = tpl[idx % nt]!;
      idx++;
      count++;
      const c = buf[p]!;
      const ok = c !== MINUS && (t.exact !== null ? q - p === t.exact.length && same(buf, p, t.exact) : t.type === 0 || c === t.type);
      if (!ok && this.bad++ === 0) {
        this.reason = `RESP ${t.text.split(' ')[0]}: unexpected reply ${JSON.stringify(buf.toString('latin1', p, Math.min(q, p + 60)).trimEnd())}`;
      }
      p = q;
    }
    this.recvIdx[slot] = idx;
    return count;
  }

  eof(): number {
    this.bad = 0;
    this.err = 0;
    return 0;
  }
}

// ---------------------------------------------------------------------------------------------- echo

/** Payloads start at a per-request offset into one pseudo-random pattern (period 251, a prime). */
const PERIOD = 251;

class EchoWorkload implements Workload {
  readonly protocol = 'echo' as const;
  buf: Buffer;
  bad = 0;
  err = 0;
  reason = '';
  closeAfter = false;
  private readonly size: number;
  private readonly pattern: Buffer;
  private readonly out: OutBuf;
  // ---- per slot ----
  private readonly sendSeq: Float64Array;
  private readonly recvSeq: Float64Array;
  /** Bytes of the current reply already received and checked. */
  private readonly recvOff: Float64Array;

  constructor(o: ResolvedOptions, slots: number) {
    this.size = o.size;
    this.pattern = Buffer.allocUnsafe(o.size + PERIOD);
    let x = 0x2545f491;
    for (let i = 0; i < this.pattern.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.pattern[i] = x & 255;
    }
    this.out = new OutBuf(Math.max(64 * 1024, o.size * Math.min(o.pipeline, 64)));
    this.buf = this.out.buf;
    this.sendSeq = new Float64Array(slots);
    this.recvSeq = new Float64Array(slots);
    this.recvOff = new Float64Array(slots);
  }

  reset(slot: number): void {
    this.sendSeq[slot] = 0;
    this.recvSeq[slot] = 0;
    this.recvOff[slot] = 0;
  }

  fill(slot: number, count: number): number {
    const out = this.out;
    out.reset();
    let seq = this.sendSeq[slot]!;
    for (let i = 0; i < count; i++, seq++) {
      const at = seq % PERIOD;
      out.bytes(this.pattern, at, at + this.size);
    }
    this.sendSeq[slot] = seq;
    this.buf = out.buf;
    return out.len;
  }

  consume(slot: number, data: Buffer, n: number): number {
    this.bad = 0;
    this.err = 0;
    const size = this.size;
    let seq = this.recvSeq[slot]!;
    let off = this.recvOff[slot]!;
    const sent = this.sendSeq[slot]!;
    let p = 0;
    let count = 0;
    while (p < n) {
      if (seq >= sent) {
        this.err = E_WRONG;
        this.reason = `echo: ${n - p} bytes more than were sent`;
        break;
      }
      const take = Math.min(size - off, n - p);
      const at = (seq % PERIOD) + off;
      if (data.compare(this.pattern, at, at + take, p, p + take) !== 0) {
        // The stream is out of step from here on: report it and let the loop reconnect.
        let i = 0;
        while (data[p + i] === this.pattern[at + i]) i++;
        this.err = E_WRONG;
        this.reason = `echo: byte ${off + i} of reply ${seq} differs (sent 0x${this.pattern[at + i]!.toString(16)}, got 0x${data[p + i]!.toString(16)})`;
        break;
      }
      p += take;
      off += take;
      if (off === size) {
        off = 0;
        seq++;
        count++;
      }
    }
    this.recvSeq[slot] = seq;
    this.recvOff[slot] = off;
    return count;
  }

  eof(): number {
    this.bad = 0;
    this.err = 0;
    return 0;
  }
}
