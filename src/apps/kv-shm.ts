/**
 * kv's keyspace in shared memory, for engines that run the app in more than one isolate: `threads`
 * (an isolate per connection thread), `prefork` (a process per child) and `--workers N` (a loop per
 * worker thread). Without it each isolate kept a keyspace of its own, and a GET on one connection
 * missed the SET made on another. With it they share one, as the threads of memcached share one hash
 * table: every command runs under one lock, in whichever thread or process received it.
 *
 * Same behaviour as Keyspace (kv-keyspace.ts), another layout: everything lives in one flat region
 * (sys/shm.ts: a memfd every isolate maps), addressed by offsets, since no JS object can be shared.
 *   - Header (the first 256 bytes): the lock, sizes, where each table is, the allocator's state.
 *   - Allocator: power-of-two blocks (16 B to 1 GB) from a bump pointer, a free list per size, the
 *     list's links in the free blocks themselves (K&R's malloc, without coalescing).
 *   - Slots: open addressing with linear probing, [hash, record] int32 pairs, at most half full;
 *     deletion by backward shift (as Keyspace).
 *   - Records: a 16-byte header [id, key length, value length (-1 for an object), size class], the
 *     key, then the value; an object's value is its encoding (kv's codec) behind a 4-byte length.
 *   - Rows by id: [record, type, position in the expiring list + 1, -]; free ids are chained through
 *     the record field. Deadlines are a float64 per id. The expiring list is an array of ids.
 * Offsets are stored in 8-byte units in int32s (the region is at most 2 GB).
 *
 * Objects (lists, sets, hashes) are JavaScript values in kv.ts: object() decodes one from its record,
 * and leave() encodes every object handed out or added during the command back into its record. That
 * costs O(size) per command on an object, which is why Keyspace keeps them as objects where it can.
 *
 * The lock is a futex (enter(): Atomics on the word, futex(2) to sleep and wake; Atomics.wait needs a
 * SharedArrayBuffer, and a mapped memfd is not one), with its owner's thread id beside it. A waiter
 * that finds the owner gone (/proc/<tid> missing: a child killed, a thread terminated) takes the lock
 * over and says so once: that owner's last command may be half applied.
 */
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { ETIMEDOUT, createShm, ffi, mapShm, releaseShm } from '../sys/index.js';
import { T_NONE, T_OBJECT, T_STRING, copyBytes, hashKey, type KvKeyspace } from './kv-keyspace.js';

/** Encode and decode kv's objects (lists, sets, hashes) to and from bytes. */
export interface ObjectCodec<O> {
  encode(obj: O): Buffer;
  decode(b: Buffer): O;
}

// ---- header: int32 indexes ----
const H_LOCK = 0;
const H_STATE = 1; // 0 new, 1 being initialised, 2 ready
const H_COUNT = 2;
const H_NEXTID = 3;
const H_MASK = 4;
const H_TAB = 5;
const H_ROWS = 6;
const H_ROWCAP = 7;
const H_DEAD = 8;
const H_FREEID = 9;
const H_EXPN = 10;
const H_EXPARR = 11;
const H_EXPCAP = 12;
const H_TOP = 13;
const H_LIMIT = 14;
const H_SEED = 15;
const H_FREE = 16;
const NCLASS = 27; // 16 << 26 = 1 GB
const H_OWNER = 60; // the lock holder's thread id, 0 when free
/** The lock's words (int32 indexes into the region), for tests. */
export const LOCK_STATE_INDEX = H_LOCK;
export const LOCK_OWNER_INDEX = H_OWNER;

// futex(2) operations, shared (not FUTEX_PRIVATE_FLAG): the word may be mapped by several processes.
const FUTEX_WAIT = 0;
const FUTEX_WAKE = 1;
/** Tries before sleeping on the futex. */
const SPINS = 200;
/** struct timespec {tv_sec, tv_nsec}: a waiter looks at the owner every 100 ms. */
const WAIT_TIMEOUT = (() => {
  const t = Buffer.alloc(16);
  t.writeBigInt64LE(100_000_000n, 8);
  return t;
})();
const HEADER_BYTES = 256;

// ---- a record's header: int32s from the record's start ----
const R_ID = 0;
const R_KLEN = 1;
const R_VLEN = 2;
const R_CLS = 3;
const HDR = 16;

// ---- a row: int32s per id ----
const ROW = 4;
const W_REC = 0;
const W_TYPE = 1;
const W_EXP = 2;

