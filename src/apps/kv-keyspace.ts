/**
 * kv's keyspace: a hash table keyed by the key's bytes, with each key and its string value stored
 * side by side in one record of a slab arena (memcached's slab allocator; Redis's embstr keeps an
 * object and its string in one allocation for the same reason).
 *
 * Why not a `Map<string, Buffer>`: under redis-benchmark -P 16 over 100k keys the Map lookup was the
 * largest single cost of a GET (~20% of the server's CPU samples), plus one latin1 string made per
 * command for the key. The time goes to cache and TLB misses: V8's OrderedHashMap bucket, its entry,
 * the key string it points to, the value Buffer object and the value's bytes are five places in
 * memory. Here a lookup reads one slot (the key's hash and where its record is, side by side), then
 * the record, which holds the key to compare and, right after it, the value that GET copies out: two
 * places. Measured on this 2-vCPU VM, 1M random lookups of 16-byte keys among 100k: Map with a fresh
 * latin1 key string ~650-900 ns each; slot -> row -> record ~300-400 ns; slot -> record ~200-250 ns.
 * It also makes no string or Buffer per command, and a SET that overwrites a value of the same size
 * class writes it in place (no garbage for the GC).
 *
 * Layout:
 *   - Slots: open addressing with linear probing, one Int32Array of [hash, ref] pairs, at most half
 *     full; deletion shifts later entries of the run back (no tombstones). `ref` says where the record
 *     is: 0 = empty slot, n > 0 = small record at arena place n - 1, n < 0 = big record of id -n - 1.
 *   - Records: a 12-byte header [id, key length, value length (-1 for an object)] as little-endian
 *     int32s, then the key bytes, then the value bytes. Up to MAX_SMALL bytes they live in 64 KB slabs,
 *     one size class per slab, with a free list per class; a larger record gets a Buffer of its own.
 *     Slab memory stays with its class until clear() (memcached's trade-off: no fragmentation, no
 *     compaction).
 *   - Entries: a small integer id per key (stable for the key's life, reused after it), with a row
 *     [ref, size class | type << 8] for the operations that start from an id (expiry, removal).
 *     Lists, sets and hashes are JS objects in `objs[id]`; their record holds only the key.
 *   - Deadlines (absolute ms, 0 = none) are a Float64Array by id, so reading one costs no Map lookup;
 *     the ids that have one are also kept in `expiring`, which the active-expiry sweep walks.
 *
 * Hashing: FNV-1a over the bytes from a random per-process basis, then murmur3's finaliser so that the
 * low bits that pick the slot depend on every byte. Redis uses SipHash against hash flooding; a random
 * basis is weaker, but enough for a lab server that listens on localhost by default.
 *
 * Keys are passed as (bytes, start, end), so a caller can look a key up where it lies in a read buffer.
 */
import { randomBytes } from 'node:crypto';

export const T_NONE = 0;
export const T_STRING = 1;
export const T_OBJECT = 2;

const HDR = 12;
const H_ID = 0;
const H_KLEN = 4;
const H_VLEN = 8;

const SLAB_BITS = 16;
const SLAB_SIZE = 1 << SLAB_BITS;
const SLAB_MASK = SLAB_SIZE - 1;
/** A small record's place is `slab << 16 | offset`, stored + 1 in an int32: 32766 slabs (2 GB), then records go big. */
const MAX_SLABS = 0x7ffe;
/** Record size classes (bytes). Steps of ~1.25x past 64 keep the waste per record under ~25%. */
const CLASS_SIZE = [16, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256, 320, 384, 512, 640, 768, 1024];
const MAX_SMALL = CLASS_SIZE[CLASS_SIZE.length - 1];
/** The size class of a record in a Buffer of its own. */
const BIG = 255;
/** Size class of a record of `n` bytes, by (n + 7) >> 3 (n <= MAX_SMALL). */
const CLASS_OF = new Uint8Array((MAX_SMALL >> 3) + 1);
for (let i = 0, c = 0; i < CLASS_OF.length; i++) {
  while (CLASS_SIZE[c] < i << 3) c++;
  CLASS_OF[i] = c;
}

// Rows by id.
const ROW = 2;
const R_REF = 0;
const R_META = 1; // size class (low 8 bits) | type << 8

