/**
 * The kv app, driven the way an engine drives it: bytes -> parseCommand -> app.handle -> OutBuf, and
 * the replies compared as raw RESP bytes. Expected bytes and wording are Redis 7.0's (each table was
 * checked against redis-server 7.0.15; the few places where kv differs on purpose say so).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createKv as createKvApp, FakeClock, kv, type KvApp, type KvOptions } from '../../src/apps/kv.js';
import { parseCommand, parseCommandArgv, ARGV, RespArgv } from '../../src/protocols/resp/server.js';
import { DEFAULT_RESP_LIMITS } from '../../src/protocols/resp/types.js';
import { encodeCommand } from '../../src/protocols/resp/encode.js';
import { OutBuf } from '../../src/protocols/outbuf.js';
import { createService, FeedResult } from '../../src/apps/service.js';

/** Send one command (args, or a raw inline line) and return the reply bytes as a latin1 string. */
function send(app: KvApp, cmd: string[] | string): { reply: string; close: boolean } {
  const bytes = typeof cmd === 'string' ? Buffer.from(cmd + '\r\n', 'latin1') : encodeCommand(cmd.map((a) => Buffer.from(a, 'latin1')));
  const p = parseCommand(bytes, 0, bytes.length);
  assert.equal(p.kind, 'command', `not a command: ${JSON.stringify(cmd)}`);
  if (p.kind !== 'command') return { reply: '', close: false };
  assert.equal(p.next, bytes.length);
  const out = new OutBuf(8);
  const r = app.handle(p.args, out);
  return { reply: out.take().toString('latin1'), close: r === 'close' };
}

type Row = [cmd: string[] | string, reply: string];

/** Run a script of [command, expected reply] rows against one app, in order. */
function runScript(rows: Row[], app: KvApp): void {
  for (const [cmd, expected] of rows) {
    assert.equal(send(app, cmd).reply, expected, `reply to ${JSON.stringify(cmd)}`);
  }
}

const NIL = '$-1\r\n';
const OK = '+OK\r\n';
const WRONGTYPE = '-WRONGTYPE Operation against a key holding the wrong kind of value\r\n';
const NOT_INT = '-ERR value is not an integer or out of range\r\n';
const SYNTAX = '-ERR syntax error\r\n';
const arity = (name: string) => `-ERR wrong number of arguments for '${name}' command\r\n`;
const int = (n: number | string) => `:${n}\r\n`;
const bulk = (s: string) => `$${Buffer.byteLength(s, 'latin1')}\r\n${s}\r\n`;
const arr = (...items: string[]) => `*${items.length}\r\n${items.join('')}`;

/**
 * Every suite runs twice: with the keyspace of one isolate (Keyspace), and with the keyspace in shared
 * memory that thread- and process-per-connection engines use (ShmKeyspace, kv-shm.ts; here over a
 * SharedArrayBuffer), where every command takes the lock and objects are encoded back after it.
 */
const MODES: [tag: string, make: (o?: KvOptions) => KvApp][] = [
  ['', (o = {}) => createKvApp(o)],
  [' (shared keyspace)', (o = {}) => createKvApp({ ...o, shared: new SharedArrayBuffer(8 << 20) })],
];

