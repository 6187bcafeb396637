/**
 * A small mutation fuzzer for iolab's four parsers (HTTP request, HTTP response, RESP command, RESP
 * reply), shared by the bounded CI run (fuzz.test.ts) and the long run (bench/fuzz.ts, `npm run fuzz`).
 *
 * Inputs are mutations of seeds taken from the golden tables in test/protocols/*.test.ts (read with
 * the TypeScript parser, so new golden rows become seeds without a second list) plus a few built-in
 * ones. Each input is checked for what a parser must never do, whatever the bytes:
 *  - throw (anything: a protocol error is a result, not an exception);
 *  - answer outside its contract (a kind it does not have, `next` outside (start, end], an HTTP error
 *    status it never sends, a RESP error without Redis's "Protocol error" wording, a value whose
 *    bytes lie outside the input);
 *  - depend on bytes outside [start, end) or on where the input sits in its Buffer (the same input
 *    at an offset, between junk, must parse identically);
 *  - call a prefix of a complete message complete (a split read must only ever look incomplete);
 *  - take long: each input's CPU time is measured (not wall time: on a loaded machine a process may
 *    wait for a CPU far longer than it runs), and a slow one is re-timed before it counts (GC).
 * A failing input is a finding; callers save it under test/fuzz/corpus/<target>/, and the CI test
 * replays every saved input as a regression case.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parseRequest } from '../../src/protocols/http/request.js';
import { finishAtEof, parseResponse, type ResponseParseOptions } from '../../src/protocols/http/client.js';
import { DEFAULT_HTTP_LIMITS, type HttpLimits } from '../../src/protocols/http/types.js';
import { parseCommand } from '../../src/protocols/resp/server.js';
import { parseReply } from '../../src/protocols/resp/client.js';
import { DEFAULT_RESP_LIMITS, RespErrorReply, type RespLimits, type RespValue } from '../../src/protocols/resp/types.js';

/** The repository root (this file runs from dist/test/fuzz/). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CORPUS = join(ROOT, 'test', 'fuzz', 'corpus');

export interface FuzzTarget {
  name: string;
  seeds: Buffer[];
  /** Parse `input` every way the target checks; throws on a contract violation (or if the parser throws). */
  check(input: Buffer, rng: Rng): void;
}

// ------------------------------------------------------------------------------------------------
// randomness (deterministic from a seed, so a run can be replayed)

export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  /** mulberry32 */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }
}

// ------------------------------------------------------------------------------------------------
// mutation

const INTERESTING_BYTES = [0, 9, 10, 13, 32, 34, 36, 42, 43, 44, 45, 48, 49, 57, 58, 59, 61, 0x7f, 0x80, 0xff, 65, 97];
const INTERESTING_TOKENS = [
  '\r\n', '\r\n\r\n', '\n', '\r', ' ', '\t', ':', ';', ',', '"', "'", '\\', '\x00',
  'Content-Length: 5\r\n', 'Content-Length: 0\r\n', 'Transfer-Encoding: chunked\r\n', 'Transfer-Encoding: gzip\r\n',
  'Host: a\r\n', 'Connection: close\r\n', 'Connection: keep-alive\r\n', 'Expect: 100-continue\r\n',
  '0\r\n\r\n', 'ffffffffffffffff\r\n', '5;ext=1\r\n', 'HTTP/1.0', 'HTTP/1.1', 'HTTP/2.0', 'chunked', ' chunked',
  '*3\r\n', '*-1\r\n', '*-10\r\n', '*0\r\n', '*1048577\r\n', '$-1\r\n', '$0\r\n\r\n', '$5\r\n', '$512000000\r\n',
  '+OK\r\n', '-ERR x\r\n', ':1\r\n', '_\r\n', '%1\r\n', '~1\r\n', '#t\r\n', ',1.5\r\n', '(1\r\n',
  '99999999999999999999', '9007199254740993', '-1', '0x10', '+5', '4 2', '', '00000000000000000000001',
];
const INTERESTING_NUMBERS = ['0', '-1', '1', '-0', '+1', '65536', '65537', '2147483648', '4294967296', '9007199254740992', '99999999999999999999', '1e3', '0x1', ' 1', '1 ', ''];

