/**
 * RESP2 codecs: golden cases for the server command parser (a table: input bytes -> what the parser
 * yields, in stream order), property tests (splits, random bytes, encoder/client round trips), and
 * unit tests for the writers and the client parser.
 *
 * Reference for the golden answers: Redis 7.0 networking.c and tests/unit/protocol.tcl; every row
 * below was also checked against redis-server 7.0.15 (same reply, same close) except where a row says
 * iolab differs on purpose (the multibulk count limit).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseCommand, parseCommandArgv, argvArgs, string2ll, ARGV, ARGV_MAX, INCOMPLETE, RespArgv } from '../../src/protocols/resp/server.js';
import { parseReply, skipReply, replyType } from '../../src/protocols/resp/client.js';
import {
  encodeCommand,
  writeArrayHeader,
  writeBulk,
  writeError,
  writeInteger,
  writeNullArray,
  writeSimple,
  writeValue,
} from '../../src/protocols/resp/encode.js';
import { DEFAULT_RESP_LIMITS, RespErrorReply, type RespCommandParse, type RespLimits, type RespValue } from '../../src/protocols/resp/types.js';
import { OutBuf } from '../../src/protocols/outbuf.js';

// ---------------------------------------------------------------------------------------------
// Driving the parser the way an engine does

/** One thing the parser yielded: a command (its args as latin1 strings), a skip, an error, or the end. */
type Ev = string[] | 'skip' | 'incomplete' | { error: string };

type Parse = (buf: Buffer, start: number, end: number, limits?: RespLimits) => RespCommandParse;

const argvScratch = new RespArgv();
/**
 * parseCommandArgv seen as parseCommand: an `argv` result becomes the arguments it describes, read
 * from the buffer at once (as an app would, before the engine reuses it).
 */
const viaArgv: Parse = (buf, start, end, limits = DEFAULT_RESP_LIMITS) => {
  const r = parseCommandArgv(buf, start, end, limits, argvScratch);
  if (r.kind !== 'argv') return r;
  assert.equal(r, ARGV);
  return { kind: 'command', args: argvArgs(buf, argvScratch), next: argvScratch.next };
};

/** Parse a whole stream from offset 0 until an error (the engine closes) or the bytes run out. */
function parseAll(input: Buffer, limits?: RespLimits, parse: Parse = parseCommand): Ev[] {
  const evs: Ev[] = [];
  let pos = 0;
  while (pos < input.length) {
    const r = parse(input, pos, input.length, limits);
    if (r.kind === 'incomplete') {
      evs.push('incomplete');
      break;
    }
    if (r.kind === 'error') {
      evs.push({ error: r.message });
      break;
    }
    assert.ok(r.next > pos, 'the parser must make progress');
    if (r.kind === 'skip') evs.push('skip');
    else evs.push(r.args.map((a) => a.toString('latin1')));
    pos = r.next;
  }
  return evs;
}

/**
 * Feed the stream in chunks, keeping unconsumed bytes like an engine (copying them to the front of a
 * fresh buffer, so offsets move between calls). Returns the same events as parseAll on the whole.
 */