for (const [tag, createKv] of MODES) {
  /** Run a script of [command, expected reply] rows against one app (by default a new one), in order. */
  const script = (rows: Row[], app: KvApp = createKv({ clock: new FakeClock() })): void => runScript(rows, app);
  describe(`kv${tag}: app shape`, () => {
    test('protocol and name', () => {
      const app = createKv();
      assert.equal(app.protocol, 'resp');
      assert.equal(app.name, 'kv');
      assert.equal(kv, createKvApp);
    });
  });

  describe(`kv${tag}: connection and server commands`, () => {
    test('PING, ECHO, QUIT, SELECT, DBSIZE, FLUSHDB', () =>
      script([
        [['PING'], '+PONG\r\n'],
        ['ping', '+PONG\r\n'],
        [['PING', 'hello'], bulk('hello')],
        [['PING', 'a', 'b'], arity('ping')],
        [['ECHO', 'hi there'], bulk('hi there')],
        [['ECHO'], arity('echo')],
        [['SELECT', '0'], OK],
        [['SELECT', '1'], '-ERR DB index is out of range\r\n'], // one database here (Redis has 16)
        [['SELECT', 'x'], NOT_INT],
        [['SELECT', '99999999999'], '-ERR value is out of range, value must between -2147483648 and 2147483647\r\n'],
        [['SET', 'a', '1'], OK],
        [['DBSIZE'], int(1)],
        [['DBSIZE', 'x'], arity('dbsize')],
        [['FLUSHDB', 'x'], SYNTAX],
        [['FLUSHALL', 'ASYNC', 'x'], SYNTAX],
        [['FLUSHDB', 'async'], OK],
        [['DBSIZE'], int(0)],
        [['SET', 'a', '1'], OK],
        [['FLUSHALL'], OK],
        [['FLUSHALL', 'SYNC'], OK],
        [['DBSIZE'], int(0)],
      ]));

    test('QUIT answers OK and asks to close', () => {
      const r = send(createKv(), ['QUIT']);
      assert.deepEqual(r, { reply: OK, close: true });
    });

    test('unknown commands, in Redis wording', () =>
      script([
        [['FOO'], "-ERR unknown command 'FOO', with args beginning with: \r\n"],
        [['FOO', 'a', 'b'], "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n"],
        [['f\xffo', 'x'], "-ERR unknown command 'f\xffo', with args beginning with: 'x' \r\n"],
        // Newlines in user bytes become spaces; a NUL ends the argument as C's %s does.
        [['foo', 'a\r\nb', 'x\x00y'], "-ERR unknown command 'foo', with args beginning with: 'a  b' 'x' \r\n"],
        // Command name cut at 128 bytes; arguments listed while fewer than 128 bytes are shown, each cut
        // to what is left of the 128 (`'%.*s' ` with 128-sdslen(args): 128 - 103 = 25 b's here).
        [['C'.repeat(130), 'a'.repeat(100), 'b'.repeat(50), 'c'],
          `-ERR unknown command '${'C'.repeat(128)}', with args beginning with: '${'a'.repeat(100)}' '${'b'.repeat(25)}' \r\n`],
        [['GETX', 'k'], "-ERR unknown command 'GETX', with args beginning with: 'k' \r\n"],
      ]));

    test('commands are case-insensitive; arity errors name them in lower case', () =>
      script([
        [['set', 'k', 'v'], OK],
        [['gEt', 'k'], bulk('v')],
        [['GET'], arity('get')],
        [['GET', 'a', 'b'], arity('get')],
        [['SET', 'k'], arity('set')],
      ]));

    test('COMMAND, CONFIG, CLIENT, HELLO, INFO (what redis-cli and redis-benchmark send)', () => {
      const app = createKv({ clock: new FakeClock() });
      script(
        [
          [['COMMAND'], '*0\r\n'],
          [['COMMAND', 'DOCS'], '*0\r\n'],
          [['COMMAND', 'DOCS', 'get'], '*0\r\n'],
          [['COMMAND', 'INFO', 'get', 'set'], '*2\r\n*-1\r\n*-1\r\n'],
          [['COMMAND', 'foo'], "-ERR unknown subcommand 'foo'. Try COMMAND HELP.\r\n"],
          [['COMMAND', 'COUNT', 'x'], arity('command|count')],
          [['CONFIG', 'GET', 'save'], arr(bulk('save'), bulk(''))],
          [['CONFIG', 'GET', 'SAVE'], arr(bulk('SAVE'), bulk(''))],
          [['CONFIG', 'GET', 'appendonly'], arr(bulk('appendonly'), bulk('no'))],
          [['CONFIG', 'GET', 'appendonly', 'save', 'save'], arr(bulk('save'), bulk(''), bulk('appendonly'), bulk('no'))],
          [['CONFIG', 'GET', 'append*'], arr(bulk('appendonly'), bulk('no'))],
          [['CONFIG', 'GET', 'maxmemory'], '*0\r\n'],
          [['CONFIG', 'GET'], arity('config|get')],
          [['CONFIG'], arity('config')],
          [['CONFIG', 'foo'], "-ERR unknown subcommand 'foo'. Try CONFIG HELP.\r\n"],
          [['config', 'Foo'], "-ERR unknown subcommand 'Foo'. Try CONFIG HELP.\r\n"],
          [['CONFIG', 'RESETSTAT'], OK],
          [['CLIENT', 'SETNAME', 'bench'], OK],
          [['CLIENT', 'SETNAME', 'a b'], '-ERR Client names cannot contain spaces, newlines or special characters.\r\n'],
          [['CLIENT', 'SETNAME'], arity('client|setname')],
          [['CLIENT', 'GETNAME'], NIL], // no per-connection state in a RespApp (Redis would answer "bench")
          [['CLIENT', 'ID'], int(0)],
          [['CLIENT', 'ID', 'x'], arity('client|id')],
          [['CLIENT', 'SETINFO', 'LIB-NAME', 'redis-py'], OK],
          [['CLIENT', 'SETINFO', 'lib-ver', '1.0'], OK],
          [['CLIENT', 'SETINFO', 'other', '1'], "-ERR Unrecognized option 'other'\r\n"],
          [['CLIENT'], arity('client')],
          [['CLIENT', 'foo'], "-ERR unknown subcommand 'foo'. Try CLIENT HELP.\r\n"],
          [['HELLO', '3'], '-NOPROTO unsupported protocol version\r\n'], // RESP2 only
          [['HELLO', '4'], '-NOPROTO unsupported protocol version\r\n'],
          [['HELLO', 'x'], '-ERR Protocol version is not an integer or out of range\r\n'],
          [['HELLO', '2', 'FOO'], "-ERR Syntax error in HELLO option 'FOO'\r\n"],
          [['HELLO', '2', 'SETNAME'], "-ERR Syntax error in HELLO option 'SETNAME'\r\n"],
          [['HELLO', '2', 'SETNAME', 'a b'], '-ERR Client names cannot contain spaces, newlines or special characters.\r\n'],
        ],
        app,
      );
      const hello = arr(
        bulk('server'), bulk('redis'), bulk('version'), bulk('7.0.0'), bulk('proto'), int(2), bulk('id'), int(0),
        bulk('mode'), bulk('standalone'), bulk('role'), bulk('master'), bulk('modules'), '*0\r\n',
      );
      assert.equal(send(app, ['HELLO']).reply, hello);
      assert.equal(send(app, ['HELLO', '2', 'AUTH', 'default', 'pw', 'SETNAME', 'x']).reply, hello);

      const info = send(app, ['INFO']).reply;
      assert.match(info, /^\$\d+\r\n# Server\r\nredis_version:7\.0\.0\r\n/);
      const len = Number(info.slice(1, info.indexOf('\r\n')));
      assert.equal(Buffer.byteLength(info, 'latin1'), info.indexOf('\r\n') + 2 + len + 2);
      send(app, ['SET', 'k', 'v']);
      assert.match(send(app, ['INFO', 'keyspace']).reply, /^\$\d+\r\n# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n\r\n$/);
      assert.equal(send(app, ['INFO', 'nosuchsection']).reply, '$0\r\n\r\n');
    });

    test('COMMAND COUNT and LIST agree', () => {
      const app = createKv();
      const count = send(app, ['COMMAND', 'COUNT']).reply;
      const n = Number(count.slice(1, -2));
      assert.ok(n > 30);
      assert.ok(send(app, ['COMMAND', 'LIST']).reply.startsWith(`*${n}\r\n`));
    });
  });

  describe(`kv${tag}: strings`, () => {
    test('GET and SET', () =>
      script([
        [['GET', 'k'], NIL],
        [['SET', 'k', 'v'], OK],
        [['GET', 'k'], bulk('v')],
        [['SET', 'k', ''], OK],
        [['GET', 'k'], '$0\r\n\r\n'],
        [['SET', 'bin\x00\xff', 'a\r\nb'], OK],
        [['GET', 'bin\x00\xff'], bulk('a\r\nb')],
        [['GET', 'bin\x00'], NIL],
        ['SET inline "with space"', OK],
        [['GET', 'inline'], bulk('with space')],
      ]));

    test('SET options: NX, XX, GET, KEEPTTL and syntax errors', () =>
      script([
        [['SET', 'k', 'v', 'NX'], OK],
        [['SET', 'k', 'v2', 'nx'], NIL],
        [['SET', 'k', 'v2', 'XX', 'GET'], bulk('v')],
        [['GET', 'k'], bulk('v2')],
        [['SET', 'k2', 'v', 'XX'], NIL],
        [['SET', 'k2', 'v', 'NX', 'GET'], NIL],
        [['GET', 'k2'], bulk('v')],
        [['SET', 'k2', 'v', 'NX', 'GET'], bulk('v')],
        [['SET', 'k', 'v', 'NX', 'XX'], SYNTAX],
        [['SET', 'k', 'v', 'foo'], SYNTAX],
        [['SET', 'k', 'v', 'EX'], SYNTAX],
        [['SET', 'k', 'v', 'EX', '10', 'PX', '100'], SYNTAX],
        [['SET', 'k', 'v', 'KEEPTTL', 'EX', '1'], SYNTAX],
        [['SET', 'k', 'v', 'EX', '1', 'KEEPTTL'], SYNTAX],
        [['SET', 'k', 'v', 'EX', '10', 'EX', '20'], OK], // the same unit twice is allowed; the last wins
        [['TTL', 'k'], int(20)],
        [['SET', 'k', 'v', 'GET', 'GET'], bulk('v')],
        [['LPUSH', 'list', 'a'], int(1)],
        [['SET', 'list', 'x', 'GET'], WRONGTYPE],
        [['GET', 'list'], WRONGTYPE],
        [['SET', 'list', 'x'], OK], // SET overwrites any type
        [['GET', 'list'], bulk('x')],
      ]));

    test('SET expire arguments', () =>
      script([
        [['SET', 'k', 'v', 'EX', '0'], "-ERR invalid expire time in 'set' command\r\n"],
        [['SET', 'k', 'v', 'PX', '-1'], "-ERR invalid expire time in 'set' command\r\n"],
        [['SET', 'k', 'v', 'EXAT', '0'], "-ERR invalid expire time in 'set' command\r\n"],
        [['SET', 'k', 'v', 'EX', '9223372036854776'], "-ERR invalid expire time in 'set' command\r\n"],
        [['SET', 'k', 'v', 'EX', 'x'], NOT_INT],
        [['SET', 'k', 'v', 'PX', '1.5'], NOT_INT],
        [['GET', 'k'], NIL],
      ]));

    test('INCR, DECR, INCRBY, DECRBY', () =>
      script([
        [['INCR', 'c'], int(1)],
        [['INCRBY', 'c', '10'], int(11)],
        [['DECRBY', 'c', '3'], int(8)],
        [['DECR', 'c'], int(7)],
        [['GET', 'c'], bulk('7')],
        [['INCRBY', 'c', 'x'], NOT_INT],
        [['INCRBY', 'c', '9223372036854775808'], NOT_INT],
        [['DECR', 'n'], int(-1)],
        [['SET', 'c', '9223372036854775806'], OK],
        [['INCR', 'c'], int('9223372036854775807')],
        [['INCR', 'c'], '-ERR increment or decrement would overflow\r\n'],
        [['GET', 'c'], bulk('9223372036854775807')],
        [['SET', 'c', '-9223372036854775808'], OK],
        [['DECR', 'c'], '-ERR increment or decrement would overflow\r\n'],
        [['DECRBY', 'c', '-9223372036854775808'], '-ERR decrement would overflow\r\n'],
        [['SET', 'c', '9007199254740993'], OK], // beyond 2^53: exact 64-bit arithmetic
        [['INCRBY', 'c', '2'], int('9007199254740995')],
        [['SET', 'c', ' 1'], OK],
        [['INCR', 'c'], NOT_INT],
        [['SET', 'c', '01'], OK],
        [['INCR', 'c'], NOT_INT],
        [['SET', 'c', '1.5'], OK],
        [['INCR', 'c'], NOT_INT],
        [['RPUSH', 'l', 'a'], int(1)],
        [['INCR', 'l'], WRONGTYPE],
        [['INCRBY', 'c'], arity('incrby')],
      ]));

    test('MGET, MSET', () =>
      script([
        [['MSET', 'a', '1', 'b'], arity('mset')],
        [['MSET', 'a', '1', 'b', '2'], OK],
        [['RPUSH', 'l', 'x'], int(1)],
        [['MGET', 'a', 'nokey', 'b', 'l'], arr(bulk('1'), NIL, bulk('2'), NIL)], // other types read as nil
        [['MGET'], arity('mget')],
      ]));
  });

  describe(`kv${tag}: keys`, () => {
    test('DEL, EXISTS, TYPE', () =>
      script([
        [['MSET', 'a', '1', 'b', '2'], OK],
        [['EXISTS', 'a', 'a', 'zz'], int(2)], // duplicates count, as in Redis
        [['DEL', 'a', 'a', 'zz'], int(1)],
        [['EXISTS', 'a'], int(0)],
        [['TYPE', 'b'], '+string\r\n'],
        [['TYPE', 'zz'], '+none\r\n'],
        [['DEL'], arity('del')],
      ]));

    test('EXPIRE options and errors', () =>
      script([
        [['SET', 'a', '1'], OK],
        [['EXPIRE', 'zz', '10'], int(0)],
        [['EXPIRE', 'a', '100'], int(1)],
        [['EXPIRE', 'a', '100', 'NX'], int(0)],
        [['EXPIRE', 'a', '200', 'xx'], int(1)],
        [['EXPIRE', 'a', '50', 'GT'], int(0)],
        [['EXPIRE', 'a', '50', 'LT'], int(1)],
        [['TTL', 'a'], int(50)],
        [['SET', 'b', '1'], OK],
        [['EXPIRE', 'b', '50', 'GT'], int(0)], // no deadline counts as infinite
        [['EXPIRE', 'b', '50', 'XX'], int(0)],
        [['EXPIRE', 'b', '50', 'LT'], int(1)],
        [['EXPIRE', 'a', '1', 'foo'], '-ERR Unsupported option foo\r\n'],
        [['EXPIRE', 'a', '1', 'nx', 'xx'], '-ERR NX and XX, GT or LT options at the same time are not compatible\r\n'],
        [['EXPIRE', 'a', '1', 'gt', 'lt'], '-ERR GT and LT options at the same time are not compatible\r\n'],
        [['EXPIRE', 'a', 'x'], NOT_INT],
        [['EXPIRE', 'a', '9223372036854775807'], "-ERR invalid expire time in 'expire' command\r\n"],
        [['PEXPIRE', 'a', '9223372036854775807'], "-ERR invalid expire time in 'pexpire' command\r\n"],
        [['EXPIRE', 'a'], arity('expire')],
        [['EXPIRE', 'b', '-1'], int(1)], // a deadline in the past deletes the key now
        [['EXISTS', 'b'], int(0)],
        [['PERSIST', 'a'], int(1)],
        [['PERSIST', 'a'], int(0)],
        [['PERSIST', 'zz'], int(0)],
        [['TTL', 'a'], int(-1)],
        [['TTL', 'zz'], int(-2)],
        [['PTTL', 'zz'], int(-2)],
      ]));
  });

  describe(`kv${tag}: expiry with a fake clock`, () => {
    test('EX, PX, TTL rounding, lazy expiry', () => {
      const clock = new FakeClock(1_000_000);
      const app = createKv({ clock });
      script(
        [
          [['SET', 'k', 'v', 'EX', '10'], OK],
          [['TTL', 'k'], int(10)],
          [['PTTL', 'k'], int(10000)],
        ],
        app,
      );
      clock.advance(1499);
      script([[['TTL', 'k'], int(9)], [['PTTL', 'k'], int(8501)]], app); // (8501+500)/1000 = 9
      clock.advance(1);
      script([[['TTL', 'k'], int(9)], [['PTTL', 'k'], int(8500)]], app);
      clock.advance(8500); // now == deadline: still there (expired only once now > deadline)
      script([[['GET', 'k'], bulk('v')], [['PTTL', 'k'], int(0)], [['TTL', 'k'], int(0)]], app);
      clock.advance(1);
      script([[['GET', 'k'], NIL], [['TTL', 'k'], int(-2)], [['EXISTS', 'k'], int(0)]], app);
      assert.equal(app.size, 0);
      assert.equal(app.expiring, 0);
    });

    test('fractional clock readings are floored to ms', () => {
      const clock = new FakeClock(1000.75);
      const app = createKv({ clock });
      script([[['SET', 'k', 'v', 'PX', '100'], OK], [['PTTL', 'k'], int(100)]], app);
      clock.advance(99.5); // 1100.25 -> 1100
      script([[['PTTL', 'k'], int(0)], [['GET', 'k'], bulk('v')]], app);
    });

    test('EXAT, PXAT, EXPIREAT, PEXPIREAT use Unix time', () => {
      const clock = new FakeClock(1_700_000_000_000);
      const app = createKv({ clock });
      script(
        [
          [['SET', 'a', 'v', 'EXAT', '1700000100'], OK],
          [['TTL', 'a'], int(100)],
          [['SET', 'b', 'v', 'PXAT', '1700000000500'], OK],
          [['PTTL', 'b'], int(500)],
          [['EXPIREAT', 'a', '1700000050'], int(1)],
          [['TTL', 'a'], int(50)],
          [['PEXPIREAT', 'a', '1700000000001'], int(1)],
          [['PTTL', 'a'], int(1)],
          [['SET', 'c', 'v', 'PXAT', '1'], OK], // already past: set, then gone on first touch
          [['GET', 'c'], NIL],
          [['SET', 'd', 'v'], OK],
          [['PEXPIREAT', 'd', '1'], int(1)], // already past: deleted now
          [['EXISTS', 'd'], int(0)],
        ],
        app,
      );
    });

    test('SET drops the deadline, KEEPTTL keeps it, INCR keeps it', () => {
      const clock = new FakeClock();
      const app = createKv({ clock });
      script(
        [
          [['SET', 'k', '1', 'EX', '100'], OK],
          [['INCR', 'k'], int(2)],
          [['TTL', 'k'], int(100)],
          [['SET', 'k', '5', 'KEEPTTL'], OK],
          [['TTL', 'k'], int(100)],
          [['SET', 'k', '5'], OK],
          [['TTL', 'k'], int(-1)],
          [['SET', 'k', '1', 'PX', '100'], OK],
          [['MSET', 'k', '2'], OK],
          [['TTL', 'k'], int(-1)],
        ],
        app,
      );
    });

    test('an expired key is gone for every command (NX sees it missing, DEL does not count it)', () => {
      const clock = new FakeClock();
      const app = createKv({ clock });
      script([[['SET', 'k', 'old', 'PX', '10'], OK], [['SET', 'j', 'x', 'PX', '10'], OK]], app);
      clock.advance(11);
      script(
        [
          [['SET', 'k', 'new', 'NX', 'GET'], NIL],
          [['TTL', 'k'], int(-1)],
          [['DEL', 'j'], int(0)],
          [['EXPIRE', 'j', '10'], int(0)],
          [['INCR', 'j'], int(1)],
        ],
        app,
      );
    });

    test('sweep() removes expired keys in bounded steps', () => {
      const clock = new FakeClock();
      const app = createKv({ clock });
      for (let i = 0; i < 1000; i++) send(app, ['SET', `k${i}`, 'v', 'PX', String(i < 600 ? 10 : 100000)]);
      send(app, ['SET', 'forever', 'v']);
      assert.equal(app.size, 1001);
      assert.equal(app.sweep(), 0); // nothing expired yet
      clock.advance(11);
      let removed = 0;
      let calls = 0;
      for (;;) {
        const r = app.sweep(undefined, 100);
        assert.ok(r <= 100, 'a sweep checks at most `budget` keys');
        removed += r;
        calls++;
        if (app.expiring === 400) break;
        assert.ok(calls < 50);
      }
      assert.equal(removed, 600);
      assert.equal(app.size, 401);
      assert.equal(send(app, ['GET', 'forever']).reply, bulk('v'));
      assert.equal(send(app, ['GET', 'k999']).reply, bulk('v'));
      // An explicit `now` far ahead expires the rest.
      while (app.expiring > 0) app.sweep(clock.now() + 1e9, 64);
      assert.equal(app.size, 1);
      assert.equal(app.sweep(), 0);
    });
  });

  describe(`kv${tag}: lists, sets, hashes`, () => {
    test('lists', () =>
      script([
        [['RPUSH', 'l', 'a', 'b', 'c', 'd', 'e'], int(5)],
        [['LPUSH', 'l', 'y', 'z'], int(7)],
        [['LRANGE', 'l', '0', '-1'], arr(bulk('z'), bulk('y'), bulk('a'), bulk('b'), bulk('c'), bulk('d'), bulk('e'))],
        [['LRANGE', 'l', '-3', '-2'], arr(bulk('c'), bulk('d'))],
        [['LRANGE', 'l', '5', '1'], '*0\r\n'],
        [['LRANGE', 'l', '-100', '1'], arr(bulk('z'), bulk('y'))],
        [['LRANGE', 'l', 'x', '1'], NOT_INT],
        [['LRANGE', 'nol', '0', '-1'], '*0\r\n'],
        [['LLEN', 'l'], int(7)],
        [['LLEN', 'nol'], int(0)],
        [['LPOP', 'l'], bulk('z')],
        [['RPOP', 'l'], bulk('e')],
        [['LPOP', 'l', '2'], arr(bulk('y'), bulk('a'))],
        [['RPOP', 'l', '2'], arr(bulk('d'), bulk('c'))],
        [['RPOP', 'l', '5'], arr(bulk('b'))],
        [['EXISTS', 'l'], int(0)], // an emptied list is deleted
        [['LPOP', 'l'], NIL],
        [['LPOP', 'l', '0'], '*-1\r\n'],
        [['RPUSH', 'l', 'a'], int(1)],
        [['LPOP', 'l', '0'], '*0\r\n'],
        [['LPOP', 'l', 'x'], '-ERR value is out of range, must be positive\r\n'],
        [['LPOP', 'l', '-1'], '-ERR value is out of range, must be positive\r\n'],
        [['LPOP', 'l', '1', '2'], arity('lpop')],
        [['SET', 's', 'x'], OK],
        [['LPUSH', 's', 'a'], WRONGTYPE],
        [['LRANGE', 's', '0', '1'], WRONGTYPE],
      ]));

    test('a list grows past its ring buffer from both ends', () => {
      const app = createKv();
      const expected: string[] = [];
      for (let i = 0; i < 50; i++) {
        send(app, ['LPUSH', 'l', `L${i}`]);
        expected.unshift(`L${i}`);
        send(app, ['RPUSH', 'l', `R${i}`]);
        expected.push(`R${i}`);
      }
      assert.equal(send(app, ['LRANGE', 'l', '0', '-1']).reply, arr(...expected.map(bulk)));
    });

    test('sets', () =>
      script([
        [['SADD', 's', 'a', 'b', 'a'], int(2)],
        [['SCARD', 's'], int(2)],
        [['SISMEMBER', 's', 'a'], int(1)],
        [['SISMEMBER', 's', 'zz'], int(0)],
        [['SREM', 's', 'a', 'zz'], int(1)],
        [['SMEMBERS', 's'], arr(bulk('b'))],
        [['SPOP', 's'], bulk('b')],
        [['SPOP', 's'], NIL],
        [['SPOP', 's', '1'], '*0\r\n'],
        [['SADD', 's', 'q'], int(1)],
        [['SPOP', 's', '0'], '*0\r\n'],
        [['SPOP', 's', '5'], arr(bulk('q'))],
        [['SPOP', 's', '-1'], '-ERR value is out of range, must be positive\r\n'],
        [['SPOP', 's', '1', '2'], SYNTAX],
        [['TYPE', 'x'], '+none\r\n'],
        [['SADD', 'x', 'm'], int(1)],
        [['TYPE', 'x'], '+set\r\n'],
        [['GET', 'x'], WRONGTYPE],
      ]));

    test('hashes', () =>
      script([
        [['HSET', 'h', 'f', 'v', 'g', 'w'], int(2)],
        [['HSET', 'h', 'f', 'v2'], int(0)],
        [['HSET', 'h', 'f'], arity('hset')],
        [['HSET', 'h', 'f', 'v', 'g'], arity('hset')],
        [['HGET', 'h', 'f'], bulk('v2')],
        [['HGET', 'h', 'zz'], NIL],
        [['HGET', 'noh', 'f'], NIL],
        [['HLEN', 'h'], int(2)],
        [['HGETALL', 'h'], arr(bulk('f'), bulk('v2'), bulk('g'), bulk('w'))],
        [['HDEL', 'h', 'f', 'zz'], int(1)],
        [['HDEL', 'h', 'g'], int(1)],
        [['EXISTS', 'h'], int(0)],
        [['SET', 'str', 'x'], OK],
        [['HSET', 'str', 'a', 'b'], WRONGTYPE],
        [['HGET', 'str', 'a'], WRONGTYPE],
        [['HSET', 'h2', 'a', 'b'], int(1)],
        [['TYPE', 'h2'], '+hash\r\n'],
      ]));
  });

  describe(`kv${tag}: the reply bytes do not depend on the OutBuf or later commands`, () => {
    test('a stored value is the app\'s own copy', () => {
      const app = createKv();
      const value = Buffer.from('hello');
      const out = new OutBuf();
      app.handle([Buffer.from('SET'), Buffer.from('k'), value], out);
      value.fill(0x78); // the engine reuses its buffers
      out.reset();
      app.handle([Buffer.from('GET'), Buffer.from('k')], out);
      assert.equal(out.take().toString(), bulk('hello'));
    });

    test('many replies appended to one OutBuf (pipelining)', () => {
      const app = createKv();
      const out = new OutBuf(16);
      for (let i = 0; i < 100; i++) app.handle([Buffer.from('SET'), Buffer.from(`k${i}`), Buffer.from(`v${i}`)], out);
      for (let i = 0; i < 100; i++) app.handle([Buffer.from('GET'), Buffer.from(`k${i}`)], out);
      const expected = OK.repeat(100) + Array.from({ length: 100 }, (_, i) => bulk(`v${i}`)).join('');
      assert.equal(out.take().toString('latin1'), expected);
    });
  });

  describe(`kv${tag}: handleArgv (arguments read in place) answers as handle does`, () => {
    /** Send one command through handleArgv, from a buffer with junk around it as an engine's read buffer has. */
    function sendArgv(app: KvApp, cmd: string[], argv = new RespArgv()): { reply: string; close: boolean; buf: Buffer } {
      const enc = encodeCommand(cmd.map((a) => Buffer.from(a, 'latin1')));
      const buf = Buffer.concat([Buffer.from('junk'), enc, Buffer.from('*1\r\n$4\r\nPI')]);
      assert.equal(parseCommandArgv(buf, 4, buf.length, DEFAULT_RESP_LIMITS, argv), ARGV);
      assert.equal(argv.next, 4 + enc.length);
      const out = new OutBuf(8);
      const r = app.handleArgv(buf, argv, out);
      return { reply: out.take().toString('latin1'), close: r === 'close', buf };
    }

    test('a stored value is copied out of the read buffer', () => {
      const app = createKv();
      const { buf } = sendArgv(app, ['SET', 'k', 'hello']);
      buf.fill(0x78); // the engine reuses its read buffer
      assert.equal(sendArgv(app, ['GET', 'k']).reply, bulk('hello'));
      assert.equal(send(app, ['GET', 'k']).reply, bulk('hello'));
    });

    // Commands around the in-place paths: GET and SET in every case, with the wrong number of arguments,
    // on keys of other types, with options and expiry, names that only look like GET or SET, and others.
    const key = fc.constantFrom('k', 'K', '', 'l', 'h', '\x00\xff', 'k'.repeat(40));
    const value = fc.oneof(fc.constantFrom('', 'v', '12', 'x'.repeat(2000)), fc.string({ unit: 'binary-ascii', maxLength: 30 }));
    const name = (w: string): fc.Arbitrary<string> =>
      fc.array(fc.boolean(), { minLength: w.length, maxLength: w.length }).map((up) => [...w].map((c, i) => (up[i] ? c.toUpperCase() : c)).join(''));
    const cmdArb: fc.Arbitrary<string[]> = fc.oneof(
      { weight: 5, arbitrary: fc.tuple(name('get'), key).map(([n, k]) => [n, k]) },
      { weight: 5, arbitrary: fc.tuple(name('set'), key, value).map(([n, k, v]) => [n, k, v]) },
      { weight: 1, arbitrary: fc.tuple(name('get'), key, key).map(([n, k, j]) => [n, k, j]) },
      { weight: 1, arbitrary: fc.tuple(name('set'), key).map(([n, k]) => [n, k]) },
      { weight: 1, arbitrary: fc.constantFrom<string[]>(['GET'], ['SET'], ['GEX', 'k'], ['SEX', 'k', 'v'], ['G\x05T', 'k'], ['GETS', 'k'], ['GE', 'k']) },
      { weight: 2, arbitrary: fc.tuple(key, value, fc.constantFrom('EX', 'PX', 'NX', 'XX', 'GET', 'KEEPTTL'), fc.constantFrom('1', '100', 'x')).map(([k, v, o, a]) => (o === 'EX' || o === 'PX' ? ['SET', k, v, o, a] : ['SET', k, v, o])) },
      { weight: 2, arbitrary: fc.tuple(fc.constantFrom('LPUSH', 'SADD', 'DEL', 'INCR', 'EXPIRE', 'PERSIST', 'TTL', 'TYPE', 'MGET', 'QUIT', 'DBSIZE'), key).map(([c, k]) =>
        c === 'LPUSH' || c === 'SADD' ? [c, k, 'm'] : c === 'EXPIRE' ? [c, k, '1'] : c === 'DBSIZE' || c === 'QUIT' ? [c] : [c, k]) },
    );

    test('random command sequences get the same bytes from handle and handleArgv', () => {
      fc.assert(
        fc.property(fc.array(fc.tuple(cmdArb, fc.nat(1500)), { maxLength: 40 }), (steps) => {
          const c1 = new FakeClock();
          const c2 = new FakeClock();
          const a = createKv({ clock: c1 });
          const b = createKv({ clock: c2 });
          const argv = new RespArgv();
          for (const [cmd, ms] of steps) {
            const r1 = send(a, cmd);
            const r2 = sendArgv(b, cmd, argv);
            assert.deepEqual({ reply: r2.reply, close: r2.close }, r1, `reply to ${JSON.stringify(cmd)}`);
            c1.advance(ms);
            c2.advance(ms);
          }
          assert.equal(b.size, a.size);
          assert.equal(b.expiring, a.expiring);
        }),
        { numRuns: 300 },
      );
    });
  });

  describe('kv behind a Service, as an engine feeds it', () => {
    test('pipelined commands in one read: replies in order, the partial tail kept, stalls named by command', () => {
      // stallMs 0 counts every feed as a stall, so the route the Service names for it is visible.
      const svc = createService(createKv(), { stallMs: 0 });
      const cmds = [['SET', 'k', 'v1'], ['get', 'k'], ['SET', 'n', '41'], ['INCR', 'n'], ['GET', 'nokey'], ['LPUSH', 'l', 'a'], ['GET', 'l'], ['Set', 'k', 'v2'], ['GET', 'k']];
      const whole = Buffer.concat([Buffer.from('xxxx'), ...cmds.map((c) => encodeCommand(c)), Buffer.from('*2\r\n$3\r\nGET')]);
      const out = new OutBuf(16);
      const r = new FeedResult();
      svc.feed(whole, 4, whole.length, out, r);
      assert.equal(out.take().toString('latin1'), OK + bulk('v1') + OK + int(42) + NIL + int(1) + WRONGTYPE + OK + bulk('v2'));
      assert.equal(r.requests, cmds.length);
      assert.equal(r.next, whole.length - '*2\r\n$3\r\nGET'.length);
      assert.equal(r.close, false);
      assert.deepEqual([...svc.stalls.byRoute.keys()], ['GET']);
      // The rest of the held command arrives; QUIT answers and closes.
      const rest = Buffer.concat([Buffer.from('*2\r\n$3\r\nGET\r\n$1\r\nk\r\n'), encodeCommand(['QUIT']), encodeCommand(['GET', 'k'])]);
      r.reset();
      svc.feed(rest, 0, rest.length, out, r);
      assert.equal(out.take().toString('latin1'), bulk('v2') + OK);
      assert.equal(r.close, true);
      assert.equal(svc.stalls.byRoute.get('QUIT'), 1);
    });
  });
}