const MAX_INPUT = 256 * 1024;

function splice(b: Buffer, at: number, del: number, ins: Buffer): Buffer {
  return Buffer.concat([b.subarray(0, at), ins, b.subarray(at + del)]);
}

/** One to four random edits of a seed (occasionally spliced with another seed). */
export function mutate(rng: Rng, seeds: readonly Buffer[]): Buffer {
  let b = rng.pick(seeds);
  const edits = 1 + rng.int(4);
  for (let k = 0; k < edits; k++) {
    const at = rng.int(b.length + 1);
    switch (rng.int(11)) {
      case 0: // bit flip
        if (b.length > 0) {
          b = Buffer.from(b);
          const i = rng.int(b.length);
          b[i] = b[i]! ^ (1 << rng.int(8));
        }
        break;
      case 1: // an interesting byte
        if (b.length > 0) {
          b = Buffer.from(b);
          b[rng.int(b.length)] = rng.pick(INTERESTING_BYTES);
        }
        break;
      case 2: // an interesting token
        b = splice(b, at, 0, Buffer.from(rng.pick(INTERESTING_TOKENS), 'latin1'));
        break;
      case 3: // delete a range
        b = splice(b, at, rng.int(Math.min(64, b.length - at) + 1), Buffer.alloc(0));
        break;
      case 4: { // duplicate a range
        const from = rng.int(b.length + 1);
        const len = rng.int(Math.min(256, b.length - from) + 1);
        b = splice(b, at, 0, Buffer.from(b.subarray(from, from + len)));
        break;
      }
      case 5: // truncate
        b = b.subarray(0, rng.int(b.length + 1));
        break;
      case 6: { // replace a run of digits with an interesting number
        const s = b.toString('latin1');
        const runs = [...s.matchAll(/\d+/g)];
        if (runs.length > 0) {
          const m = rng.pick(runs);
          b = splice(b, m.index!, m[0].length, Buffer.from(rng.pick(INTERESTING_NUMBERS), 'latin1'));
        }
        break;
      }
      case 7: { // splice with another seed
        const o = rng.pick(seeds);
        b = Buffer.concat([b.subarray(0, at), o.subarray(rng.int(o.length + 1))]);
        break;
      }
      case 8: // pipeline: the input again
        b = Buffer.concat([b, b]);
        break;
      case 9: // a long run of one byte (limits: header size, inline size, request line)
        if (rng.chance(0.2)) b = splice(b, at, 0, Buffer.alloc(1 + rng.int(rng.chance(0.5) ? 2048 : 80 * 1024), rng.pick([97, 32, 48, 13, 10, 0])));
        break;
      case 10: // random bytes
        b = splice(b, at, rng.int(8), Buffer.from(Array.from({ length: 1 + rng.int(8) }, () => rng.int(256))));
        break;
    }
    if (b.length > MAX_INPUT) b = b.subarray(0, MAX_INPUT);
  }
  return b;
}

// ------------------------------------------------------------------------------------------------
// checks shared by the targets

class Violation extends Error {}

function must(ok: boolean, what: string): asserts ok {
  if (!ok) throw new Violation(what);
}

/** A canonical form of a parse result, `next` made relative to `start`, for comparisons. */
function canon(r: unknown, start: number): unknown {
  if (r === null || typeof r !== 'object') return r;
  const o = r as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (k === 'next') out[k] = (v as number) - start;
    else if (Buffer.isBuffer(v)) out[k] = v.toString('latin1');
    else if (Array.isArray(v)) out[k] = v.map((x) => (Buffer.isBuffer(x) ? x.toString('latin1') : canon(x, start)));
    else if (typeof v === 'object' && v !== null) out[k] = canon(v, start);
    else out[k] = v;
  }
  return out;
}