/** The region's size: address space only until written (sys/shm.ts), and the most one kv holds. */
export const SHM_KEYSPACE_BYTES = 2 ** 31 - 8;

/** The smallest size class (16 << k bytes) that holds n bytes. */
function classOf(n: number): number {
  let k = 0;
  while (k < NCLASS && 16 << k < n) k++;
  return k; // NCLASS: larger than any block (alloc() says full)
}

/** Thrown when the region is full; kv answers it as Redis answers maxmemory (-OOM). */
export class KeyspaceFull extends Error {
  constructor() {
    super('OOM command not allowed when used memory > the shared keyspace (2 GB)');
  }
}

let myTid = 0;
let tookOver = false;
let warnedFull = false;

function warnFull(): void {
  if (warnedFull) return;
  warnedFull = true;
  process.stderr.write('iolab: kv: the shared keyspace is full (2 GB): a list, set or hash could not grow, and kept its value from before the command\n');
}

/** The environment variable naming the shared keyspace's memfd to the engine's threads and children. */
export const KV_SHM_ENV = 'IOLAB_KV_SHM';

/**
 * Make the region an engine's isolates will share, and name its fd in the environment: threads read
 * the process's own (threads engine: SHARE_ENV) or a copy taken when they start (--workers), prefork
 * children get the fd and the variable passed on (prefork/engine.ts). Once per process.
 */
export function shareKeyspace(): void {
  if (process.env[KV_SHM_ENV]) return;
  try {
    process.env[KV_SHM_ENV] = String(createShm('iolab-kv', SHM_KEYSPACE_BYTES));
  } catch (e) {
    // A kernel or sandbox without memfd_create: serve on, one keyspace per isolate, and say so.
    process.stderr.write(`iolab: kv: no shared memory (${(e as Error).message}): each thread, process or loop keeps a keyspace of its own\n`);
  }
}

/** The region named by the environment, mapped into this isolate; undefined when there is none. */
export function sharedRegionFromEnv(): ArrayBufferLike | undefined {
  const v = process.env[KV_SHM_ENV];
  if (!v) return undefined;
  const fd = Number(v);
  if (!Number.isInteger(fd) || fd < 0) throw new Error(`${KV_SHM_ENV} must be a file descriptor (got ${JSON.stringify(v)})`);
  return mapShm(fd, SHM_KEYSPACE_BYTES);
}

export class ShmKeyspace<O> implements KvKeyspace<O> {
  private readonly i32: Int32Array;
  /** The lock word alone: what futex(2) is given (koffi passes a typed array's data pointer). */
  private readonly lockWord: Int32Array;
  private readonly f64: Float64Array;
  private readonly u8: Buffer;
  private readonly seed: number;
  /** Objects handed out or added in the current command, by id: encoded back by leave(). */
  private readonly touched = new Map<number, O>();
  /** Set by probe(): the slot of the key found, or the empty slot that ended the search. */
  private slot = 0;
  private lastHash = 0;

  foundBuf: Buffer;
  foundValue = 0;
  foundLen = 0;

  constructor(private readonly region: ArrayBufferLike, private readonly codec: ObjectCodec<O>) {
    this.i32 = new Int32Array(region);
    this.lockWord = this.i32.subarray(H_LOCK, H_LOCK + 1);
    this.f64 = new Float64Array(region, 0, region.byteLength >>> 3);
    this.u8 = Buffer.from(region);
    this.foundBuf = this.u8;
    if (myTid === 0) myTid = ffi.gettid();
    const a = this.i32;
    if (Atomics.compareExchange(a, H_STATE, 0, 1) === 0) {
      this.init(region.byteLength);
      Atomics.store(a, H_STATE, 2);
    } else {
      while (Atomics.load(a, H_STATE) !== 2) ffi.sched_yield();
    }
    this.seed = a[H_SEED];
  }

  private init(bytes: number): void {
    const a = this.i32;
    a[H_SEED] = randomBytes(4).readInt32LE(0);
    a[H_LIMIT] = Math.floor(bytes / 8);
    this.reset();
  }