function rd32(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24);
}

function wr32(b: Uint8Array, o: number, v: number): void {
  b[o] = v;
  b[o + 1] = v >>> 8;
  b[o + 2] = v >>> 16;
  b[o + 3] = v >>> 24;
}

/** A key's hash (see Hashing above): FNV-1a from `seed`, then murmur3's finaliser. */
export function hashKey(seed: number, b: Uint8Array, s: number, e: number): number {
  let h = seed ^ (e - s);
  for (let i = s; i < e; i++) h = Math.imul(h ^ b[i], 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Short copies with a loop: measured on Node 20, about twice as fast as a native copy up to ~48 bytes. */
export function copyBytes(src: Uint8Array, s: number, dst: Uint8Array, d: number, n: number): void {
  if (n <= 48) for (let i = 0; i < n; i++) dst[d + i] = src[s + i];
  else dst.set(src.subarray(s, s + n), d);
}

/**
 * What kv needs of a keyspace: Keyspace below (one isolate's), or ShmKeyspace (kv-shm.ts: one shared by
 * every thread and process of an engine).
 */
export interface KvKeyspace<O> {
  /** Keys held (DBSIZE), expired ones not reclaimed yet included. */
  readonly count: number;
  foundBuf: Buffer;
  foundValue: number;
  foundLen: number;
  find(b: Uint8Array, s: number, e: number): number;
  type(id: number): number;
  object(id: number): O;
  value(id: number): Buffer;
  setString(k: Uint8Array, ks: number, ke: number, v: Uint8Array, vs: number, ve: number, keepDeadline?: boolean): number;
  addObject(k: Uint8Array, ks: number, ke: number, obj: O): number;
  remove(id: number): void;
  /** Absolute deadline in ms on the app's clock; 0 = none. */
  deadlineOf(id: number): number;
  setDeadline(id: number, when: number): void;
  clearDeadline(id: number): boolean;
  /** How many keys have a deadline (Redis's db->expires). */
  readonly expiringCount: number;
  /** The ids with a deadline, for the active-expiry sweep. */
  expiringIds(): IterableIterator<number>;
  clear(): void;
}

export class Keyspace<O> implements KvKeyspace<O> {
  /** [hash, ref] pairs; length 2 * capacity (a power of two). */
  private tab: Int32Array;
  private mask: number;
  /** Keys held (DBSIZE), expired ones not reclaimed yet included. */
  count = 0;

  /** ROW int32s per id (R_* fields). */
  private row: Int32Array;
  /** Absolute deadline in ms on the app's clock, by id; 0 = none. */
  deadline: Float64Array;
  private objs: (O | undefined)[] = [];
  private bigs: (Buffer | undefined)[] = [];
  private freeIds: number[] = [];
  private nextId = 0;
  /** Ids with a deadline (Redis's db->expires), for the active-expiry sweep. */
  readonly expiring = new Set<number>();

  private slabs: Buffer[] = [];
  /** The size class of each slab's records, so an overwrite can tell whether it fits without the row. */
  private slabCls = new Uint8Array(MAX_SLABS);
  private free: number[][] = CLASS_SIZE.map(() => []);
  /** Next unused place in each class's newest slab, and where that slab's records end. */
  private bump = new Int32Array(CLASS_SIZE.length);
  private bumpEnd = new Int32Array(CLASS_SIZE.length);

  private readonly seed = randomBytes(4).readInt32LE(0);
  /** Set by probe(): the slot a found key sits in, or the empty slot where a missing key would go. */
  private slot = 0;
  private lastHash = 0;
  /** Set by at(): a record's buffer and offset. */
  private rb: Buffer = Buffer.alloc(0);
  private ro = 0;

  /**
   * After find() returned an id: the record's buffer, where its value starts, and the value's length
   * (-1 when the key holds an object). Good until the next call into the keyspace; lets a GET copy the
   * value out without going back through the id.
   */
  foundBuf: Buffer = this.rb;
  foundValue = 0;
  foundLen = 0;

  constructor() {
    this.tab = new Int32Array(2 * 1024);
    this.mask = 1023;
    this.row = new Int32Array(256 * ROW);
    this.deadline = new Float64Array(256);
  }

  private hash(b: Uint8Array, s: number, e: number): number {
    return hashKey(this.seed, b, s, e);
  }

  /** Point rb/ro at the record `ref` names. */
  private at(ref: number): void {
    if (ref > 0) {
      const loc = ref - 1;
      this.rb = this.slabs[loc >>> SLAB_BITS];
      this.ro = loc & SLAB_MASK;
    } else {
      this.rb = this.bigs[-ref - 1] as Buffer;
      this.ro = 0;
    }
  }

  /** Find the key: its id, or -1. Leaves `slot` at the key's slot or at the empty slot that ended the search. */
  private probe(b: Uint8Array, s: number, e: number): number {
    const h = this.hash(b, s, e);
    const tab = this.tab;
    const mask = this.mask;
    const n = e - s;
    this.lastHash = h;
    for (let p = h & mask; ; p = (p + 1) & mask) {
      const ref = tab[2 * p + 1];
      if (ref === 0) {
        this.slot = p;
        return -1;
      }
      if (tab[2 * p] !== h) continue;
      this.at(ref);
      const r = this.rb;
      const o = this.ro;
      if (rd32(r, o + H_KLEN) !== n) continue;
      const k = o + HDR;
      let i = 0;
      while (i < n && r[k + i] === b[s + i]) i++;
      if (i === n) {
        this.slot = p;
        return rd32(r, o + H_ID);
      }
    }
  }

  /** The key's id, or -1, with `found*` describing its record (deadlines are the caller's business). */
  find(b: Uint8Array, s: number, e: number): number {
    const id = this.probe(b, s, e);
    if (id >= 0) {
      const r = this.rb;
      const o = this.ro;
      this.foundBuf = r;
      this.foundValue = o + HDR + (e - s);
      this.foundLen = rd32(r, o + H_VLEN);
    }
    return id;
  }

  /** T_STRING or T_OBJECT (T_NONE for an unused id). */
  type(id: number): number {
    return this.row[id * ROW + R_META] >>> 8;
  }

  object(id: number): O {
    return this.objs[id] as O;
  }

  /** A view of a string value's bytes: good until the keyspace next changes, so copy what you keep. */
  value(id: number): Buffer {
    this.at(this.row[id * ROW + R_REF]);
    const o = this.ro + HDR + rd32(this.rb, this.ro + H_KLEN);
    return this.rb.subarray(o, o + rd32(this.rb, this.ro + H_VLEN));
  }

  /**
   * Set a string value (Redis's setKey): a new key, or any existing key whatever it held. The deadline
   * is dropped unless `keepDeadline` (KEEPTTL, INCR). The bytes are copied. Returns the key's id.
   */
  setString(k: Uint8Array, ks: number, ke: number, v: Uint8Array, vs: number, ve: number, keepDeadline = false): number {
    const vlen = ve - vs;
    const klen = ke - ks;
    const size = HDR + klen + vlen;
    let id = this.probe(k, ks, ke);
    if (id < 0) {
      id = this.insert(k, ks, ke, size);
      this.setType(id, T_STRING);
    } else {
      // Overwriting a string with one of the same size class touches only the slot and the record
      // (not the row, not the deadline unless some key has one): the common SET under load.
      if (rd32(this.rb, this.ro + H_VLEN) < 0) {
        this.objs[id] = undefined;
        this.setType(id, T_STRING);
      }
      if (!this.fits(size)) this.resize(id, size);
      if (!keepDeadline && this.expiring.size !== 0 && this.deadline[id] !== 0) this.clearDeadline(id);
    }
    const r = this.rb;
    const o = this.ro;
    wr32(r, o + H_VLEN, vlen);
    copyBytes(v, vs, r, o + HDR + klen, vlen);
    return id;
  }

  /** Add a key holding an object (a list, set or hash); the key must be missing. Returns its id. */
  addObject(k: Uint8Array, ks: number, ke: number, obj: O): number {
    if (this.probe(k, ks, ke) >= 0) throw new Error('kv keyspace: addObject on an existing key');
    const id = this.insert(k, ks, ke, HDR + (ke - ks));
    this.setType(id, T_OBJECT);
    wr32(this.rb, this.ro + H_VLEN, -1);
    this.objs[id] = obj;
    return id;
  }

  /** Remove a key with its value, object and deadline. */
  remove(id: number): void {
    const ref = this.row[id * ROW + R_REF];
    this.at(ref);
    const ko = this.ro + HDR;
    const tab = this.tab;
    const mask = this.mask;
    // Its slot: probe from its hash (made again from the key: removal is off the hot path).
    let i = this.hash(this.rb, ko, ko + rd32(this.rb, this.ro + H_KLEN)) & mask;
    while (tab[2 * i + 1] !== ref) i = (i + 1) & mask;
    // Backward-shift deletion: move later entries of the run into the hole unless their home slot
    // lies in the cyclic range (hole, entry], so every key stays reachable from its home.
    for (let j = (i + 1) & mask; tab[2 * j + 1] !== 0; j = (j + 1) & mask) {
      const home = tab[2 * j] & mask;
      const stays = i <= j ? home > i && home <= j : home > i || home <= j;
      if (stays) continue;
      tab[2 * i] = tab[2 * j];
      tab[2 * i + 1] = tab[2 * j + 1];
      i = j;
    }
    tab[2 * i] = 0;
    tab[2 * i + 1] = 0;
    this.unplace(id);
    if (this.deadline[id] !== 0) this.clearDeadline(id);
    this.objs[id] = undefined;
    this.row[id * ROW + R_META] = T_NONE << 8;
    this.row[id * ROW + R_REF] = 0;
    this.freeIds.push(id);
    this.count--;
  }

  deadlineOf(id: number): number {
    return this.deadline[id];
  }

  get expiringCount(): number {
    return this.expiring.size;
  }

  expiringIds(): IterableIterator<number> {
    return this.expiring.values();
  }

  setDeadline(id: number, when: number): void {
    if (this.deadline[id] === 0) this.expiring.add(id);
    this.deadline[id] = when;
  }

  /** Drop the key's deadline; false when it had none. */
  clearDeadline(id: number): boolean {
    if (this.deadline[id] === 0) return false;
    this.deadline[id] = 0;
    this.expiring.delete(id);
    return true;
  }

  /** Empty the keyspace and let its memory go. */
  clear(): void {
    this.tab = new Int32Array(2 * 1024);
    this.mask = 1023;
    this.count = 0;
    this.row = new Int32Array(256 * ROW);
    this.deadline = new Float64Array(256);
    this.objs = [];
    this.bigs = [];
    this.freeIds = [];
    this.nextId = 0;
    this.expiring.clear();
    this.slabs = [];
    this.free = CLASS_SIZE.map(() => []);
    this.bump.fill(0);
    this.bumpEnd.fill(0);
    this.rb = this.foundBuf = Buffer.alloc(0);
  }

  // ---- entries, slots and records -----------------------------------------------------------

  private setType(id: number, type: number): void {
    const r = id * ROW + R_META;
    this.row[r] = (this.row[r] & 0xff) | (type << 8);
  }

  /**
   * A new key that probe() just missed, with a record of `size` bytes holding the header and the key
   * (the caller writes the value length and the value). Leaves rb/ro at the record.
   */
  private insert(k: Uint8Array, ks: number, ke: number, size: number): number {
    const h = this.lastHash;
    if (2 * (this.count + 1) > this.mask + 1) {
      this.grow();
      // The empty slot probe() found was in the old table: find the new one.
      let p = h & this.mask;
      while (this.tab[2 * p + 1] !== 0) p = (p + 1) & this.mask;
      this.slot = p;
    }
    const id = this.newId();
    this.deadline[id] = 0;
    this.row[id * ROW + R_META] = T_NONE << 8;
    const ref = this.place(id, size);
    const klen = ke - ks;
    wr32(this.rb, this.ro + H_ID, id);
    wr32(this.rb, this.ro + H_KLEN, klen);
    copyBytes(k, ks, this.rb, this.ro + HDR, klen);
    this.tab[2 * this.slot] = h;
    this.tab[2 * this.slot + 1] = ref;
    this.count++;
    return id;
  }

  private newId(): number {
    if (this.freeIds.length > 0) return this.freeIds.pop() as number;
    if (this.nextId === this.deadline.length) {
      const n = this.deadline.length * 2;
      const row = new Int32Array(n * ROW);
      row.set(this.row);
      this.row = row;
      const deadline = new Float64Array(n);
      deadline.set(this.deadline);
      this.deadline = deadline;
    }
    return this.nextId++;
  }

  /** Double the slots and put every entry back by its stored hash (no key is hashed again). */
  private grow(): void {
    const old = this.tab;
    const cap = (this.mask + 1) * 2;
    const tab = new Int32Array(2 * cap);
    const mask = cap - 1;
    for (let p = 0; p < old.length; p += 2) {
      const ref = old[p + 1];
      if (ref === 0) continue;
      const h = old[p];
      let q = h & mask;
      while (tab[2 * q + 1] !== 0) q = (q + 1) & mask;
      tab[2 * q] = h;
      tab[2 * q + 1] = ref;
    }
    this.tab = tab;
    this.mask = mask;
  }

  /** Give `id` a record of `size` bytes (contents unset): sets its row, points rb/ro at it, returns its ref. */
  private place(id: number, size: number): number {
    const r = id * ROW;
    const type = this.row[r + R_META] >>> 8;
    let ref = 0;
    if (size <= MAX_SMALL) {
      const c = CLASS_OF[(size + 7) >> 3];
      const loc = this.alloc(c);
      if (loc >= 0) {
        ref = loc + 1;
        this.row[r + R_META] = c | (type << 8);
      }
    }
    if (ref === 0) {
      this.bigs[id] = Buffer.allocUnsafe(size);
      ref = -id - 1;
      this.row[r + R_META] = BIG | (type << 8);
    }
    this.row[r + R_REF] = ref;
    this.at(ref);
    return ref;
  }

  /** A place for a record of class `c`, or -1 when the arena is at its slab limit. */
  private alloc(c: number): number {
    const free = this.free[c];
    if (free.length > 0) return free.pop() as number;
    const size = CLASS_SIZE[c];
    if (this.bump[c] + size > this.bumpEnd[c]) {
      if (this.slabs.length >= MAX_SLABS) return -1;
      const slab = this.slabs.length;
      this.slabs.push(Buffer.allocUnsafe(SLAB_SIZE));
      this.slabCls[slab] = c;
      this.bump[c] = slab << SLAB_BITS;
      this.bumpEnd[c] = (slab << SLAB_BITS) + Math.floor(SLAB_SIZE / size) * size;
    }
    const at = this.bump[c];
    this.bump[c] += size;
    return at;
  }

  private unplace(id: number): void {
    const r = id * ROW;
    const c = this.row[r + R_META] & 0xff;
    if (c === BIG) this.bigs[id] = undefined;
    else this.free[c].push(this.row[r + R_REF] - 1);
  }

  /** Whether the record probe() just found (at rb/ro, in `slot`) can take `size` bytes in place. */
  private fits(size: number): boolean {
    const ref = this.tab[2 * this.slot + 1];
    if (ref > 0) return size <= MAX_SMALL && CLASS_OF[(size + 7) >> 3] === this.slabCls[(ref - 1) >>> SLAB_BITS];
    // A big record is kept while the new size fits and wastes at most half of it.
    const cap = this.rb.length;
    return size <= cap && size * 2 >= cap;
  }

  /**
   * Move the record of `id` (found by the probe() just before: rb/ro point at it, `slot` is its slot)
   * to a new one of `size` bytes, keeping its header and key. Leaves rb/ro at the new record.
   */
  private resize(id: number, size: number): void {
    const r = id * ROW;
    const c = this.row[r + R_META] & 0xff;
    const oldRef = this.row[r + R_REF];
    const oldBuf = this.rb;
    const oldOff = this.ro;
    const keep = HDR + rd32(oldBuf, oldOff + H_KLEN);
    if (c !== BIG) this.free[c].push(oldRef - 1);
    else this.bigs[id] = undefined; // place() may put a new big record here
    const ref = this.place(id, size);
    copyBytes(oldBuf, oldOff, this.rb, this.ro, keep);
    this.tab[2 * this.slot + 1] = ref;
  }
}
