/**
 * `kv`: a Redis-compatible in-memory key-value app (RESP2). Enough of Redis for redis-cli,
 * redis-benchmark and iolab's load generator: strings with expiry, plus small lists, sets and hashes.
 *
 * Compatibility: reply types and error wording follow Redis 7.0 (server.c processCommand,
 * t_string.c, expire.c, db.c, t_list.c, t_set.c, t_hash.c, config.c, networking.c), checked byte for
 * byte against redis-server 7.0.15. Commands are matched case-insensitively; arity errors name the
 * command the way Redis does (`'get'`, `'config|get'`).
 *
 * Data model: a Keyspace (kv-keyspace.ts), a hash table keyed by the key's bytes (binary-safe), which
 * stores each key with its string value in one record of a slab arena and copies both in (the app
 * keeps its own bytes: `RespApp.handle` does not promise that `args` outlive the call). Lists, sets
 * and hashes are a small deque, a Set and a Map of latin1 strings (members decoded latin1, so every
 * byte sequence maps 1:1 to a distinct string). Reading a key of another type as a string answers
 * WRONGTYPE, as Redis does.
 *
 * Expiry: each key's deadline (integer ms) sits in its keyspace row, and the keys that have one are
 * listed apart, like Redis's `db->expires`. A key is expired
 * lazily when touched (expireIfNeeded: expired once now > deadline) and by `sweep()`, a bounded
 * incremental pass the engine may call from a timer (the app starts no timers). Time comes from an
 * injectable clock: by default a monotonic clock anchored at the Unix epoch
 * (performance.timeOrigin + performance.now()), so EXPIREAT/EXAT timestamps work and a wall-clock step
 * cannot expire or revive keys; tests pass a fake clock and advance it.
 *
 * Hot path: GET and SET look the command up by a hash of its name bytes (no string made for it) and
 * the key up by its bytes (no string either); GET copies the value from its record straight into the
 * output, SET copies it into the record (in place when its size class is unchanged).
 *
 * Not modelled (the RespApp interface gives the app no connection): per-connection state. CLIENT
 * SETNAME validates and answers OK, CLIENT GETNAME answers nil, CLIENT ID and HELLO's id answer 0.
 * There is one database (SELECT 0 only) and no AUTH; HELLO 3 is refused with NOPROTO (RESP2 only).
 */
import type { OutBuf } from '../protocols/outbuf.js';
import {
  RESP_EMPTY_ARRAY,
  RESP_NULL_ARRAY,
  RESP_NULL_BULK,
  RESP_OK,
  RESP_ONE,
  RESP_PONG,
  RESP_ZERO,
  writeArrayHeader,
  writeBulk,
  writeBulkRange,
  writeError,
  writeInteger,
  writeSimple,
} from '../protocols/resp/encode.js';
import { argvArgs, string2ll, type RespArgv } from '../protocols/resp/server.js';
import { Keyspace, T_STRING, type KvKeyspace } from './kv-keyspace.js';
import { KeyspaceFull, ShmKeyspace, type ObjectCodec } from './kv-shm.js';
import type { RespApp } from './types.js';

// ---------------------------------------------------------------------------------------------
// Clock

/** Milliseconds on a monotonic timeline; `now()` may be fractional (it is floored). */
export interface KvClock {
  now(): number;
}

/** Monotonic, anchored at the Unix epoch when the process started (so it reads as Unix ms). */
export const monotonicClock: KvClock = {
  now: () => performance.timeOrigin + performance.now(),
};