/** The same bytes between junk, at an offset in a bigger Buffer: the answer must not change. */
function embedded(rng: Rng, input: Buffer): { buf: Buffer; start: number; end: number } {
  const pre = Buffer.from(Array.from({ length: 1 + rng.int(16) }, () => rng.pick(INTERESTING_BYTES)));
  const post = Buffer.from(Array.from({ length: 1 + rng.int(16) }, () => rng.pick(INTERESTING_BYTES)));
  return { buf: Buffer.concat([pre, input, post]), start: pre.length, end: pre.length + input.length };
}

function sameAtOffset<R>(rng: Rng, input: Buffer, parse: (buf: Buffer, start: number, end: number) => R, first: R): void {
  const e = embedded(rng, input);
  const again = parse(e.buf, e.start, e.end);
  must(isDeepStrictEqual(canon(again, e.start), canon(first, 0)), 'the result depends on bytes outside [start, end) or on the offset');
}

/** A Buffer the parser returned is a view inside [lo, hi) of `buf`, or a copy (which cannot overlap it). */
function within(b: Buffer, buf: Buffer, lo: number, hi: number, what: string): void {
  if (b.buffer !== buf.buffer || b.length === 0) return; // small Buffers share a pool: compare ranges
  const off = b.byteOffset - buf.byteOffset;
  if (off + b.length <= 0 || off >= buf.length) return; // another allocation in the same pool
  must(off >= lo && off + b.length <= hi, `${what} lies outside the bytes parsed`);
}

/** Every prefix shorter than a complete message must look incomplete (a split read, never a verdict). */
function prefixesIncomplete<R extends { kind: string }>(rng: Rng, input: Buffer, next: number, parse: (buf: Buffer, start: number, end: number) => R, allowed?: (r: R) => boolean): void {
  for (let k = 0; k < 3 && next > 0; k++) {
    const cut = rng.int(next);
    const r = parse(input, 0, cut);
    must(r.kind === 'incomplete' || allowed?.(r) === true, `a ${cut}-byte prefix of a ${next}-byte message is ${r.kind}, not incomplete`);
  }
}

// ------------------------------------------------------------------------------------------------
// targets

const SMALL_HTTP: HttpLimits = { ...DEFAULT_HTTP_LIMITS, maxHeaderBytes: 512, maxBody: 1024, maxHeaders: 8 };
const HTTP_STATUSES = new Set([400, 413, 414, 431, 501, 505]);

function checkRequests(input: Buffer, rng: Rng): void {
  const limits = rng.chance(0.3) ? SMALL_HTTP : DEFAULT_HTTP_LIMITS;
  const parse = (buf: Buffer, s: number, e: number) => parseRequest(buf, s, e, limits);
  // Pipelined: parse request after request, as the service does.
  let pos = 0;
  for (let n = 0; n < 64 && pos <= input.length; n++) {
    const r = parse(input, pos, input.length);
    if (n === 0) sameAtOffset(rng, input, parse, r);
    if (r.kind === 'incomplete') return;
    if (r.kind === 'error') {
      must(HTTP_STATUSES.has(r.status), `error status ${r.status} is not one the parser sends`);
      must(typeof r.reason === 'string' && r.reason.length > 0, 'an error without a reason');
      return;
    }
    must(r.kind === 'request', `unknown kind ${(r as { kind: string }).kind}`);
    must(r.next > pos && r.next <= input.length, `next ${r.next} outside (${pos}, ${input.length}]`);
    const q = r.request;
    must(q.method.length > 0 && q.target.length > 0, 'empty method or target');
    must(q.versionMinor === 0 || q.versionMinor === 1, `version 1.${q.versionMinor}`);
    must(q.headers.length % 2 === 0, 'odd header list');
    must(q.body.length <= limits.maxBody, `body of ${q.body.length} over maxBody`);
    within(q.body, input, pos, r.next, 'the body');
    if (n === 0) prefixesIncomplete(rng, input, r.next, parse);
    pos = r.next;
  }
}