  /** Empty tables; the allocator starts over (clear() drops every block with them). */
  private reset(): void {
    const a = this.i32;
    a[H_TOP] = HEADER_BYTES >>> 3;
    for (let k = 0; k < NCLASS; k++) a[H_FREE + k] = 0;
    a[H_COUNT] = 0;
    a[H_NEXTID] = 0;
    a[H_FREEID] = 0;
    a[H_EXPN] = 0;
    const cap = 1024;
    const tab = this.allocOrThrow(cap * 8);
    this.u8.fill(0, tab * 8, tab * 8 + cap * 8);
    a[H_TAB] = tab;
    a[H_MASK] = cap - 1;
    a[H_ROWCAP] = 256;
    a[H_ROWS] = this.allocOrThrow(256 * ROW * 4);
    a[H_DEAD] = this.allocOrThrow(256 * 8);
    a[H_EXPCAP] = 256;
    a[H_EXPARR] = this.allocOrThrow(256 * 4);
  }

  // ---- the lock ----

  /**
   * Take the keyspace for one command (or one sweep). Drepper's "Futexes Are Tricky" mutex (the
   * lock word is 0 free, 1 taken, 2 taken with waiters), after a short spin: the holder may be on the
   * other CPU with a microsecond to go, and a futex wait is a sleep and a wake-up. A wait that times
   * out checks that the owner still exists; one that is gone is taken over (once said).
   */
  enter(): void {
    const a = this.i32;
    if (Atomics.compareExchange(a, H_LOCK, 0, 1) === 0) {
      a[H_OWNER] = myTid;
      return;
    }
    for (let i = 0; i < SPINS; i++) {
      if (Atomics.load(a, H_LOCK) === 0 && Atomics.compareExchange(a, H_LOCK, 0, 1) === 0) {
        a[H_OWNER] = myTid;
        return;
      }
    }
    let c = Atomics.exchange(a, H_LOCK, 2);
    while (c !== 0) {
      const r = ffi.futex(this.lockWord, FUTEX_WAIT, 2, WAIT_TIMEOUT);
      if (r === -ETIMEDOUT) {
        const owner = Atomics.load(a, H_OWNER);
        if (owner !== 0 && owner !== myTid && !existsSync(`/proc/${owner}`) && Atomics.compareExchange(a, H_OWNER, owner, myTid) === owner) {
          Atomics.store(a, H_LOCK, 2); // still taken (now ours), and others may be waiting
          if (!tookOver) {
            tookOver = true;
            process.stderr.write(`iolab: kv: thread ${owner} ended while holding the shared keyspace; taking it over (its last command may be half applied)\n`);
          }
          return;
        }
      }
      c = Atomics.exchange(a, H_LOCK, 2);
    }
    a[H_OWNER] = myTid;
  }

  /** Encode the objects this command touched, then let the keyspace go. */
  leave(): void {
    try {
      if (this.touched.size !== 0) this.writeBack();
    } finally {
      this.touched.clear();
      const a = this.i32;
      a[H_OWNER] = 0;
      // 1 -> 0: nobody waits. 2 -> 1: somebody may: free it and wake one.
      if (Atomics.sub(a, H_LOCK, 1) !== 1) {
        Atomics.store(a, H_LOCK, 0);
        ffi.futex(this.lockWord, FUTEX_WAKE, 1, null);
      }
    }
  }

  private writeBack(): void {
    for (const [id, obj] of this.touched) {
      if (this.type(id) !== T_OBJECT) continue;
      const enc = this.codec.encode(obj);
      let rec = this.i32[this.rowAt(id) + W_REC];
      const klen = this.i32[rec * 2 + R_KLEN];
      const need = HDR + klen + 4 + enc.length;
      if (need > 16 << this.i32[rec * 2 + R_CLS]) {
        try {
          rec = this.move(id, rec, need);
        } catch (e) {
          if (!(e instanceof KeyspaceFull)) throw e;
          warnFull();
          continue; // the object keeps its last encoding
        }
      }
      const at = rec * 8 + HDR + klen;
      this.u8.writeInt32LE(enc.length, at);
      enc.copy(this.u8, at + 4);
    }
  }

  // ---- KvKeyspace ----

  get count(): number {
    return this.i32[H_COUNT];
  }

  get expiringCount(): number {
    return this.i32[H_EXPN];
  }

  *expiringIds(): IterableIterator<number> {
    // Removal moves the last id into the hole: an id may be skipped in one pass and seen in the next.
    for (let i = 0; i < this.i32[H_EXPN]; i++) yield this.i32[this.i32[H_EXPARR] * 2 + i];
  }