/** A clock for tests: starts at `t` (Unix ms) and moves only when told. */
export class FakeClock implements KvClock {
  constructor(public t = 1_700_000_000_000) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

// ---------------------------------------------------------------------------------------------
// Public shape

export interface KvOptions {
  clock?: KvClock;
  /**
   * A region of memory shared with the other threads and processes of the engine (sys/shm.ts): the
   * keyspace lives there (kv-shm.ts) and every command takes its lock. Without it the keyspace is
   * this isolate's own.
   */
  shared?: ArrayBufferLike;
}

export interface KvApp extends RespApp {
  protocol: 'resp';
  name: 'kv';
  /**
   * handle() for a command left in place in the engine's read buffer (parseCommandArgv): GET and SET
   * read their key and value where they lie (SET copies the value into the keyspace); any other command
   * is copied out and given to handle(). Same replies, byte for byte.
   */
  handleArgv(buf: Buffer, argv: RespArgv, out: OutBuf): void | 'close';
  /**
   * Expire up to `budget` keys' deadlines worth of checks, continuing where the last call stopped
   * (Redis's activeExpireCycle does the same job adaptively). Returns how many keys it removed.
   * `now` is on the app's clock and defaults to it.
   */
  sweep(now?: number, budget?: number): number;
  /** Number of keys, including expired ones not reclaimed yet (as DBSIZE counts). */
  readonly size: number;
  /** Number of keys with a deadline. */
  readonly expiring: number;
}

// ---------------------------------------------------------------------------------------------
// Errors (Redis's shared.* objects and addReplyError strings)

const E_WRONGTYPE = 'WRONGTYPE Operation against a key holding the wrong kind of value';
const E_NOT_INT = 'ERR value is not an integer or out of range';
const E_SYNTAX = 'ERR syntax error';
const E_OVERFLOW = 'ERR increment or decrement would overflow';
const E_DECR_OVERFLOW = 'ERR decrement would overflow';
const E_DB_RANGE = 'ERR DB index is out of range';
const E_POSITIVE = 'ERR value is out of range, must be positive';
const E_INT_RANGE = 'ERR value is out of range, value must between -2147483648 and 2147483647';
const E_CLIENT_NAME = 'ERR Client names cannot contain spaces, newlines or special characters.';

function arityError(out: OutBuf, fullname: string): void {
  writeError(out, `ERR wrong number of arguments for '${fullname}' command`);
}

function expireTimeError(out: OutBuf, fullname: string): void {
  writeError(out, `ERR invalid expire time in '${fullname}' command`);
}

const LLONG_MAX = 9223372036854775807n;
const LLONG_MIN = -9223372036854775808n;
const LLONG_MAX_NUM = 9223372036854775807; // rounded to 2^63; fine for range checks on deadlines

// ---------------------------------------------------------------------------------------------
// Small byte helpers

function lower(c: number): number {
  return c >= 65 && c <= 90 ? c | 32 : c;
}

/** Case-insensitive equality of bytes and an ASCII word given in lower case (strcasecmp). */
function eqi(b: Uint8Array, word: string): boolean {
  if (b.length !== word.length) return false;
  for (let i = 0; i < b.length; i++) if (lower(b[i]) !== word.charCodeAt(i)) return false;
  return true;
}

function keyOf(b: Buffer): string {
  return b.toString('latin1');
}

/** The app's own copy of a value (a loop for short ones: cheaper than a native copy below ~48 bytes). */
function copyValue(b: Uint8Array): Buffer {
  const n = b.length;
  const c = Buffer.allocUnsafe(n);
  if (n <= 48) for (let i = 0; i < n; i++) c[i] = b[i];
  else c.set(b);
  return c;
}

/** The argument as C's `%.<max>s` prints it: up to `max` bytes, cut at a NUL, as a latin1 string. */
function cstr(b: Buffer, max: number): string {
  let n = Math.min(b.length, max);
  const z = b.indexOf(0);
  if (z >= 0 && z < n) n = z;
  return b.toString('latin1', 0, n);
}

/**
 * A signed 64-bit integer argument (getLongLongFromObject: Redis's strict string2ll). A number when it
 * is exact in a double, a bigint beyond 2^53, null when it is not an integer Redis accepts.
 */
function toLongLong(b: Uint8Array): number | bigint | null {
  const v = string2ll(b, 0, b.length);
  if (v !== v) return null;
  if (Number.isSafeInteger(v)) return v;
  return BigInt(Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1'));
}

/** Redis's stringmatchlen with nocase=1, for CONFIG GET patterns: `*`, `?`, `[...]`, `\x`. */
function globMatch(pat: string, s: string): boolean {
  pat = pat.toLowerCase();
  s = s.toLowerCase();
  const m = (pi: number, si: number): boolean => {
    while (pi < pat.length) {
      const c = pat[pi];
      if (c === '*') {
        while (pat[pi + 1] === '*') pi++;
        if (pi + 1 === pat.length) return true;
        for (let k = si; k <= s.length; k++) if (m(pi + 1, k)) return true;
        return false;
      }
      if (si >= s.length) return false;
      if (c === '?') {
        pi++;
        si++;
        continue;
      }
      if (c === '[') {
        let j = pi + 1;
        const not = pat[j] === '^';
        if (not) j++;
        let hit = false;
        while (j < pat.length && pat[j] !== ']') {
          if (pat[j] === '\\' && j + 1 < pat.length) {
            j++;
            if (pat[j] === s[si]) hit = true;
          } else if (pat[j + 1] === '-' && j + 2 < pat.length && pat[j + 2] !== ']') {
            let a = pat[j];
            let z = pat[j + 2];
            if (a > z) [a, z] = [z, a];
            if (s[si] >= a && s[si] <= z) hit = true;
            j += 2;
          } else if (pat[j] === s[si]) hit = true;
          j++;
        }
        if (hit === not) return false;
        pi = j + 1;
        si++;
        continue;
      }
      if (c === '\\' && pi + 1 < pat.length) pi++;
      if (pat[pi] !== s[si]) return false;
      pi++;
      si++;
    }
    return si === s.length;
  };
  return m(0, 0);
}

// ---------------------------------------------------------------------------------------------
// Value types other than strings

/** A list as a growable ring buffer: O(1) push and pop at both ends, O(1) index. */
class List {
  items: (Buffer | undefined)[] = new Array(8);
  head = 0;
  length = 0;

  private grow(): void {
    const old = this.items;
    const next = new Array<Buffer | undefined>(old.length * 2);
    for (let i = 0; i < this.length; i++) next[i] = old[(this.head + i) & (old.length - 1)];
    this.items = next;
    this.head = 0;
  }
  pushFront(b: Buffer): void {
    if (this.length === this.items.length) this.grow();
    this.head = (this.head - 1) & (this.items.length - 1);
    this.items[this.head] = b;
    this.length++;
  }
  pushBack(b: Buffer): void {
    if (this.length === this.items.length) this.grow();
    this.items[(this.head + this.length) & (this.items.length - 1)] = b;
    this.length++;
  }
  popFront(): Buffer {
    const b = this.items[this.head] as Buffer;
    this.items[this.head] = undefined;
    this.head = (this.head + 1) & (this.items.length - 1);
    this.length--;
    return b;
  }
  popBack(): Buffer {
    const i = (this.head + this.length - 1) & (this.items.length - 1);
    const b = this.items[i] as Buffer;
    this.items[i] = undefined;
    this.length--;
    return b;
  }
  at(i: number): Buffer {
    return this.items[(this.head + i) & (this.items.length - 1)] as Buffer;
  }
}

/** Values of the keyspace's objects; string values live in the keyspace's records. */
type Obj = List | Set<string> | Map<string, Buffer>;

/**
 * Objects as bytes, for a keyspace in shared memory: a type byte, a count, then each element (a list
 * item, a set member, a hash field and its value) as a 4-byte length and its bytes. Decoded elements
 * are copies: the region they came from is rewritten by the next command.
 */
const OBJ_LIST = 1;
const OBJ_SET = 2;
const OBJ_HASH = 3;
const objectCodec: ObjectCodec<Obj> = {
  encode(obj: Obj): Buffer {
    const parts: Buffer[] = [];
    let type: number;
    let n: number;
    if (obj instanceof List) {
      type = OBJ_LIST;
      n = obj.length;
      for (let i = 0; i < n; i++) parts.push(obj.at(i));
    } else if (obj instanceof Set) {
      type = OBJ_SET;
      n = obj.size;
      for (const m of obj) parts.push(Buffer.from(m, 'latin1'));
    } else {
      type = OBJ_HASH;
      n = obj.size;
      for (const [f, v] of obj) parts.push(Buffer.from(f, 'latin1'), v);
    }
    let size = 5;
    for (const p of parts) size += 4 + p.length;
    const b = Buffer.allocUnsafe(size);
    b[0] = type;
    b.writeInt32LE(n, 1);
    let at = 5;
    for (const p of parts) {
      b.writeInt32LE(p.length, at);
      p.copy(b, at + 4);
      at += 4 + p.length;
    }
    return b;
  },
  decode(b: Buffer): Obj {
    let at = 5;
    const next = (): Buffer => {
      const len = b.readInt32LE(at);
      const v = Buffer.from(b.subarray(at + 4, at + 4 + len));
      at += 4 + len;
      return v;
    };
    const n = b.readInt32LE(1);
    if (b[0] === OBJ_LIST) {
      const l = new List();
      for (let i = 0; i < n; i++) l.pushBack(next());
      return l;
    }
    if (b[0] === OBJ_SET) {
      const set = new Set<string>();
      for (let i = 0; i < n; i++) set.add(next().toString('latin1'));
      return set;
    }
    const h = new Map<string, Buffer>();
    for (let i = 0; i < n; i++) h.set(next().toString('latin1'), next());
    return h;
  },
};
/** A key's value as the non-hot commands see it: a string value is a view of its record (see lookup). */
type Value = Buffer | Obj;

function typeName(v: Value): string {
  if (v instanceof Uint8Array) return 'string';
  if (v instanceof List) return 'list';
  if (v instanceof Set) return 'set';
  return 'hash';
}

// ---------------------------------------------------------------------------------------------
// Command table

type Handler = (args: Buffer[], out: OutBuf) => void | 'close';

interface Command {
  /** Lower-case name, as Redis prints it in arity errors (`fullname`: `config|get` for subcommands). */
  fullname: string;
  /** Redis arity: n > 0 exactly n arguments (name included), -n at least n. */
  arity: number;
  fn: Handler;
  /** Subcommands of a container command (COMMAND, CONFIG, CLIENT), by lower-case name. */
  subs?: Map<string, Command>;
  /** Next entry with the same name hash. */
  next?: Command;
}

function nameHash(b: Uint8Array): number {
  let h = b.length;
  for (let i = 0; i < b.length; i++) h = (Math.imul(h, 31) + lower(b[i])) | 0;
  return h;
}

function hashOfName(name: string): number {
  return nameHash(Buffer.from(name, 'latin1'));
}

// ---------------------------------------------------------------------------------------------

export function createKv(opts: KvOptions = {}): KvApp {
  const clock = opts.clock ?? monotonicClock;
  const shm = opts.shared ? new ShmKeyspace<Obj>(opts.shared, objectCodec) : null;
  const ks: KvKeyspace<Obj> = shm ?? new Keyspace<Obj>();
  let sweepIter: IterableIterator<number> | null = null;

  const now = (): number => Math.floor(clock.now());

  /** lookupKey with expireIfNeeded: the key's id, or -1; an expired key is deleted and reads as missing. */
  function lookupId(key: Buffer): number {
    return lookupAt(key, 0, key.length);
  }

  /** lookupId for a key at `buf[s..e)`. */
  function lookupAt(buf: Buffer, s: number, e: number): number {
    const id = ks.find(buf, s, e);
    // Deadlines are only read when some key has one (a GET on a keyspace without TTLs touches no more).
    if (id >= 0 && ks.expiringCount !== 0) {
      const when = ks.deadlineOf(id);
      if (when !== 0 && now() > when) {
        ks.remove(id);
        return -1;
      }
    }
    return id;
  }

  /**
   * The key's value for the commands off the hot path: undefined when missing, the list, set or hash,
   * or for a string a view of its bytes in the keyspace. The view is only good until the keyspace next
   * changes: use it at once (reply, parse), never keep it.
   */
  function lookup(key: Buffer): Value | undefined {
    const id = lookupId(key);
    if (id < 0) return undefined;
    return ks.type(id) === T_STRING ? ks.value(id) : ks.object(id);
  }

  function del(key: Buffer): void {
    const id = ks.find(key, 0, key.length);
    if (id >= 0) ks.remove(id);
  }

  /** setKey: the value's bytes are copied in; the old deadline is dropped unless `keepDeadline`. */
  function setString(key: Buffer, value: Uint8Array, keepDeadline = false): number {
    return ks.setString(key, 0, key.length, value, 0, value.length, keepDeadline);
  }

  /**
   * Right after lookupId() found a key holding a string: the bulk reply of its value, copied straight
   * from the keyspace's record into the output (no view, no copy in between).
   */
  function replyFound(out: OutBuf): void {
    const at = ks.foundValue;
    writeBulkRange(out, ks.foundBuf, at, at + ks.foundLen);
  }

  function addObject(key: Buffer, obj: Obj): void {
    ks.addObject(key, 0, key.length, obj);
  }

  // ---- connection / server ----------------------------------------------------------------

  function ping(args: Buffer[], out: OutBuf): void {
    // PING's arity is -1, but pingCommand itself refuses more than one argument.
    if (args.length > 2) return arityError(out, 'ping');
    if (args.length === 1) out.bytes(RESP_PONG);
    else writeBulk(out, args[1]);
  }

  function echo(args: Buffer[], out: OutBuf): void {
    writeBulk(out, args[1]);
  }

  function quit(_args: Buffer[], out: OutBuf): 'close' {
    out.bytes(RESP_OK);
    return 'close';
  }

  function select(args: Buffer[], out: OutBuf): void {
    const id = string2ll(args[1], 0, args[1].length);
    if (id !== id) return writeError(out, E_NOT_INT);
    // getIntFromObjectOrReply: a long outside int's range has its own message.
    if (id < -2147483648 || id > 2147483647) return writeError(out, E_INT_RANGE);
    if (id !== 0) return writeError(out, E_DB_RANGE);
    out.bytes(RESP_OK);
  }

  function dbsize(_args: Buffer[], out: OutBuf): void {
    writeInteger(out, ks.count);
  }

  function flush(args: Buffer[], out: OutBuf): void {
    // getFlushCommandFlags: only a lone SYNC or ASYNC is accepted.
    if (args.length === 2 && (eqi(args[1], 'sync') || eqi(args[1], 'async'))) {
      /* both flush now: there is no background thread to hand the work to */
    } else if (args.length !== 1) return writeError(out, E_SYNTAX);
    ks.clear();
    sweepIter = null;
    out.bytes(RESP_OK);
  }

  function validClientName(out: OutBuf, name: Buffer): boolean {
    // clientSetName: only '!'..'~' so that CLIENT LIST stays splittable on spaces.
    for (let i = 0; i < name.length; i++) {
      if (name[i] < 33 || name[i] > 126) {
        writeError(out, E_CLIENT_NAME);
        return false;
      }
    }
    return true;
  }

  function hello(args: Buffer[], out: OutBuf): void {
    let j = 1;
    if (args.length >= 2) {
      const ver = string2ll(args[1], 0, args[1].length);
      j = 2;
      if (ver !== ver) return writeError(out, 'ERR Protocol version is not an integer or out of range');
      // Redis accepts 2 and 3; this server speaks RESP2 only, so 3 gets the same refusal Redis gives
      // any version it does not support (clients then stay on RESP2).
      if (ver !== 2) return writeError(out, 'NOPROTO unsupported protocol version');
    }
    let name: Buffer | null = null;
    for (; j < args.length; j++) {
      const more = args.length - 1 - j;
      if (eqi(args[j], 'auth') && more >= 2) j += 2; // no users here: any credentials are accepted
      else if (eqi(args[j], 'setname') && more >= 1) name = args[++j];
      else return writeError(out, `ERR Syntax error in HELLO option '${cstr(args[j], args[j].length)}'`);
    }
    if (name !== null && !validClientName(out, name)) return;
    writeArrayHeader(out, 14);
    writeBulk(out, 'server');
    writeBulk(out, 'redis');
    writeBulk(out, 'version');
    writeBulk(out, REDIS_VERSION);
    writeBulk(out, 'proto');
    writeInteger(out, 2);
    writeBulk(out, 'id');
    writeInteger(out, 0);
    writeBulk(out, 'mode');
    writeBulk(out, 'standalone');
    writeBulk(out, 'role');
    writeBulk(out, 'master');
    writeBulk(out, 'modules');
    out.bytes(RESP_EMPTY_ARRAY);
  }

  function info(args: Buffer[], out: OutBuf): void {
    let server = args.length === 1;
    let keyspace = args.length === 1;
    for (let i = 1; i < args.length; i++) {
      const a = args[i];
      if (eqi(a, 'all') || eqi(a, 'default') || eqi(a, 'everything')) server = keyspace = true;
      else if (eqi(a, 'server')) server = true;
      else if (eqi(a, 'keyspace')) keyspace = true;
    }
    let s = '';
    if (server) {
      s +=
        '# Server\r\n' +
        `redis_version:${REDIS_VERSION}\r\n` +
        'redis_mode:standalone\r\n' +
        `os:${process.platform} ${process.arch}\r\n` +
        'arch_bits:64\r\n' +
        `process_id:${process.pid}\r\n` +
        'iolab_app:kv\r\n';
    }
    if (keyspace) {
      if (s !== '') s += '\r\n';
      s += '# Keyspace\r\n';
      if (ks.count > 0) s += `db0:keys=${ks.count},expires=${ks.expiringCount},avg_ttl=0\r\n`;
    }
    writeBulk(out, s);
  }

  // ---- strings ------------------------------------------------------------------------------

  function get(args: Buffer[], out: OutBuf): void {
    // foundLen is -1 for a key holding a list, set or hash.
    if (lookupId(args[1]) < 0) out.bytes(RESP_NULL_BULK);
    else if (ks.foundLen >= 0) replyFound(out);
    else writeError(out, E_WRONGTYPE);
  }

  const EX = 1;
  const PX = 2;
  const EXAT = 3;
  const PXAT = 4;

  function set(args: Buffer[], out: OutBuf): void {
    const n = args.length;
    const key = args[1];
    if (n === 3) {
      // The common case: no options. Overwriting needs no lookup (setKey drops any old deadline).
      setString(key, args[2]);
      out.bytes(RESP_OK);
      return;
    }
    // parseExtendedStringArgumentsOrReply (t_string.c): which option combinations are allowed.
    let nx = false;
    let xx = false;
    let withGet = false;
    let keepttl = false;
    let unit = 0;
    let expireArg: Buffer | null = null;
    for (let j = 3; j < n; j++) {
      const opt = args[j];
      const hasNext = j < n - 1;
      if (eqi(opt, 'nx') && !xx) nx = true;
      else if (eqi(opt, 'xx') && !nx) xx = true;
      else if (eqi(opt, 'get')) withGet = true;
      else if (eqi(opt, 'keepttl') && unit === 0) keepttl = true;
      else if (eqi(opt, 'ex') && !keepttl && (unit === 0 || unit === EX) && hasNext) {
        unit = EX;
        expireArg = args[++j];
      } else if (eqi(opt, 'px') && !keepttl && (unit === 0 || unit === PX) && hasNext) {
        unit = PX;
        expireArg = args[++j];
      } else if (eqi(opt, 'exat') && !keepttl && (unit === 0 || unit === EXAT) && hasNext) {
        unit = EXAT;
        expireArg = args[++j];
      } else if (eqi(opt, 'pxat') && !keepttl && (unit === 0 || unit === PXAT) && hasNext) {
        unit = PXAT;
        expireArg = args[++j];
      } else return writeError(out, E_SYNTAX);
    }
    // getExpireMillisecondsOrReply: an integer > 0 that does not overflow once made absolute.
    let when = 0;
    if (expireArg !== null) {
      let ms = string2ll(expireArg, 0, expireArg.length);
      if (ms !== ms) return writeError(out, E_NOT_INT);
      const seconds = unit === EX || unit === EXAT;
      if (ms <= 0 || (seconds && ms > LLONG_MAX_NUM / 1000)) return expireTimeError(out, 'set');
      if (seconds) ms *= 1000;
      if (unit === EX || unit === PX) ms += now();
      if (ms <= 0 || ms > LLONG_MAX_NUM) return expireTimeError(out, 'set');
      when = ms;
    }
    // SET ... GET replies with the old value first (and fails on a non-string without setting).
    const old = lookup(key);
    if (withGet) {
      if (old === undefined) out.bytes(RESP_NULL_BULK);
      else if (old instanceof Uint8Array) writeBulk(out, old);
      else return writeError(out, E_WRONGTYPE);
    }
    const found = old !== undefined;
    if ((nx && found) || (xx && !found)) {
      if (!withGet) out.bytes(RESP_NULL_BULK);
      return;
    }
    const id = setString(key, args[2], keepttl);
    if (expireArg !== null) ks.setDeadline(id, when);
    if (!withGet) out.bytes(RESP_OK);
  }

  function mget(args: Buffer[], out: OutBuf): void {
    writeArrayHeader(out, args.length - 1);
    for (let i = 1; i < args.length; i++) {
      // MGET answers nil for a key of another type instead of failing.
      if (lookupId(args[i]) >= 0 && ks.foundLen >= 0) replyFound(out);
      else out.bytes(RESP_NULL_BULK);
    }
  }

  function mset(args: Buffer[], out: OutBuf): void {
    if (args.length % 2 === 0) return arityError(out, 'mset');
    for (let i = 1; i < args.length; i += 2) setString(args[i], args[i + 1]);
    out.bytes(RESP_OK);
  }

  /** incrDecrCommand (t_string.c): 64-bit signed arithmetic with Redis's overflow check. */
  function incrDecr(key: Buffer, incr: number | bigint, out: OutBuf): void {
    const v = lookup(key);
    let value: number | bigint = 0;
    if (v !== undefined) {
      if (!(v instanceof Uint8Array)) return writeError(out, E_WRONGTYPE);
      const parsed = toLongLong(v);
      if (parsed === null) return writeError(out, E_NOT_INT);
      value = parsed;
    }
    let result: number | bigint;
    if (typeof value === 'number' && typeof incr === 'number' && Number.isSafeInteger(value + incr)) {
      result = value + incr;
    } else {
      const r = BigInt(value) + BigInt(incr);
      if (r > LLONG_MAX || r < LLONG_MIN) return writeError(out, E_OVERFLOW);
      result = r;
    }
    // dbOverwrite keeps the key's deadline.
    setString(key, Buffer.from(result.toString(), 'latin1'), true);
    writeInteger(out, result);
  }

  function incr(args: Buffer[], out: OutBuf): void {
    incrDecr(args[1], 1, out);
  }

  function decr(args: Buffer[], out: OutBuf): void {
    incrDecr(args[1], -1, out);
  }

  function incrby(args: Buffer[], out: OutBuf): void {
    const by = toLongLong(args[2]);
    if (by === null) return writeError(out, E_NOT_INT);
    incrDecr(args[1], by, out);
  }

  function decrby(args: Buffer[], out: OutBuf): void {
    const by = toLongLong(args[2]);
    if (by === null) return writeError(out, E_NOT_INT);
    if (by === LLONG_MIN) return writeError(out, E_DECR_OVERFLOW); // negating LLONG_MIN overflows
    incrDecr(args[1], -by, out);
  }

  // ---- keys ---------------------------------------------------------------------------------

  function delCmd(args: Buffer[], out: OutBuf): void {
    let n = 0;
    for (let i = 1; i < args.length; i++) {
      const id = lookupId(args[i]);
      if (id >= 0) {
        ks.remove(id);
        n++;
      }
    }
    writeInteger(out, n);
  }

  function exists(args: Buffer[], out: OutBuf): void {
    let n = 0;
    for (let i = 1; i < args.length; i++) if (lookupId(args[i]) >= 0) n++;
    writeInteger(out, n);
  }

  function type(args: Buffer[], out: OutBuf): void {
    const v = lookup(args[1]);
    writeSimple(out, v === undefined ? 'none' : typeName(v));
  }

  const EXPIRE_NX = 1;
  const EXPIRE_XX = 2;
  const EXPIRE_GT = 4;
  const EXPIRE_LT = 8;

  /** expireGenericCommand (expire.c). `relative`: EXPIRE/PEXPIRE add now; EXPIREAT/PEXPIREAT do not. */
  function expireGeneric(args: Buffer[], out: OutBuf, fullname: string, relative: boolean, seconds: boolean): void {
    // parseExtendedExpireArgumentsOrReply
    let flags = 0;
    for (let j = 3; j < args.length; j++) {
      const opt = args[j];
      if (eqi(opt, 'nx')) flags |= EXPIRE_NX;
      else if (eqi(opt, 'xx')) flags |= EXPIRE_XX;
      else if (eqi(opt, 'gt')) flags |= EXPIRE_GT;
      else if (eqi(opt, 'lt')) flags |= EXPIRE_LT;
      else return writeError(out, `ERR Unsupported option ${cstr(opt, opt.length)}`);
    }
    if (flags & EXPIRE_NX && flags & (EXPIRE_XX | EXPIRE_GT | EXPIRE_LT)) {
      return writeError(out, 'ERR NX and XX, GT or LT options at the same time are not compatible');
    }
    if (flags & EXPIRE_GT && flags & EXPIRE_LT) {
      return writeError(out, 'ERR GT and LT options at the same time are not compatible');
    }
    let when = string2ll(args[2], 0, args[2].length);
    if (when !== when) return writeError(out, E_NOT_INT);
    // EXPIRE allows negative numbers, but overflow by unit conversion or basetime addition is refused.
    if (seconds) {
      if (when > LLONG_MAX_NUM / 1000 || when < -LLONG_MAX_NUM / 1000) return expireTimeError(out, fullname);
      when *= 1000;
    }
    const t = now();
    const base = relative ? t : 0;
    if (when > LLONG_MAX_NUM - base) return expireTimeError(out, fullname);
    when += base;

    const id = lookupId(args[1]);
    if (id < 0) return void out.bytes(RESP_ZERO);
    if (flags !== 0) {
      const had = ks.deadlineOf(id);
      const current = had === 0 ? -1 : had;
      if (flags & EXPIRE_NX && current !== -1) return void out.bytes(RESP_ZERO);
      if (flags & EXPIRE_XX && current === -1) return void out.bytes(RESP_ZERO);
      // GT treats "no deadline" as infinite, so it always fails; LT always passes then.
      if (flags & EXPIRE_GT && (when <= current || current === -1)) return void out.bytes(RESP_ZERO);
      if (flags & EXPIRE_LT && current !== -1 && when >= current) return void out.bytes(RESP_ZERO);
    }
    // checkAlreadyExpired: a deadline not in the future deletes the key now.
    if (when <= t) ks.remove(id);
    else ks.setDeadline(id, when);
    out.bytes(RESP_ONE);
  }

  function ttlGeneric(args: Buffer[], out: OutBuf, ms: boolean): void {
    const id = lookupId(args[1]);
    if (id < 0) return writeInteger(out, -2);
    const when = ks.deadlineOf(id);
    if (when === 0) return writeInteger(out, -1);
    const ttl = Math.max(0, when - now());
    // TTL rounds to the nearest second: (ttl+500)/1000 in C integer division.
    writeInteger(out, ms ? ttl : Math.floor((ttl + 500) / 1000));
  }

  function persist(args: Buffer[], out: OutBuf): void {
    const id = lookupId(args[1]);
    if (id < 0) return void out.bytes(RESP_ZERO);
    out.bytes(ks.clearDeadline(id) ? RESP_ONE : RESP_ZERO);
  }

  // ---- lists --------------------------------------------------------------------------------

  function push(args: Buffer[], out: OutBuf, front: boolean): void {
    const key = args[1];
    const v = lookup(key);
    let list: List;
    if (v === undefined) {
      list = new List();
      addObject(key, list);
    } else if (v instanceof List) list = v;
    else return writeError(out, E_WRONGTYPE);
    for (let i = 2; i < args.length; i++) {
      if (front) list.pushFront(copyValue(args[i]));
      else list.pushBack(copyValue(args[i]));
    }
    writeInteger(out, list.length);
  }

  /**
   * getPositiveLongFromObjectOrReply: -1 after writing the error. Redis passes its range message as
   * the reply for a non-integer too, so both failures read "must be positive".
   */
  function positiveCount(out: OutBuf, b: Buffer): number {
    const c = string2ll(b, 0, b.length);
    if (!(c >= 0)) {
      writeError(out, E_POSITIVE);
      return -1;
    }
    return c;
  }

  /** popGenericCommand (t_list.c). */
  function pop(args: Buffer[], out: OutBuf, front: boolean): void {
    const hasCount = args.length === 3;
    if (args.length > 3) return arityError(out, front ? 'lpop' : 'rpop');
    let count = 0;
    if (hasCount) {
      count = positiveCount(out, args[2]);
      if (count < 0) return;
    }
    const key = args[1];
    const v = lookup(key);
    if (v === undefined) return void out.bytes(hasCount ? RESP_NULL_ARRAY : RESP_NULL_BULK);
    if (!(v instanceof List)) return writeError(out, E_WRONGTYPE);
    if (hasCount && count === 0) return void out.bytes(RESP_EMPTY_ARRAY);
    if (!hasCount) writeBulk(out, front ? v.popFront() : v.popBack());
    else {
      const n = Math.min(count, v.length);
      writeArrayHeader(out, n);
      for (let i = 0; i < n; i++) writeBulk(out, front ? v.popFront() : v.popBack());
    }
    if (v.length === 0) del(key);
  }

  function lrange(args: Buffer[], out: OutBuf): void {
    let start = string2ll(args[2], 0, args[2].length);
    let end = string2ll(args[3], 0, args[3].length);
    if (start !== start || end !== end) return writeError(out, E_NOT_INT);
    const v = lookup(args[1]);
    if (v === undefined) return void out.bytes(RESP_EMPTY_ARRAY);
    if (!(v instanceof List)) return writeError(out, E_WRONGTYPE);
    // listRangeCommand / addListRangeReply index rules.
    const len = v.length;
    if (start < 0) start = len + start;
    if (end < 0) end = len + end;
    if (start < 0) start = 0;
    if (start >= len || start > end) return void out.bytes(RESP_EMPTY_ARRAY);
    if (end >= len) end = len - 1;
    writeArrayHeader(out, end - start + 1);
    for (let i = start; i <= end; i++) writeBulk(out, v.at(i));
  }

  function llen(args: Buffer[], out: OutBuf): void {
    const v = lookup(args[1]);
    if (v === undefined) return void out.bytes(RESP_ZERO);
    if (!(v instanceof List)) return writeError(out, E_WRONGTYPE);
    writeInteger(out, v.length);
  }

  // ---- sets ---------------------------------------------------------------------------------

  function sadd(args: Buffer[], out: OutBuf): void {
    const key = args[1];
    const v = lookup(key);
    let set: Set<string>;
    if (v === undefined) {
      set = new Set();
      addObject(key, set);
    } else if (v instanceof Set) set = v;
    else return writeError(out, E_WRONGTYPE);
    let added = 0;
    for (let i = 2; i < args.length; i++) {
      const m = keyOf(args[i]);
      if (!set.has(m)) {
        set.add(m);
        added++;
      }
    }
    writeInteger(out, added);
  }

  function srem(args: Buffer[], out: OutBuf): void {
    const key = args[1];
    const v = lookup(key);
    if (v === undefined) return void out.bytes(RESP_ZERO);
    if (!(v instanceof Set)) return writeError(out, E_WRONGTYPE);
    let removed = 0;
    for (let i = 2; i < args.length; i++) if (v.delete(keyOf(args[i]))) removed++;
    if (v.size === 0) del(key);
    writeInteger(out, removed);
  }

  function scard(args: Buffer[], out: OutBuf): void {
    const v = lookup(args[1]);
    if (v === undefined) return void out.bytes(RESP_ZERO);
    if (!(v instanceof Set)) return writeError(out, E_WRONGTYPE);
    writeInteger(out, v.size);
  }

  function sismember(args: Buffer[], out: OutBuf): void {
    const v = lookup(args[1]);
    if (v === undefined) return void out.bytes(RESP_ZERO);
    if (!(v instanceof Set)) return writeError(out, E_WRONGTYPE);
    out.bytes(v.has(keyOf(args[2])) ? RESP_ONE : RESP_ZERO);
  }

  function smembers(args: Buffer[], out: OutBuf): void {
    const v = lookup(args[1]);
    if (v === undefined) return void out.bytes(RESP_EMPTY_ARRAY);
    if (!(v instanceof Set)) return writeError(out, E_WRONGTYPE);
    writeArrayHeader(out, v.size);
    for (const m of v) writeBulk(out, Buffer.from(m, 'latin1'));
  }

  /** SPOP pops an arbitrary member (the oldest; Redis picks a random one). */
  function spop(args: Buffer[], out: OutBuf): void {
    if (args.length > 3) return writeError(out, E_SYNTAX);
    const key = args[1];
    if (args.length === 3) {
      const count = positiveCount(out, args[2]);
      if (count < 0) return;
      const v = lookup(key);
      if (v === undefined) return void out.bytes(RESP_EMPTY_ARRAY);
      if (!(v instanceof Set)) return writeError(out, E_WRONGTYPE);
      const n = Math.min(count, v.size);
      writeArrayHeader(out, n);
      const it = v.values();
      for (let i = 0; i < n; i++) {
        const m = it.next().value as string;
        v.delete(m);
        writeBulk(out, Buffer.from(m, 'latin1'));
      }
      if (v.size === 0) del(key);
      return;
    }
    const v = lookup(key);
    if (v === undefined) return void out.bytes(RESP_NULL_BULK);
    if (!(v instanceof Set)) return writeError(out, E_WRONGTYPE);
    const m = v.values().next().value as string;
    v.delete(m);
    if (v.size === 0) del(key);
    writeBulk(out, Buffer.from(m, 'latin1'));
  }

  // ---- hashes -------------------------------------------------------------------------------

  function hset(args: Buffer[], out: OutBuf): void {
    if (args.length % 2 === 1) return arityError(out, 'hset');
    const key = args[1];
    const v = lookup(key);
    let h: Map<string, Buffer>;
    if (v === undefined) {
      h = new Map();
      addObject(key, h);
    } else if (v instanceof Map) h = v;
    else return writeError(out, E_WRONGTYPE);
    let created = 0;
    for (let i = 2; i < args.length; i += 2) {
      const f = keyOf(args[i]);
      if (!h.has(f)) created++;
      h.set(f, copyValue(args[i + 1]));
    }
    writeInteger(out, created);
  }

  function hget(args: Buffer[], out: OutBuf): void {
    const v = lookup(args[1]);
    if (v === undefined) return void out.bytes(RESP_NULL_BULK);
    if (!(v instanceof Map)) return writeError(out, E_WRONGTYPE);
    writeBulk(out, v.get(keyOf(args[2])) ?? null);
  }

  function hdel(args: Buffer[], out: OutBuf): void {
    const key = args[1];
    const v = lookup(key);
    if (v === undefined) return void out.bytes(RESP_ZERO);
    if (!(v instanceof Map)) return writeError(out, E_WRONGTYPE);
    let removed = 0;
    for (let i = 2; i < args.length; i++) if (v.delete(keyOf(args[i]))) removed++;
    if (v.size === 0) del(key);
    writeInteger(out, removed);
  }

  function hlen(args: Buffer[], out: OutBuf): void {
    const v = lookup(args[1]);
    if (v === undefined) return void out.bytes(RESP_ZERO);
    if (!(v instanceof Map)) return writeError(out, E_WRONGTYPE);
    writeInteger(out, v.size);
  }

  function hgetall(args: Buffer[], out: OutBuf): void {
    const v = lookup(args[1]);
    if (v === undefined) return void out.bytes(RESP_EMPTY_ARRAY);
    if (!(v instanceof Map)) return writeError(out, E_WRONGTYPE);
    writeArrayHeader(out, v.size * 2);
    for (const [f, val] of v) {
      writeBulk(out, Buffer.from(f, 'latin1'));
      writeBulk(out, val);
    }
  }

  // ---- introspection: COMMAND, CONFIG, CLIENT -----------------------------------------------

  function commandContainer(_args: Buffer[], out: OutBuf): void {
    // COMMAND alone lists every command's metadata; clients only need a valid reply.
    out.bytes(RESP_EMPTY_ARRAY);
  }

  function commandCount(_args: Buffer[], out: OutBuf): void {
    writeInteger(out, commands.length);
  }

  function commandDocs(_args: Buffer[], out: OutBuf): void {
    out.bytes(RESP_EMPTY_ARRAY);
  }

  function commandInfo(args: Buffer[], out: OutBuf): void {
    // One nil per named command (Redis answers nil for names it does not know).
    if (args.length === 2) return void out.bytes(RESP_EMPTY_ARRAY);
    writeArrayHeader(out, args.length - 2);
    for (let i = 2; i < args.length; i++) out.bytes(RESP_NULL_ARRAY);
  }

  function commandList(_args: Buffer[], out: OutBuf): void {
    writeArrayHeader(out, commands.length);
    for (const c of commands) writeBulk(out, c.fullname);
  }

  /** What CONFIG GET can see: enough for redis-benchmark, which asks for `save` and `appendonly`. */
  const CONFIG: ReadonlyArray<readonly [string, string]> = [
    ['save', ''],
    ['appendonly', 'no'],
  ];

  function configGet(args: Buffer[], out: OutBuf): void {
    // configGetCommand (7.0): collect the matches of every pattern into a set, then answer them as
    // a flat name/value list. Redis answers in its dict's order; we answer in table order, which is
    // the same for these two names.
    const shownAs = new Array<string | undefined>(CONFIG.length);
    let count = 0;
    for (let i = 2; i < args.length; i++) {
      const pat = cstr(args[i], args[i].length);
      const glob = /* strpbrk(name, "[*?") */ pat.includes('*') || pat.includes('?') || pat.includes('[');
      for (let c = 0; c < CONFIG.length; c++) {
        if (shownAs[c] !== undefined) continue;
        const name = CONFIG[c][0];
        // A plain name is looked up case-insensitively and echoed back as given (as 7.0 does).
        if (glob ? globMatch(pat, name) : pat.toLowerCase() === name) {
          shownAs[c] = glob ? name : pat;
          count++;
        }
      }
    }
    writeArrayHeader(out, count * 2);
    for (let c = 0; c < CONFIG.length; c++) {
      const name = shownAs[c];
      if (name === undefined) continue;
      writeBulk(out, Buffer.from(name, 'latin1'));
      writeBulk(out, CONFIG[c][1]);
    }
  }

  function configResetstat(_args: Buffer[], out: OutBuf): void {
    out.bytes(RESP_OK);
  }

  function clientSetname(args: Buffer[], out: OutBuf): void {
    if (validClientName(out, args[2])) out.bytes(RESP_OK);
  }

  function clientGetname(_args: Buffer[], out: OutBuf): void {
    out.bytes(RESP_NULL_BULK);
  }

  function clientId(_args: Buffer[], out: OutBuf): void {
    out.bytes(RESP_ZERO);
  }

  function clientSetinfo(args: Buffer[], out: OutBuf): void {
    // Redis 7.2: CLIENT SETINFO LIB-NAME|LIB-VER <value>.
    if (eqi(args[2], 'lib-name') || eqi(args[2], 'lib-ver')) return void out.bytes(RESP_OK);
    writeError(out, `ERR Unrecognized option '${cstr(args[2], args[2].length)}'`);
  }

  // ---- the table ----------------------------------------------------------------------------

  const commands: Command[] = [];
  const table = new Map<number, Command>();

  function def(fullname: string, arity: number, fn: Handler, subs?: [string, number, Handler][]): void {
    const cmd: Command = { fullname, arity, fn };
    if (subs) {
      cmd.subs = new Map();
      for (const [name, a, f] of subs) cmd.subs.set(name, { fullname: `${fullname}|${name}`, arity: a, fn: f });
    }
    commands.push(cmd);
    const h = hashOfName(fullname);
    cmd.next = table.get(h);
    table.set(h, cmd);
  }

  const noop: Handler = () => undefined;

  def('get', 2, get);
  def('set', -3, set);
  def('ping', -1, ping);
  def('echo', 2, echo);
  def('del', -2, delCmd);
  def('unlink', -2, delCmd);
  def('exists', -2, exists);
  def('type', 2, type);
  def('incr', 2, incr);
  def('decr', 2, decr);
  def('incrby', 3, incrby);
  def('decrby', 3, decrby);
  def('mget', -2, mget);
  def('mset', -3, mset);
  def('expire', -3, (a, o) => expireGeneric(a, o, 'expire', true, true));
  def('pexpire', -3, (a, o) => expireGeneric(a, o, 'pexpire', true, false));
  def('expireat', -3, (a, o) => expireGeneric(a, o, 'expireat', false, true));
  def('pexpireat', -3, (a, o) => expireGeneric(a, o, 'pexpireat', false, false));
  def('ttl', 2, (a, o) => ttlGeneric(a, o, false));
  def('pttl', 2, (a, o) => ttlGeneric(a, o, true));
  def('persist', 2, persist);
  def('dbsize', 1, dbsize);
  def('flushdb', -1, flush);
  def('flushall', -1, flush);
  def('select', 2, select);
  def('quit', -1, quit);
  def('hello', -1, hello);
  def('info', -1, info);
  def('lpush', -3, (a, o) => push(a, o, true));
  def('rpush', -3, (a, o) => push(a, o, false));
  def('lpop', -2, (a, o) => pop(a, o, true));
  def('rpop', -2, (a, o) => pop(a, o, false));
  def('lrange', 4, lrange);
  def('llen', 2, llen);
  def('sadd', -3, sadd);
  def('srem', -3, srem);
  def('scard', 2, scard);
  def('sismember', 3, sismember);
  def('smembers', 2, smembers);
  def('spop', -2, spop);
  def('hset', -4, hset);
  def('hget', 3, hget);
  def('hdel', -3, hdel);
  def('hlen', 2, hlen);
  def('hgetall', 2, hgetall);
  def('command', -1, commandContainer, [
    ['count', 2, commandCount],
    ['docs', -2, commandDocs],
    ['info', -2, commandInfo],
    ['list', -2, commandList],
  ]);
  def('config', -2, noop, [
    ['get', -3, configGet],
    ['resetstat', 2, configResetstat],
  ]);
  def('client', -2, noop, [
    ['setname', 3, clientSetname],
    ['getname', 2, clientGetname],
    ['id', 2, clientId],
    ['setinfo', 4, clientSetinfo],
  ]);

  /** Find a command by name bytes without making a string (the hot path runs this per request). */
  function lookupCommand(name: Buffer): Command | undefined {
    if (name.length > 16) return undefined;
    for (let c = table.get(nameHash(name)); c !== undefined; c = c.next) {
      if (eqi(name, c.fullname)) return c;
    }
    return undefined;
  }

  /** commandCheckExistence (server.c): Redis's wording, args shown up to 128 bytes in all. */
  function unknownCommand(args: Buffer[], out: OutBuf): void {
    let list = '';
    for (let i = 1; i < args.length && list.length < 128; i++) list += `'${cstr(args[i], 128 - list.length)}' `;
    writeError(out, `ERR unknown command '${cstr(args[0], 128)}', with args beginning with: ${list}`);
  }

  function checkArity(cmd: Command, n: number, out: OutBuf): boolean {
    if ((cmd.arity > 0 && cmd.arity !== n) || n < -cmd.arity) {
      arityError(out, cmd.fullname);
      return false;
    }
    return true;
  }

  // With a shared keyspace every command (and sweep) takes its lock where it arrives. A region that
  // is full answers as Redis does past maxmemory, and the keyspace keeps what it held.
  const full = (e: unknown, out: OutBuf | null): undefined => {
    if (!(e instanceof KeyspaceFull)) throw e;
    if (out !== null) writeError(out, e.message);
    return undefined;
  };
  const app: KvApp = {
    protocol: 'resp',
    name: 'kv',
    handle: shm === null ? handleCommand : (args: Buffer[], out: OutBuf): void | 'close' => {
      shm.enter();
      try {
        return handleCommand(args, out);
      } catch (e) {
        return full(e, out);
      } finally {
        shm.leave();
      }
    },
    handleArgv: shm === null ? handleArgvIn : (buf: Buffer, argv: RespArgv, out: OutBuf): void | 'close' => {
      shm.enter();
      try {
        return handleArgvIn(buf, argv, out);
      } catch (e) {
        return full(e, out);
      } finally {
        shm.leave();
      }
    },
    sweep: shm === null ? sweepIn : (at?: number, budget?: number): number => {
      shm.enter();
      try {
        return sweepIn(at, budget);
      } catch (e) {
        full(e, null);
        return 0;
      } finally {
        shm.leave();
      }
    },
    get size() {
      return ks.count;
    },
    get expiring() {
      return ks.expiringCount;
    },
  };
  return app;

  function handleCommand(args: Buffer[], out: OutBuf): void | 'close' {
    const n = args.length;
    if (n === 0) return;
    let cmd = lookupCommand(args[0]);
    if (cmd === undefined) return unknownCommand(args, out);
    // lookupCommandLogic: with 2+ arguments a container command resolves to its subcommand.
    if (cmd.subs !== undefined && n >= 2) {
      const sub = cmd.subs.get(args[1].toString('latin1').toLowerCase());
      if (sub === undefined) {
        return writeError(
          out,
          `ERR unknown subcommand '${cstr(args[1], 128)}'. Try ${cstr(args[0], args[0].length).toUpperCase()} HELP.`,
        );
      }
      cmd = sub;
    }
    if (!checkArity(cmd, n, out)) return;
    return cmd.fn(args, out);
  }

  function handleArgvIn(buf: Buffer, argv: RespArgv, out: OutBuf): void | 'close' {
    const n = argv.count;
    const a = argv.pos;
    // GET key and SET key value, matched on the name's bytes and answered in place. `x | 32` folds
    // only the case bit, so it matches exactly the two cases of a letter.
    if (a[1] === 3) {
      const s = a[0];
      if ((buf[s + 1] | 32) === 101 /* e */ && (buf[s + 2] | 32) === 116 /* t */) {
        const c = buf[s] | 32;
        if (c === 103 /* g */ && n === 2) {
          // foundLen is -1 for a key holding a list, set or hash.
          if (lookupAt(buf, a[2], a[2] + a[3]) < 0) out.bytes(RESP_NULL_BULK);
          else if (ks.foundLen >= 0) replyFound(out);
          else writeError(out, E_WRONGTYPE);
          return;
        }
        if (c === 115 /* s */ && n === 3) {
          ks.setString(buf, a[2], a[2] + a[3], buf, a[4], a[4] + a[5]);
          out.bytes(RESP_OK);
          return;
        }
      }
    }
    return handleCommand(argvArgs(buf, argv), out);
  }

  function sweepIn(at?: number, budget = 256): number {
    if (ks.expiringCount === 0) {
      sweepIter = null;
      return 0;
    }
    const t = at ?? now();
    if (sweepIter === null) sweepIter = ks.expiringIds();
    let removed = 0;
    for (let i = 0; i < budget; i++) {
      const r = sweepIter.next();
      if (r.done) {
        sweepIter = null; // a full pass is done; the next call starts another
        break;
      }
      // An id is in `expiring` only while its key has a deadline (remove() takes it out).
      if (t > ks.deadlineOf(r.value)) {
        ks.remove(r.value);
        removed++;
      }
    }
    return removed;
  }
}

/** The version INFO and HELLO report; redis-cli and redis-benchmark read it. */
const REDIS_VERSION = '7.0.0';

/** Named factory (the app's name is 'kv'). */
export const kv = createKv;