const SMALL_RESPONSE: ResponseParseOptions = { maxHeaderBytes: 512, maxBody: 2048, maxHeaders: 8 };

function checkResponses(input: Buffer, rng: Rng): void {
  const opts: ResponseParseOptions = { ...(rng.chance(0.3) ? SMALL_RESPONSE : {}), ...(rng.chance(0.2) ? { head: true } : {}) };
  const check = (atEof: boolean): void => {
    const parse = (buf: Buffer, s: number, e: number) => (atEof ? finishAtEof(buf, s, e, opts) : parseResponse(buf, s, e, opts));
    let pos = 0;
    for (let n = 0; n < 64 && pos <= input.length; n++) {
      const r = parse(input, pos, input.length);
      if (n === 0) sameAtOffset(rng, input, parse, r);
      if (r.kind === 'incomplete') {
        must(!atEof, 'incomplete at EOF: finishAtEof must decide');
        return;
      }
      if (r.kind === 'error') {
        must(typeof r.reason === 'string' && r.reason.length > 0, 'an error without a reason');
        return;
      }
      must(r.kind === 'response', `unknown kind ${(r as { kind: string }).kind}`);
      must(r.next > pos && r.next <= input.length, `next ${r.next} outside (${pos}, ${input.length}]`);
      must(Number.isInteger(r.status) && r.status >= 100 && r.status <= 999, `status ${r.status}`);
      must(r.headers.length % 2 === 0, 'odd header list');
      within(r.body, input, pos, r.next, 'the body');
      if (n === 0 && !atEof) prefixesIncomplete(rng, input, r.next, parse);
      pos = r.next;
    }
  };
  check(false);
  check(true);
}

const SMALL_RESP: RespLimits = { maxInline: 1024, maxBulk: 4096, maxMultibulk: 64 };

function checkCommands(input: Buffer, rng: Rng): void {
  const limits = rng.chance(0.3) ? SMALL_RESP : DEFAULT_RESP_LIMITS;
  const parse = (buf: Buffer, s: number, e: number) => parseCommand(buf, s, e, limits);
  let pos = 0;
  for (let n = 0; n < 256 && pos <= input.length; n++) {
    const r = parse(input, pos, input.length);
    if (n === 0) sameAtOffset(rng, input, parse, r);
    if (r.kind === 'incomplete') return;
    if (r.kind === 'error') {
      must(/^Protocol error: /.test(r.message), `error ${JSON.stringify(r.message)} lacks Redis's "Protocol error: " wording`);
      return;
    }
    must(r.kind === 'command' || r.kind === 'skip', `unknown kind ${(r as { kind: string }).kind}`);
    must(r.next > pos && r.next <= input.length, `next ${r.next} outside (${pos}, ${input.length}]`);
    // As Redis (networking.c processInlineBuffer), an inline line over maxInline is refused only while
    // its newline has not arrived: a complete longer line is a command, and its prefixes are errors.
    const inline = input[pos] !== 42; // '*'
    if (r.kind === 'command') {
      must(r.args.length > 0 && (inline || r.args.length <= limits.maxMultibulk), `${r.args.length} args`);
      for (const a of r.args) {
        must(inline || a.length <= limits.maxBulk, `an argument of ${a.length} bytes over maxBulk`);
        within(a, input, pos, r.next, 'an argument');
      }
    }
    const tooBigInline = (p: ReturnType<typeof parse>): boolean => inline && p.kind === 'error' && p.message === 'Protocol error: too big inline request';
    if (n === 0) prefixesIncomplete(rng, input, r.next, parse, tooBigInline);
    pos = r.next;
  }
}

