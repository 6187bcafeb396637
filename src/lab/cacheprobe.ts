/**
 * How much of the last-level cache this machine is letting us have, right now.
 *
 * A dependent-load chase (each load's address is the value of the one before, so the CPU cannot
 * overlap them) over a random cycle of cache lines in a buffer a few MB large: nanoseconds per load
 * is the latency of wherever those lines live. With the L3 to ourselves a 6 MB buffer stays in it
 * (~15-20 ns a load on the test machine, whose L3 is 32 MB); when other tenants of a shared host evict
 * it, the same chase goes to DRAM (~100-150 ns). Measured there, second by second, with nothing of
 * ours running, it moved between the two many times a minute.
 *
 * Why a server benchmark cares: an engine whose hot state is one isolate (epoll, io_uring) fits in the
 * L2 and barely notices (7 -> 8-10 µs per request), but a thread- or process-per-connection server runs
 * 100 isolates in turn, each with its own compiled code and heap, and its per-request CPU followed
 * this probe by 3x (15-18 µs with the chase at ~17 ns, 36-57 µs with it at 100-150 ns): the "two
 * speeds" of PERFORMANCE.md. The bench scripts take it before and after each window, so a window
 * measured while a neighbour held the cache says so.
 *
 * Run it between windows, when the server is idle: the probe evicts what it displaces like any other
 * user of the cache.
 */

/** Ints per 64-byte cache line: the chain uses one int per line. */
const LINE_INTS = 16;

/**
 * The chain: `lines` cache lines linked in one random cycle (a[i * 16] holds the int offset of the
 * next line). Random so that no prefetcher can guess the next line; one cycle so that a chase of any
 * length visits every line before it repeats. Deterministic for a seed (a small LCG).
 */
export function buildChain(bytes: number, seed = 42): Int32Array {
  if (!Number.isFinite(bytes) || bytes < 128) throw new RangeError(`cache probe: bytes must be at least 128 (got ${bytes})`);
  const lines = Math.floor(bytes / 64);
  if (lines * LINE_INTS > 2 ** 30) throw new RangeError(`cache probe: ${bytes} bytes is too large for one chain`);
  const order = new Int32Array(lines);
  for (let i = 0; i < lines; i++) order[i] = i;
  let s = seed >>> 0;
  for (let i = lines - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  const a = new Int32Array(lines * LINE_INTS);
  for (let i = 0; i < lines; i++) a[order[i]! * LINE_INTS] = order[(i + 1) % lines]! * LINE_INTS;
  return a;
}

/** Follow the chain `loads` times from offset 0; returns where it ended (so the loop is not dead code). */
export function chase(chain: Int32Array, loads: number): number {
  let p = 0;
  for (let i = 0; i < loads; i++) p = chain[p]!;
  return p;
}

export interface CacheProbeOptions {
  /** Buffer size (default 6 MiB: inside a 32 MB L3 with room to spare, far outside any L2). */
  bytes?: number;
  /** Timed loads (default 500,000: ~10 ms when the cache is ours, ~75 ms when it is not). */
  loads?: number;
}

let cached: { bytes: number; chain: Int32Array } | null = null;

/**
 * Nanoseconds per dependent load over a `bytes` chain: one untimed pass to bring the chain in, then
 * `loads` timed loads. The chain is built once per size and kept (6 MiB).
 */
export function cacheProbe(opts: CacheProbeOptions = {}): number {
  const bytes = opts.bytes ?? 6 * 2 ** 20;
  const loads = opts.loads ?? 500_000;
  if (!Number.isInteger(loads) || loads < 1) throw new RangeError(`cache probe: loads must be a positive integer (got ${loads})`);
  if (cached === null || cached.bytes !== bytes) cached = { bytes, chain: buildChain(bytes) };
  const chain = cached.chain;
  let sink = chase(chain, chain.length / LINE_INTS);
  const t0 = process.hrtime.bigint();
  sink += chase(chain, loads);
  const ns = Number(process.hrtime.bigint() - t0) / loads;
  return sink === -1 ? NaN : ns; // never -1: offsets are >= 0; keeps `sink` live
}

/**
 * Which probe readings say the cache was contended: more than `factor` times the best reading of the
 * same run (the best is the cache as this machine gives it when nobody else wants it). Relative, so
 * the same rule holds on a machine with a smaller or larger L3.
 */
export function contended(readings: readonly number[], factor = 2): boolean[] {
  const above = contendedAbove(readings, factor);
  return readings.map((x) => Number.isFinite(x) && x > above);
}

/** The line contended() draws: `factor` times the best valid reading (Infinity when there is none). */
export function contendedAbove(readings: readonly number[], factor = 2): number {
  const ok = readings.filter((x) => Number.isFinite(x) && x > 0);
  return ok.length === 0 ? Infinity : factor * Math.min(...ok);
}

/** `n` probe readings `gapMs` apart: a few seconds of how steady this host's L3 is (iolab doctor). */
export async function sampleCache(n = 8, gapMs = 100, opts: CacheProbeOptions = {}): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, gapMs));
    out.push(cacheProbe(opts));
  }
  return out;
}