function parseChunked(chunks: Buffer[], limits?: RespLimits, parse: Parse = parseCommand): Ev[] {
  const evs: Ev[] = [];
  let held = Buffer.alloc(0);
  for (let c = 0; c < chunks.length; c++) {
    // Put the held bytes at a non-zero offset with junk around them: `next` must be absolute.
    const pad = 3;
    const buf = Buffer.alloc(pad + held.length + chunks[c].length + 5, 0x58);
    held.copy(buf, pad);
    chunks[c].copy(buf, pad + held.length);
    const end = pad + held.length + chunks[c].length;
    let pos = pad;
    for (;;) {
      if (pos >= end) break;
      const r = parse(buf, pos, end, limits);
      if (r.kind === 'incomplete') break;
      if (r.kind === 'error') {
        evs.push({ error: r.message });
        return evs;
      }
      if (r.kind === 'skip') evs.push('skip');
      else evs.push(r.args.map((a) => a.toString('latin1')));
      pos = r.next;
    }
    held = Buffer.from(buf.subarray(pos, end));
  }
  if (held.length > 0) evs.push('incomplete');
  return evs;
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const err = (message: string) => ({ error: message });
const SKIP = 'skip' as const;
const MORE = 'incomplete' as const;

const TOO_BIG_INLINE = 'Protocol error: too big inline request';
const UNBALANCED = 'Protocol error: unbalanced quotes in request';
const TOO_BIG_MBULK = 'Protocol error: too big mbulk count string';
const TOO_BIG_BULK = 'Protocol error: too big bulk count string';
const INVALID_MBULK = 'Protocol error: invalid multibulk length';
const INVALID_BULK = 'Protocol error: invalid bulk length';

const junk = (lines: number) => ('A'.repeat(1024) + '\n').repeat(lines);
const K64 = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// The golden table. Input is latin1 with \r\n visible; expected is every event in stream order.

const GOLDEN: [name: string, input: string, expected: Ev[]][] = [
  // --- multibulk ---
  ['multibulk SET',                         '*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n', [['SET', 'key', 'value']]],
  ['multibulk empty bulk',                  '*2\r\n$4\r\nECHO\r\n$0\r\n\r\n',                   [['ECHO', '']]],
  ['multibulk binary (NUL, CRLF in data)',  '*2\r\n$4\r\nECHO\r\n$5\r\na\x00\r\nb\r\n',         [['ECHO', 'a\x00\r\nb']]],
  ['pipelined multibulk and inline',        '*1\r\n$4\r\nPING\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n', [['PING'], ['PING'], ['ECHO', 'hi']]],
  ['*0 is skipped',                         '*0\r\n*1\r\n$4\r\nPING\r\n',                      [SKIP, ['PING']]],
  ['*-10 is ignored (skipped)',             '*-10\r\nPING\r\n',                                 [SKIP, ['PING']]],
  ['*-1 is skipped',                        '*-1\r\n',                                          [SKIP]],
  ['count line waits for its \\n byte',     '*1\r',                                             [MORE]],
  ['element header waits for data',         '*2\r\n$3\r\nGET\r\n$3\r\nke',                      [MORE]],
  ['data waits for its 2 trailing bytes',   '*1\r\n$4\r\nPING\r',                               [MORE]],
  ['missing CRLF after data: 2 bytes skipped unchecked', '*1\r\n$4\r\nPINGXY*1\r\n$4\r\nPING\r\n', [['PING'], ['PING']]],
  ['byte after \\r is not checked to be \\n', '*1\rX$4\r\nPING\r\n',                            [['PING']]],
  // --- multibulk errors (RELIABILITY.md, protocol.tcl) ---
  ['*20000000 -> invalid multibulk length (limit 1M)', '*20000000\r\n',                         [err(INVALID_MBULK)]],
  ['*blabla -> invalid multibulk length',   '*blabla\r\n',                                      [err(INVALID_MBULK)]],
  ['*+1 (sign) -> invalid multibulk length', '*+1\r\n$4\r\nPING\r\n',                           [err(INVALID_MBULK)]],
  ['* 1 (space) -> invalid multibulk length', '* 1\r\n',                                        [err(INVALID_MBULK)]],
  ['*-0 -> invalid multibulk length',       '*-0\r\n',                                          [err(INVALID_MBULK)]],
  ['* (empty count) -> invalid multibulk length', '*\r\nPING\r\n',                              [err(INVALID_MBULK)]],
  ['*99999999999999999999 (overflow)',      '*99999999999999999999\r\n',                        [err(INVALID_MBULK)]],
  ['$-10 -> invalid bulk length',           '*1\r\n$-10\r\n',                                   [err(INVALID_BULK)]],
  ['$blabla -> invalid bulk length',        '*1\r\n$blabla\r\n',                                [err(INVALID_BULK)]],
  ['bulk over the limit (512 MB + 1)',      '*1\r\n$536870913\r\n',                             [err(INVALID_BULK)]],
  ['bulk at the limit (512 MB) just waits', '*1\r\n$536870912\r\n',                             [MORE]],
  ['$04 (leading zero) -> invalid bulk length', '*1\r\n$04\r\nPING\r\n',                        [err(INVALID_BULK)]],
  ['$ (empty) -> invalid bulk length',      '*1\r\n$\r\n',                                      [err(INVALID_BULK)]],
  ["*1 foo -> expected '$', got 'f'",       '*1\r\nfoo\r\n',                                    [err("Protocol error: expected '$', got 'f'")]],
  ["empty element line -> got ' ' (CR shown as space)", '*1\r\n\r\n',                           [err("Protocol error: expected '$', got ' '")]],
  ['error after a good element',            '*2\r\n$3\r\nGET\r\n:1\r\n',                        [err("Protocol error: expected '$', got ':'")]],
  ['error found before the command is complete', '*3\r\n$3\r\nSET\r\nfoo\r\n',                  [err("Protocol error: expected '$', got 'f'")]],
  ['good command, then a bad one',          '*1\r\n$4\r\nPING\r\n*1\r\n$x\r\n',                 [['PING'], err(INVALID_BULK)]],
  ['count line over 64 KB, no \\r -> too big mbulk count string', '*' + '1'.repeat(K64 + 1),    [err(TOO_BIG_MBULK)]],
  ['count line of exactly 64 KB waits',     '*' + '1'.repeat(K64 - 1),                          [MORE]],
  ['bulk line over 64 KB, no \\r -> too big bulk count string', '*1\r\n$' + '1'.repeat(K64 + 1), [err(TOO_BIG_BULK)]],
  // --- inline ---
  ['inline with CRLF',                      'PING\r\n',                                         [['PING']]],
  ['inline with bare LF',                   'SET a b\n',                                        [['SET', 'a', 'b']]],
  ['inline waits for its newline',          'SET a b',                                          [MORE]],
  ['empty lines are skipped',               '\r\n\n   \r\nPING\r\n',                            [SKIP, SKIP, SKIP, ['PING']]],
  ['blanks around and between args',        ' \t SET  a\tb \r\n',                               [['SET', 'a', 'b']]],
  ['double quotes with spaces',             'SET "a b" "c"\r\n',                                [['SET', 'a b', 'c']]],
  ['single quotes',                         "SET 'a b' 'it\\'s'\r\n",                           [['SET', 'a b', "it's"]]],
  ['escapes in double quotes',              'ECHO "\\x41\\x4g\\n\\r\\t\\b\\a\\\\\\"q"\r\n',     [['ECHO', 'Ax4g\n\r\t\b\x07\\"q']]],
  ['backslash is literal in single quotes', "ECHO 'a\\nb'\r\n",                                 [['ECHO', 'a\\nb']]],
  ['quote in the middle of a token',        'ECHO ab"c d"\r\n',                                 [['ECHO', 'abc d']]],
  ['empty quoted args are kept (Redis 7)',  'ECHO "" \'\'\r\n',                                 [['ECHO', '', '']]],
  ['\\v inside a token is kept',            'ECHO a\x0bb\r\n',                                  [['ECHO', 'a\x0bb']]],
  ['a lone \\r inside the line ends a token', 'ECHO a\rb\r\n',                                  [['ECHO', 'a', 'b']]],
  ['pipelined inline',                      'PING\r\nECHO x\nPING\r\n',                         [['PING'], ['ECHO', 'x'], ['PING']]],
  ['unbalanced double quote',               'ECHO "abc\r\nPING\r\n',                            [err(UNBALANCED)]],
  ['unbalanced single quote',               "ECHO 'abc\r\n",                                    [err(UNBALANCED)]],
  ['closing quote followed by a letter',    'ECHO "abc"def\r\n',                                [err(UNBALANCED)]],
  ['escaped quote does not close',          'ECHO "abc\\"\r\n',                                 [err(UNBALANCED)]],
  ['inline over 64 KB with no newline -> too big inline request', 'A'.repeat(K64 + 1),          [err(TOO_BIG_INLINE)]],
  ['inline of exactly 64 KB waits',         'A'.repeat(K64),                                    [MORE]],
  ['a long line that has its newline is a command', 'SET k ' + 'v'.repeat(K64 + 10) + '\r\n',   [['SET', 'k', 'v'.repeat(K64 + 10)]]],
  // --- garbage then a stream of junk (protocol.tcl "Protocol desync regression test") ---
  ['\\x00 then junk -> too big inline request',  '\x00' + junk(70),                             [err(TOO_BIG_INLINE)]],
  ['*\\x00 then junk -> too big mbulk count string', '*\x00' + junk(70),                        [err(TOO_BIG_MBULK)]],
  ['$\\x00 then junk -> too big inline request', '$\x00' + junk(70),                            [err(TOO_BIG_INLINE)]],
  ['*1 $\\x00 then junk -> too big bulk count string', '*1\r\n$\x00' + junk(70),                [err(TOO_BIG_BULK)]],
  ['NUL in an inline line: the line never ends (waits)', 'PI\x00NG\r\n',                        [MORE]],
];

describe('parseCommand: golden table', () => {
  for (const [name, input, expected] of GOLDEN) {
    test(name, () => {
      assert.deepEqual(parseAll(b(input)), expected);
    });
  }
});

describe('parseCommandArgv: the same verdicts, arguments left in place', () => {
  test('the golden table, row for row', () => {
    for (const [name, input, expected] of GOLDEN) assert.deepEqual(parseAll(b(input), undefined, viaArgv), expected, name);
  });

  test('a multibulk is described by offsets into the buffer, with nothing copied', () => {
    const buf = b('xx*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\nPING\r\n');
    const argv = new RespArgv();
    assert.equal(parseCommandArgv(buf, 2, buf.length, DEFAULT_RESP_LIMITS, argv), ARGV);
    assert.equal(argv.count, 3);
    assert.deepEqual([...argv.pos.subarray(0, 6)], [10, 3, 19, 1, 26, 0]);
    assert.equal(argv.next, 28);
    // An inline command is not a multibulk: it comes back as parseCommand returns it.
    const r = parseCommandArgv(buf, argv.next, buf.length, DEFAULT_RESP_LIMITS, argv);
    assert.equal(r.kind, 'command');
  });

  test(`more than ${ARGV_MAX} arguments come back as Buffers`, () => {
    const args = Array.from({ length: ARGV_MAX + 1 }, (_, i) => `a${i}`);
    const argv = new RespArgv();
    const long = encodeCommand(args);
    const r = parseCommandArgv(long, 0, long.length, DEFAULT_RESP_LIMITS, argv);
    assert.equal(r.kind, 'command');
    assert.deepEqual(r.kind === 'command' && r.args.map((a) => a.toString()), args);
    const full = encodeCommand(args.slice(0, ARGV_MAX));
    assert.equal(parseCommandArgv(full, 0, full.length, DEFAULT_RESP_LIMITS, argv), ARGV);
    assert.equal(argv.count, ARGV_MAX);
  });
});

describe('parseCommand: contract', () => {
  test('incomplete is one shared frozen object', () => {
    const r1 = parseCommand(b('*1\r\n$4\r\nPI'), 0, 10);
    const r2 = parseCommand(b('GET'), 0, 3);
    assert.equal(r1, INCOMPLETE);
    assert.equal(r2, INCOMPLETE);
    assert.ok(Object.isFrozen(INCOMPLETE));
    assert.equal(parseCommand(b(''), 0, 0), INCOMPLETE);
  });

  test('next is absolute and bytes past `end` are ignored', () => {
    const buf = b('xxx*1\r\n$4\r\nPING\r\nyyy');
    const r = parseCommand(buf, 3, buf.length - 3);
    assert.equal(r.kind, 'command');
    if (r.kind === 'command') assert.equal(r.next, buf.length - 3);
    // The same bytes cut short by `end` are incomplete, whatever follows in the buffer.
    assert.equal(parseCommand(buf, 3, buf.length - 4), INCOMPLETE);
  });

  test('args are copies that survive reuse of the read buffer', () => {
    const buf = b('*2\r\n$3\r\nGET\r\n$3\r\nkey\r\nSET a b\r\n');
    const r1 = parseCommand(buf, 0, buf.length);
    assert.equal(r1.kind, 'command');
    if (r1.kind !== 'command') return;
    const r2 = parseCommand(buf, r1.next, buf.length);
    assert.equal(r2.kind, 'command');
    buf.fill(0);
    assert.deepEqual(r1.args.map(String), ['GET', 'key']);
    if (r2.kind === 'command') assert.deepEqual(r2.args.map(String), ['SET', 'a', 'b']);
  });

  test('more than 64 elements (the copy pass re-walks the headers)', () => {
    const args = Array.from({ length: 200 }, (_, i) => `arg${i}`);
    assert.deepEqual(parseAll(encodeCommand(args)), [args]);
  });

  test('limits are honoured at their exact boundaries', () => {
    const lim: RespLimits = { maxInline: 16, maxBulk: 10, maxMultibulk: 3 };
    assert.deepEqual(parseAll(b('A'.repeat(16)), lim), [MORE]);
    assert.deepEqual(parseAll(b('A'.repeat(17)), lim), [err(TOO_BIG_INLINE)]);
    // The bound counts every unconsumed byte, the '*' included (sdslen(querybuf) - qb_pos).
    assert.deepEqual(parseAll(b('*' + '1'.repeat(15)), lim), [MORE]);
    assert.deepEqual(parseAll(b('*' + '1'.repeat(16)), lim), [err(TOO_BIG_MBULK)]);
    assert.deepEqual(parseAll(b('*1\r\n$' + '1'.repeat(17)), lim), [err(TOO_BIG_BULK)]);
    assert.deepEqual(parseAll(b('*3\r\n'), lim), [MORE]);
    assert.deepEqual(parseAll(b('*4\r\n'), lim), [err(INVALID_MBULK)]);
    assert.deepEqual(parseAll(b('*1\r\n$10\r\n0123456789\r\n'), lim), [['0123456789']]);
    assert.deepEqual(parseAll(b('*1\r\n$11\r\n'), lim), [err(INVALID_BULK)]);
    assert.equal(DEFAULT_RESP_LIMITS.maxMultibulk, 1024 * 1024);
  });

  test('a limit violation is reported before the data arrives', () => {
    // Only the header of a too-long bulk is there: the error comes now, not after 512 MB.
    assert.deepEqual(parseAll(b('*1\r\n$999999999999\r\n')), [err(INVALID_BULK)]);
  });

  test('junk fed in small pieces: waits, then a protocol error, never a command', () => {
    for (const garbage of ['\x00', '*\x00', '$\x00']) {
      const stream = b(garbage + junk(70));
      let sawError = false;
      for (let end = 1; end <= stream.length; end += 997) {
        const r = parseCommand(stream, 0, end);
        assert.ok(r.kind === 'incomplete' || r.kind === 'error', `${JSON.stringify(garbage)} at ${end}: ${r.kind}`);
        if (r.kind === 'error') sawError = true;
      }
      assert.ok(sawError);
    }
  });
});

describe('string2ll (Redis util.c rules)', () => {
  const cases: [string, number][] = [
    ['0', 0], ['1', 1], ['-1', -1], ['123', 123], ['9223372036854775807', 9223372036854775807],
    ['-9223372036854775808', -9223372036854775808], ['', NaN], ['-', NaN], ['-0', NaN], ['01', NaN],
    ['+1', NaN], [' 1', NaN], ['1 ', NaN], ['1.5', NaN], ['9223372036854775808', NaN],
    ['-9223372036854775809', NaN], ['99999999999999999999', NaN], ['1e3', NaN],
  ];
  for (const [s, v] of cases) {
    test(JSON.stringify(s), () => assert.equal(string2ll(b(s), 0, s.length), v));
  }
});

// ---------------------------------------------------------------------------------------------
// Properties

/** Arbitrary argument bytes, including the ones that matter to framing. */
const argBytes = fc.oneof(
  fc.uint8Array({ maxLength: 40 }),
  fc.constantFrom(...['', 'GET', 'SET', '\r\n', '*1\r\n', '$-1', '"', "'"].map((s) => new Uint8Array(b(s)))),
);
const commandArb = fc.array(argBytes, { minLength: 1, maxLength: 6 });
/**
 * Inline commands: tokens without blanks, quotes or NUL (so they split back into themselves), and no
 * '*' (a line starting with '*' is multibulk by definition).
 */
const inlineToken = fc.string({ unit: fc.constantFrom(...'abcXYZ019-_:$.'.split('')), minLength: 1, maxLength: 8 });
const inlineArb = fc.array(inlineToken, { minLength: 1, maxLength: 4 });

type StreamItem = { kind: 'mb'; args: Uint8Array[] } | { kind: 'inline'; args: string[]; crlf: boolean } | { kind: 'skip'; raw: string };
const streamArb = fc.array(
  fc.oneof(
    { weight: 5, arbitrary: commandArb.map((args): StreamItem => ({ kind: 'mb', args })) },
    { weight: 2, arbitrary: fc.tuple(inlineArb, fc.boolean()).map(([args, crlf]): StreamItem => ({ kind: 'inline', args, crlf })) },
    { weight: 1, arbitrary: fc.constantFrom('*0\r\n', '*-1\r\n', '\r\n', '  \n').map((raw): StreamItem => ({ kind: 'skip', raw })) },
  ),
  { minLength: 1, maxLength: 8 },
);

function encodeStream(items: StreamItem[]): { bytes: Buffer; expected: Ev[] } {
  const parts: Buffer[] = [];
  const expected: Ev[] = [];
  for (const it of items) {
    if (it.kind === 'mb') {
      parts.push(encodeCommand(it.args));
      expected.push(it.args.map((a) => Buffer.from(a).toString('latin1')));
    } else if (it.kind === 'inline') {
      parts.push(b(it.args.join(' ') + (it.crlf ? '\r\n' : '\n')));
      expected.push(it.args);
    } else {
      parts.push(b(it.raw));
      expected.push(SKIP);
    }
  }
  return { bytes: Buffer.concat(parts), expected };
}

function splitAt(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((x, y) => x - y);
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    chunks.push(bytes.subarray(prev, p));
    prev = p;
  }
  chunks.push(bytes.subarray(prev));
  return chunks;
}