function validValue(v: RespValue, depth: number): boolean {
  if (v === null || typeof v === 'string' || Buffer.isBuffer(v) || v instanceof RespErrorReply) return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (Array.isArray(v)) return depth < 10_000 && v.every((x) => validValue(x, depth + 1));
  return false;
}

function checkReplies(input: Buffer, rng: Rng): void {
  let pos = 0;
  for (let n = 0; n < 256 && pos <= input.length; n++) {
    const r = parseReply(input, pos, input.length);
    if (n === 0) sameAtOffset(rng, input, parseReply, r);
    if (r.kind === 'incomplete') return;
    if (r.kind === 'error') {
      must(typeof r.reason === 'string' && r.reason.length > 0, 'an error without a reason');
      return;
    }
    must(r.kind === 'reply', `unknown kind ${(r as { kind: string }).kind}`);
    must(r.next > pos && r.next <= input.length, `next ${r.next} outside (${pos}, ${input.length}]`);
    must(validValue(r.value, 0), 'a reply value outside the RespValue types');
    if (n === 0) prefixesIncomplete(rng, input, r.next, parseReply);
    pos = r.next;
  }
}

// ------------------------------------------------------------------------------------------------
// seeds: the golden tables, read from the test sources

type TS = typeof import('typescript');

/**
 * String literals of the golden tables in test/protocols/<file>: the `raw` property of each row of
 * `table`, or element `index` of each tuple row. Rows built with template substitutions are skipped.
 */