  deadlineOf(id: number): number {
    return this.f64[this.i32[H_DEAD] + id];
  }

  private hash(b: Uint8Array, s: number, e: number): number {
    return hashKey(this.seed, b, s, e);
  }

  private rowAt(id: number): number {
    return this.i32[H_ROWS] * 2 + id * ROW;
  }

  /** The key's record (8-byte units), or 0; leaves `slot`. */
  private probe(b: Uint8Array, s: number, e: number): number {
    const h = this.hash(b, s, e);
    const a = this.i32;
    const u = this.u8;
    const tab = a[H_TAB] * 2;
    const mask = a[H_MASK];
    const n = e - s;
    this.lastHash = h;
    for (let p = h & mask; ; p = (p + 1) & mask) {
      const rec = a[tab + 2 * p + 1];
      if (rec === 0) {
        this.slot = p;
        return 0;
      }
      if (a[tab + 2 * p] !== h || a[rec * 2 + R_KLEN] !== n) continue;
      const k = rec * 8 + HDR;
      let i = 0;
      while (i < n && u[k + i] === b[s + i]) i++;
      if (i === n) {
        this.slot = p;
        return rec;
      }
    }
  }

  find(b: Uint8Array, s: number, e: number): number {
    const rec = this.probe(b, s, e);
    if (rec === 0) return -1;
    const a = this.i32;
    this.foundValue = rec * 8 + HDR + (e - s);
    this.foundLen = a[rec * 2 + R_VLEN];
    return a[rec * 2 + R_ID];
  }

  type(id: number): number {
    return this.i32[this.rowAt(id) + W_TYPE];
  }

  object(id: number): O {
    let obj = this.touched.get(id);
    if (obj !== undefined) return obj;
    const rec = this.i32[this.rowAt(id) + W_REC];
    const at = rec * 8 + HDR + this.i32[rec * 2 + R_KLEN];
    const len = this.u8.readInt32LE(at);
    obj = this.codec.decode(this.u8.subarray(at + 4, at + 4 + len));
    this.touched.set(id, obj);
    return obj;
  }

  value(id: number): Buffer {
    const rec = this.i32[this.rowAt(id) + W_REC];
    const o = rec * 8 + HDR + this.i32[rec * 2 + R_KLEN];
    return this.u8.subarray(o, o + this.i32[rec * 2 + R_VLEN]);
  }

  setString(k: Uint8Array, ks: number, ke: number, v: Uint8Array, vs: number, ve: number, keepDeadline = false): number {
    const vlen = ve - vs;
    const klen = ke - ks;
    const need = HDR + klen + vlen;
    let rec = this.probe(k, ks, ke);
    let id: number;
    if (rec === 0) {
      id = this.insert(k, ks, ke, need);
      rec = this.i32[this.rowAt(id) + W_REC];
      this.i32[this.rowAt(id) + W_TYPE] = T_STRING;
    } else {
      id = this.i32[rec * 2 + R_ID];
      if (this.i32[this.rowAt(id) + W_TYPE] === T_OBJECT) {
        this.touched.delete(id);
        this.i32[this.rowAt(id) + W_TYPE] = T_STRING;
      }
      const cap = 16 << this.i32[rec * 2 + R_CLS];
      // Keep the block while the value fits and wastes at most half of it.
      if (need > cap || (need * 2 < cap && cap > 64)) rec = this.move(id, rec, need);
      if (!keepDeadline && this.deadlineOf(id) !== 0) this.clearDeadline(id);
    }
    this.i32[rec * 2 + R_VLEN] = vlen;
    const at = rec * 8 + HDR + klen;
    copyBytes(v, vs, this.u8, at, vlen);
    return id;
  }

  addObject(k: Uint8Array, ks: number, ke: number, obj: O): number {
    if (this.probe(k, ks, ke) !== 0) throw new Error('kv keyspace: addObject on an existing key');
    const id = this.insert(k, ks, ke, HDR + (ke - ks) + 4);
    const rec = this.i32[this.rowAt(id) + W_REC];
    this.i32[rec * 2 + R_VLEN] = -1;
    this.u8.writeInt32LE(0, rec * 8 + HDR + (ke - ks));
    this.i32[this.rowAt(id) + W_TYPE] = T_OBJECT;
    this.touched.set(id, obj);
    return id;
  }