describe('parseCommand: properties', () => {
  test('a valid pipelined stream parses to what was encoded', () => {
    fc.assert(
      fc.property(streamArb, (items) => {
        const { bytes, expected } = encodeStream(items);
        assert.deepEqual(parseAll(bytes), expected);
      }),
      { numRuns: 500 },
    );
  });

  test('every split of a valid pipelined stream parses identically to the whole', () => {
    fc.assert(
      fc.property(streamArb, fc.array(fc.nat(), { maxLength: 12 }), (items, cuts) => {
        const { bytes } = encodeStream(items);
        assert.deepEqual(parseChunked(splitAt(bytes, cuts)), parseAll(bytes));
      }),
      { numRuns: 500 },
    );
  });

  test('parseCommandArgv: a valid stream, whole and split, parses as with parseCommand', () => {
    fc.assert(
      fc.property(streamArb, fc.array(fc.nat(), { maxLength: 12 }), (items, cuts) => {
        const { bytes, expected } = encodeStream(items);
        assert.deepEqual(parseAll(bytes, undefined, viaArgv), expected);
        assert.deepEqual(parseChunked(splitAt(bytes, cuts), undefined, viaArgv), expected);
      }),
      { numRuns: 500 },
    );
  });

  test('byte-by-byte feeding parses identically to the whole', () => {
    fc.assert(
      fc.property(streamArb, (items) => {
        const { bytes } = encodeStream(items);
        const chunks = Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
        assert.deepEqual(parseChunked(chunks), parseAll(bytes));
      }),
      { numRuns: 100 },
    );
  });

  /** Bytes drawn mostly from RESP's own alphabet, to reach deep into the parser. */
  const respishBytes = fc
    .array(fc.oneof(fc.constantFrom(...b('*$\r\n\r\n0123-+"\'\\ x\x00')), fc.integer({ min: 0, max: 255 })), { maxLength: 200 })
    .map((a) => Buffer.from(a));

  test('random bytes never throw; only command / skip / incomplete / error, always progressing', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u)), respishBytes), (bytes) => {
        let pos = 0;
        while (pos < bytes.length) {
          const r = parseCommand(bytes, pos, bytes.length);
          assert.ok(['command', 'skip', 'incomplete', 'error'].includes(r.kind));
          if (r.kind === 'incomplete' || r.kind === 'error') break;
          assert.ok(r.next > pos && r.next <= bytes.length);
          pos = r.next;
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('parseCommandArgv: random bytes, whole and split, give the events parseCommand gives', () => {
    fc.assert(
      fc.property(respishBytes, fc.array(fc.nat(), { maxLength: 6 }), (bytes, cuts) => {
        const whole = parseAll(bytes);
        assert.deepEqual(parseAll(bytes, undefined, viaArgv), whole);
        assert.deepEqual(parseChunked(splitAt(bytes, cuts), undefined, viaArgv), parseChunked(splitAt(bytes, cuts)));
      }),
      { numRuns: 1000 },
    );
  });

  test('random bytes: every split gives the same events as the whole (statelessness)', () => {
    fc.assert(
      fc.property(respishBytes, fc.array(fc.nat(), { maxLength: 6 }), (bytes, cuts) => {
        const whole = parseAll(bytes);
        const chunked = parseChunked(splitAt(bytes, cuts));
        // An error reached only once more bytes arrive is fine; otherwise they must agree.
        assert.deepEqual(chunked, whole);
      }),
      { numRuns: 1000 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Writers

function written(fn: (out: OutBuf) => void): string {
  const out = new OutBuf(4);
  fn(out);
  return out.take().toString('latin1');
}

describe('encode: writers', () => {
  const cases: [string, (o: OutBuf) => void, string][] = [
    ['simple OK (pre-encoded)', (o) => writeSimple(o, 'OK'), '+OK\r\n'],
    ['simple', (o) => writeSimple(o, 'PONG'), '+PONG\r\n'],
    ['simple with newline is kept on one line', (o) => writeSimple(o, 'a\r\nb'), '+a  b\r\n'],
    ['error', (o) => writeError(o, 'ERR syntax error'), '-ERR syntax error\r\n'],
    ['error with its own leading dash', (o) => writeError(o, '-NOPROTO x'), '-NOPROTO x\r\n'],
    ['error bytes are latin1', (o) => writeError(o, "ERR unknown command 'f\xffo'"), "-ERR unknown command 'f\xffo'\r\n"],
    ['integer 0', (o) => writeInteger(o, 0), ':0\r\n'],
    ['integer 1', (o) => writeInteger(o, 1), ':1\r\n'],
    ['integer -2', (o) => writeInteger(o, -2), ':-2\r\n'],
    ['integer 10', (o) => writeInteger(o, 10), ':10\r\n'],
    ['integer 1234567890123', (o) => writeInteger(o, 1234567890123), ':1234567890123\r\n'],
    ['integer max safe', (o) => writeInteger(o, Number.MAX_SAFE_INTEGER), ':9007199254740991\r\n'],
    ['integer bigint', (o) => writeInteger(o, -9223372036854775808n), ':-9223372036854775808\r\n'],
    ['bulk buffer', (o) => writeBulk(o, b('value')), '$5\r\nvalue\r\n'],
    ['bulk empty', (o) => writeBulk(o, b('')), '$0\r\n\r\n'],
    ['bulk string is UTF-8', (o) => writeBulk(o, 'é'), '$2\r\n\xc3\xa9\r\n'],
    ['bulk null', (o) => writeBulk(o, null), '$-1\r\n'],
    ['array header', (o) => writeArrayHeader(o, 12), '*12\r\n'],
    ['array header 0', (o) => writeArrayHeader(o, 0), '*0\r\n'],
    ['array header -1 is the null array', (o) => writeArrayHeader(o, -1), '*-1\r\n'],
    ['null array', (o) => writeNullArray(o), '*-1\r\n'],
    ['value: nested', (o) => writeValue(o, ['a', 1, b('x'), null, [new RespErrorReply('ERR e')]]), '*5\r\n+a\r\n:1\r\n$1\r\nx\r\n$-1\r\n*1\r\n-ERR e\r\n'],
  ];
  for (const [name, fn, expected] of cases) test(name, () => assert.equal(written(fn), expected));

  test('encodeCommand', () => {
    assert.equal(encodeCommand(['SET', 'key', b('v\r\n')]).toString('latin1'), '*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$3\r\nv\r\n\r\n');
    assert.equal(encodeCommand(['ECHO', 'é']).toString('latin1'), '*2\r\n$4\r\nECHO\r\n$2\r\n\xc3\xa9\r\n');
    assert.equal(encodeCommand([]).toString('latin1'), '*0\r\n');
    const long = 'x'.repeat(12345);
    assert.equal(encodeCommand([long]).toString('latin1'), `*1\r\n$12345\r\n${long}\r\n`);
  });

  test('writers grow the OutBuf as needed', () => {
    const out = new OutBuf(1);
    for (let i = 0; i < 1000; i++) writeBulk(out, b('0123456789'));
    assert.equal(out.len, 1000 * '$10\r\n0123456789\r\n'.length);
  });
});

// ---------------------------------------------------------------------------------------------
// Client parser

function reply(s: string): RespValue | 'incomplete' | { error: string } {
  const buf = b(s);
  const r = parseReply(buf, 0, buf.length);
  if (r.kind === 'incomplete') return 'incomplete';
  if (r.kind === 'error') return { error: r.reason };
  assert.equal(r.next, buf.length);
  return r.value;
}

describe('parseReply / skipReply', () => {
  const cases: [string, string, RespValue | 'incomplete' | 'malformed'][] = [
    ['simple', '+OK\r\n', 'OK'],
    ['simple with a lone \\r', '+a\rb\r\n', 'a\rb'],
    ['error', '-ERR no\r\n', new RespErrorReply('ERR no')],
    ['integer', ':-42\r\n', -42],
    ['bulk', '$3\r\nfoo\r\n', b('foo')],
    ['bulk with CRLF inside', '$4\r\na\r\nb\r\n', b('a\r\nb')],
    ['null bulk', '$-1\r\n', null],
    ['empty array', '*0\r\n', []],
    ['null array', '*-1\r\n', null],
    ['nested', '*2\r\n*1\r\n:1\r\n$-1\r\n', [[1], null]],
    ['incomplete line', '+OK\r', 'incomplete'],
    ['incomplete bulk', '$3\r\nfo', 'incomplete'],
    ['incomplete array', '*2\r\n:1\r\n', 'incomplete'],
    ['empty input', '', 'incomplete'],
    ['unknown type', '?x\r\n', 'malformed'],
    ['bad integer', ':1x\r\n', 'malformed'],
    ['bad bulk length', '$-2\r\n', 'malformed'],
    ['bulk not followed by CRLF', '$3\r\nfooXY', 'malformed'],
    ['bad array length', '*-2\r\n', 'malformed'],
    ['endless number line', ':' + '1'.repeat(40), 'malformed'],
  ];
  for (const [name, input, expected] of cases) {
    test(name, () => {
      const got = reply(input);
      const skip = skipReply(b(input), 0, input.length);
      if (expected === 'incomplete') {
        assert.equal(got, 'incomplete');
        assert.equal(skip, -1);
      } else if (expected === 'malformed') {
        assert.ok(typeof got === 'object' && got !== null && 'error' in got);
        assert.equal(skip, -2);
      } else {
        assert.deepEqual(got, expected);
        assert.equal(skip, input.length);
      }
    });
  }

  test('replyType', () => {
    assert.equal(replyType(b('+OK\r\n'), 0), 43);
    assert.equal(replyType(b('x$'), 1), 36);
    assert.equal(replyType(b(''), 0), -1);
  });

  test('deep nesting does not overflow the stack', () => {
    const depth = 100_000;
    const buf = b('*1\r\n'.repeat(depth) + ':7\r\n');
    assert.equal(skipReply(buf, 0, buf.length), buf.length);
    const r = parseReply(buf, 0, buf.length);
    assert.equal(r.kind, 'reply');
  });

  test('offsets: parse a reply in the middle of a buffer', () => {
    const buf = b('junk:1\r\n+OK\r\nmore');
    const r = parseReply(buf, 4, buf.length - 4);
    assert.deepEqual(r, { kind: 'reply', value: 1, next: 8 });
    assert.equal(skipReply(buf, 8, buf.length - 4), 13);
  });
});

/** Values as the writers emit them and the client reads them back. */
const valueArb: fc.Arbitrary<RespValue> = fc.letrec<{ v: RespValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    // simple strings and errors: latin1 text without CR/LF (the writers would turn those into spaces),
    // and errors not starting with '-' (writeError treats a leading '-' as part of the prefix).
    fc.string({ unit: fc.integer({ min: 0, max: 255 }).filter((c) => c !== 10 && c !== 13).map((c) => String.fromCharCode(c)) }),
    fc
      .string({ unit: fc.integer({ min: 32, max: 255 }).map((c) => String.fromCharCode(c)) })
      .filter((s) => !s.startsWith('-'))
      .map((s) => new RespErrorReply(s)),
    fc.maxSafeInteger(),
    fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u)),
    fc.constant(null),
    fc.array(tie('v'), { maxLength: 5 }),
  ),
})).v;

function encodeValue(v: RespValue): Buffer {
  const out = new OutBuf(16);
  writeValue(out, v);
  return out.take();
}

describe('encoder -> client parser: properties', () => {
  test('round trip of random RespValues', () => {
    fc.assert(
      fc.property(valueArb, (v) => {
        const bytes = encodeValue(v);
        const r = parseReply(bytes, 0, bytes.length);
        assert.equal(r.kind, 'reply');
        if (r.kind === 'reply') {
          assert.deepEqual(r.value, v);
          assert.equal(r.next, bytes.length);
        }
      }),
      { numRuns: 1000 },
    );
  });

  test('every strict prefix of an encoded reply is incomplete', () => {
    fc.assert(
      fc.property(valueArb, (v) => {
        const bytes = encodeValue(v);
        for (let end = 0; end < bytes.length; end++) {
          assert.equal(parseReply(bytes, 0, end).kind, 'incomplete');
          assert.equal(skipReply(bytes, 0, end), -1);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('a stream of replies is read back one after another', () => {
    fc.assert(
      fc.property(fc.array(valueArb, { maxLength: 10 }), (vs) => {
        const bytes = Buffer.concat(vs.map(encodeValue));
        const got: RespValue[] = [];
        let pos = 0;
        while (pos < bytes.length) {
          const r = parseReply(bytes, pos, bytes.length);
          assert.equal(r.kind, 'reply');
          if (r.kind !== 'reply') break;
          got.push(r.value);
          pos = r.next;
        }
        assert.deepEqual(got, vs);
      }),
      { numRuns: 300 },
    );
  });

  test('skipReply agrees with parseReply (encoded values and random bytes)', () => {
    const respish = fc
      .array(fc.oneof(fc.constantFrom(...b('+-:$*\r\n\r\n0123-x')), fc.integer({ min: 0, max: 255 })), { maxLength: 120 })
      .map((a) => Buffer.from(a));
    fc.assert(
      fc.property(fc.oneof(valueArb.map(encodeValue), respish), (bytes) => {
        const r = parseReply(bytes, 0, bytes.length);
        const s = skipReply(bytes, 0, bytes.length);
        if (r.kind === 'reply') assert.equal(s, r.next);
        else if (r.kind === 'incomplete') assert.equal(s, -1);
        else assert.equal(s, -2);
      }),
      { numRuns: 2000 },
    );
  });
});