function goldenStrings(ts: TS, file: string, table: string, pick: 'raw' | number): string[] {
  const path = join(ROOT, 'test', 'protocols', file);
  if (!existsSync(path)) return [];
  const src = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
  const out: string[] = [];
  const text = (e: import('typescript').Expression | undefined): string | null =>
    e && (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e)) ? e.text : null;
  const visit = (node: import('typescript').Node): void => {
    if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.name.text === table && node.initializer && ts.isArrayLiteralExpression(node.initializer)) {
      for (const row of node.initializer.elements) {
        let s: string | null = null;
        if (pick === 'raw' && ts.isObjectLiteralExpression(row)) {
          for (const p of row.properties) if (ts.isPropertyAssignment(p) && ts.isIdentifier(p.name) && p.name.text === 'raw') s = text(p.initializer);
        } else if (typeof pick === 'number' && ts.isArrayLiteralExpression(row)) s = text(row.elements[pick]);
        if (s !== null) out.push(s);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(src);
  return out;
}

const BUILTIN = {
  'http-request': [
    'GET / HTTP/1.1\r\nHost: a\r\n\r\n',
    'POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello',
    'POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nX-T: 1\r\n\r\n',
    'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
  ],
  'http-response': [
    'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    'HTTP/1.0 200 OK\r\n\r\nuntil close',
    'HTTP/1.1 204 No Content\r\n\r\n',
  ],
  'resp-command': ['*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n', 'PING\r\n', 'SET "a b" \'c\\x41\'\r\n', '*-10\r\n*0\r\n'],
  'resp-reply': ['+OK\r\n', '-ERR x\r\n', ':42\r\n', '$3\r\nfoo\r\n', '*2\r\n*1\r\n:1\r\n$-1\r\n', '$-1\r\n*-1\r\n'],
};

let tsModule: TS | null | undefined;
async function loadTs(): Promise<TS | null> {
  if (tsModule === undefined) {
    try {
      tsModule = ((await import('typescript')) as unknown as { default: TS }).default;
    } catch {
      tsModule = null; // no dev dependencies: the built-in seeds only
    }
  }
  return tsModule;
}

export async function targets(): Promise<FuzzTarget[]> {
  const ts = await loadTs();
  const golden = (file: string, table: string, pick: 'raw' | number): string[] => (ts ? goldenStrings(ts, file, table, pick) : []);
  const seeds = (name: keyof typeof BUILTIN, extra: string[]): Buffer[] => [...new Set([...BUILTIN[name], ...extra])].map((s) => Buffer.from(s, 'latin1'));
  return [
    { name: 'http-request', seeds: seeds('http-request', golden('http-request.test.ts', 'ROWS', 'raw')), check: checkRequests },
    { name: 'http-response', seeds: seeds('http-response', golden('http-response.test.ts', 'CLIENT_ROWS', 'raw')), check: checkResponses },
    { name: 'resp-command', seeds: seeds('resp-command', golden('resp.test.ts', 'GOLDEN', 1)), check: checkCommands },
    // The reply table is a local `cases` of [name, input, expected] rows in resp.test.ts.
    { name: 'resp-reply', seeds: seeds('resp-reply', golden('resp.test.ts', 'cases', 1)), check: checkReplies },
  ];
}

// ------------------------------------------------------------------------------------------------
// running

export interface Finding {
  target: string;
  kind: 'crash' | 'slow' | 'hang' | 'memory';
  message: string;
  input: Buffer;
}

/** Check one input, timed: a throw is a crash; CPU time over `maxMs` (still over it on 2 retries) is slow. */
export function checkOne(t: FuzzTarget, input: Buffer, seed: number, maxMs: number): Finding | null {
  const once = (): number => {
    const c0 = process.cpuUsage();
    t.check(input, new Rng(seed));
    const d = process.cpuUsage(c0);
    return (d.user + d.system) / 1000;
  };
  try {
    let ms = once();
    if (ms > maxMs) ms = Math.min(ms, once(), once()); // a GC pause or a busy machine, not the parser?
    if (ms > maxMs) return { target: t.name, kind: 'slow', message: `${ms.toFixed(1)} ms of CPU for ${input.length} bytes (bound ${maxMs} ms)`, input };
    return null;
  } catch (e) {
    const msg = e instanceof Violation ? `contract: ${e.message}` : `threw: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`;
    return { target: t.name, kind: 'crash', message: msg, input };
  }
}

export interface RunOptions {
  ms: number;
  seed: number;
  /** Per-input time bound. */
  maxInputMs: number;
  /** Called before each input is checked (the long run records it, so a hang can be saved). */
  onInput?: (input: Buffer) => void;
  onFinding?: (f: Finding) => void;
  /** Stop at the first finding. */
  stopOnFinding?: boolean;
}

export function run(t: FuzzTarget, o: RunOptions): { execs: number; findings: Finding[] } {
  const rng = new Rng(o.seed);
  const findings: Finding[] = [];
  const until = performance.now() + o.ms;
  let execs = 0;
  while (performance.now() < until) {
    for (let k = 0; k < 64; k++) {
      const input = mutate(rng, t.seeds);
      o.onInput?.(input);
      const f = checkOne(t, input, rng.int(0x7fffffff), o.maxInputMs);
      execs++;
      if (f) {
        findings.push(f);
        o.onFinding?.(f);
        if (o.stopOnFinding) return { execs, findings };
      }
    }
  }
  return { execs, findings };
}

/** Save a finding as a regression case: test/fuzz/corpus/<target>/<kind>-<sha1>.bin (+ .txt with why). */
export function save(f: Finding, dir = CORPUS): string {
  const d = join(dir, f.target);
  mkdirSync(d, { recursive: true });
  const name = `${f.kind}-${createHash('sha1').update(f.input).digest('hex').slice(0, 12)}`;
  writeFileSync(join(d, `${name}.bin`), f.input);
  writeFileSync(join(d, `${name}.txt`), `${f.message}\n`);
  return join(d, `${name}.bin`);
}

/** The saved regression inputs of a target. */
export function corpus(target: string, dir = CORPUS): { file: string; input: Buffer }[] {
  const d = join(dir, target);
  if (!existsSync(d)) return [];
  return readdirSync(d)
    .filter((f) => f.endsWith('.bin'))
    .sort()
    .map((f) => ({ file: join(d, f), input: readFileSync(join(d, f)) }));
}