  remove(id: number): void {
    const a = this.i32;
    const row = this.rowAt(id);
    const rec = a[row + W_REC];
    const ko = rec * 8 + HDR;
    const tab = a[H_TAB] * 2;
    const mask = a[H_MASK];
    let i = this.hash(this.u8, ko, ko + a[rec * 2 + R_KLEN]) & mask;
    while (a[tab + 2 * i + 1] !== rec) i = (i + 1) & mask;
    for (let j = (i + 1) & mask; a[tab + 2 * j + 1] !== 0; j = (j + 1) & mask) {
      const home = a[tab + 2 * j] & mask;
      const stays = i <= j ? home > i && home <= j : home > i || home <= j;
      if (stays) continue;
      a[tab + 2 * i] = a[tab + 2 * j];
      a[tab + 2 * i + 1] = a[tab + 2 * j + 1];
      i = j;
    }
    a[tab + 2 * i] = 0;
    a[tab + 2 * i + 1] = 0;
    this.free(rec, a[rec * 2 + R_CLS]);
    if (this.deadlineOf(id) !== 0) this.clearDeadline(id);
    this.touched.delete(id);
    a[row + W_TYPE] = T_NONE;
    a[row + W_REC] = a[H_FREEID];
    a[H_FREEID] = id + 1;
    a[H_COUNT]--;
  }

  setDeadline(id: number, when: number): void {
    const a = this.i32;
    const d = a[H_DEAD];
    if (this.f64[d + id] === 0) {
      let n = a[H_EXPN];
      if (n === a[H_EXPCAP]) {
        const cap = n * 2;
        const arr = this.allocOrThrow(cap * 4);
        this.u8.copy(this.u8, arr * 8, a[H_EXPARR] * 8, a[H_EXPARR] * 8 + n * 4);
        this.free(a[H_EXPARR], classOf(n * 4));
        a[H_EXPARR] = arr;
        a[H_EXPCAP] = cap;
      }
      a[a[H_EXPARR] * 2 + n] = id;
      a[this.rowAt(id) + W_EXP] = n + 1;
      a[H_EXPN] = n + 1;
    }
    this.f64[d + id] = when;
  }

  clearDeadline(id: number): boolean {
    const a = this.i32;
    const d = a[H_DEAD];
    if (this.f64[d + id] === 0) return false;
    this.f64[d + id] = 0;
    const arr = a[H_EXPARR] * 2;
    const pos = a[this.rowAt(id) + W_EXP] - 1;
    const last = a[H_EXPN] - 1;
    const moved = a[arr + last];
    a[arr + pos] = moved;
    a[this.rowAt(moved) + W_EXP] = pos + 1;
    a[this.rowAt(id) + W_EXP] = 0;
    a[H_EXPN] = last;
    return true;
  }

  clear(): void {
    this.touched.clear();
    this.reset();
    // The tables start again at the front; what lies past them goes back to the kernel, as Redis's
    // FLUSHALL frees its memory (all mappings see the hole).
    releaseShm(this.region, this.i32[H_TOP] * 8);
  }

  // ---- slots, rows and records ----

  /** A new key that probe() just missed, with a record of `size` bytes holding header and key. */
  private insert(k: Uint8Array, ks: number, ke: number, size: number): number {
    const a = this.i32;
    const h = this.lastHash;
    if (2 * (a[H_COUNT] + 1) > a[H_MASK] + 1) {
      this.grow();
      const tab = a[H_TAB] * 2;
      let p = h & a[H_MASK];
      while (a[tab + 2 * p + 1] !== 0) p = (p + 1) & a[H_MASK];
      this.slot = p;
    }
    const cls = classOf(size);
    const rec = this.allocOrThrow(size);
    let id: number;
    try {
      id = this.newId();
    } catch (e) {
      this.free(rec, cls); // full: leave the region as it was
      throw e;
    }
    const row = this.rowAt(id);
    a[row + W_REC] = rec;
    a[row + W_TYPE] = T_NONE;
    a[row + W_EXP] = 0;
    this.f64[a[H_DEAD] + id] = 0;
    const klen = ke - ks;
    a[rec * 2 + R_ID] = id;
    a[rec * 2 + R_KLEN] = klen;
    a[rec * 2 + R_VLEN] = 0;
    a[rec * 2 + R_CLS] = cls;
    this.u8.set(k.subarray(ks, ke), rec * 8 + HDR);
    const tab = a[H_TAB] * 2;
    a[tab + 2 * this.slot] = h;
    a[tab + 2 * this.slot + 1] = rec;
    a[H_COUNT]++;
    return id;
  }

  private newId(): number {
    const a = this.i32;
    const free = a[H_FREEID];
    if (free !== 0) {
      const id = free - 1;
      a[H_FREEID] = a[this.rowAt(id) + W_REC];
      return id;
    }
    const id = a[H_NEXTID];
    const cap = a[H_ROWCAP];
    if (id === cap) {
      // Allocate both before freeing either, so a full region leaves the tables as they were.
      const rows = this.allocOrThrow(cap * 2 * ROW * 4);
      const dead = this.alloc(cap * 2 * 8);
      if (dead === 0) {
        this.free(rows, classOf(cap * 2 * ROW * 4));
        throw new KeyspaceFull();
      }
      this.u8.copy(this.u8, rows * 8, a[H_ROWS] * 8, a[H_ROWS] * 8 + cap * ROW * 4);
      this.u8.copy(this.u8, dead * 8, a[H_DEAD] * 8, a[H_DEAD] * 8 + cap * 8);
      this.free(a[H_ROWS], classOf(cap * ROW * 4));
      this.free(a[H_DEAD], classOf(cap * 8));
      a[H_ROWS] = rows;
      a[H_DEAD] = dead;
      a[H_ROWCAP] = cap * 2;
    }
    a[H_NEXTID] = id + 1;
    return id;
  }

  /** Double the slots; entries go back by their stored hash. */
  private grow(): void {
    const a = this.i32;
    const oldCap = a[H_MASK] + 1;
    const cap = oldCap * 2;
    const mask = cap - 1;
    const nt = this.allocOrThrow(cap * 8);
    this.u8.fill(0, nt * 8, nt * 8 + cap * 8);
    const ot = a[H_TAB] * 2;
    const t = nt * 2;
    for (let p = 0; p < oldCap; p++) {
      const rec = a[ot + 2 * p + 1];
      if (rec === 0) continue;
      const h = a[ot + 2 * p];
      let q = h & mask;
      while (a[t + 2 * q + 1] !== 0) q = (q + 1) & mask;
      a[t + 2 * q] = h;
      a[t + 2 * q + 1] = rec;
    }
    this.free(a[H_TAB], classOf(oldCap * 8));
    a[H_TAB] = nt;
    a[H_MASK] = mask;
  }

  /** Move `id`'s record (in the slot probe() left) to a block of `need` bytes, keeping header and key. */
  private move(id: number, rec: number, need: number): number {
    const a = this.i32;
    const nrec = this.allocOrThrow(need);
    const keep = HDR + a[rec * 2 + R_KLEN];
    this.u8.copy(this.u8, nrec * 8, rec * 8, rec * 8 + Math.min(keep + 4, 16 << a[rec * 2 + R_CLS]));
    a[nrec * 2 + R_CLS] = classOf(need);
    this.free(rec, a[rec * 2 + R_CLS]);
    // Its slot: the one probe() left when called for this key, or found again from the key's hash.
    const tab = a[H_TAB] * 2;
    let p = this.slot;
    if (a[tab + 2 * p + 1] !== rec) {
      const ko = nrec * 8 + HDR;
      p = this.hash(this.u8, ko, ko + a[nrec * 2 + R_KLEN]) & a[H_MASK];
      while (a[tab + 2 * p + 1] !== rec) p = (p + 1) & a[H_MASK];
    }
    a[tab + 2 * p + 1] = nrec;
    a[this.rowAt(id) + W_REC] = nrec;
    return nrec;
  }

  // ---- the allocator ----

  /** A block of at least n bytes (8-byte units), or 0 when the region is full. */
  private alloc(n: number): number {
    const a = this.i32;
    const k = classOf(n);
    if (k >= NCLASS) return 0;
    const head = a[H_FREE + k];
    if (head !== 0) {
      a[H_FREE + k] = a[head * 2];
      return head;
    }
    const top = a[H_TOP];
    const units = 2 << k;
    if (top + units > a[H_LIMIT]) return 0;
    a[H_TOP] = top + units;
    return top;
  }

  private allocOrThrow(n: number): number {
    const b = this.alloc(n);
    if (b === 0) throw new KeyspaceFull();
    return b;
  }

  private free(block: number, k: number): void {
    const a = this.i32;
    a[block * 2] = a[H_FREE + k];
    a[H_FREE + k] = block;
  }
}
