/**
 * Latency histograms: HdrHistogram (hdr-histogram-js), values in microseconds, 3 significant
 * digits, 64-bit counts. Processes ship them to the parent in HdrHistogram's compressed encoding
 * (the same bytes the Java and C libraries read), and the parent adds them: the merge is exact,
 * bucket by bucket, not an average of percentiles.
 */
import hdr from 'hdr-histogram-js';
import type { Histogram } from 'hdr-histogram-js';

export type { Histogram };

/** One hour in microseconds: anything slower is clamped (a request times out long before). */
export const HIGHEST_US = 3_600_000_000;

export function newHistogram(): Histogram {
  return hdr.build({
    bitBucketSize: 64,
    autoResize: false,
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_US,
    numberOfSignificantValueDigits: 3,
  });
}

export function encodeHistogram(h: Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

export function decodeHistogram(s: string): Histogram {
  return hdr.decodeFromCompressedBase64(s, 64, false);
}

/** Sum of encoded histograms (exact). */
export function mergeEncoded(parts: readonly string[]): Histogram {
  const out = newHistogram();
  for (const p of parts) {
    const h = decodeHistogram(p);
    out.add(h);
  }
  return out;
}

/** Percentiles in integer microseconds, keyed as in the JSON schema (docs/load-json.md). */
export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  stdev: number;
  p50: number;
  p75: number;
  p90: number;
  p99: number;
  'p99.9': number;
  'p99.99': number;
  max: number;
}

export function summarize(h: Histogram): LatencySummary {
  const n = h.totalCount;
  if (n === 0) return { count: 0, min: 0, mean: 0, stdev: 0, p50: 0, p75: 0, p90: 0, p99: 0, 'p99.9': 0, 'p99.99': 0, max: 0 };
  const q = (p: number): number => h.getValueAtPercentile(p);
  return {
    count: n,
    min: h.minNonZeroValue === Number.MAX_SAFE_INTEGER ? 0 : h.minNonZeroValue,
    mean: Math.round(h.mean * 10) / 10,
    stdev: Math.round(h.stdDeviation * 10) / 10,
    p50: q(50),
    p75: q(75),
    p90: q(90),
    p99: q(99),
    'p99.9': q(99.9),
    'p99.99': q(99.99),
    max: h.maxValue,
  };
}

/** Latencies below this many µs (65 ms) are counted in a plain array first. */
const DIRECT = 65_536;

/**
 * The hot-path front of a latency histogram. HdrHistogram's recordValue costs ~85 ns in JS (index
 * arithmetic, min/max upkeep); a load loop records one value per reply. Values below DIRECT µs are
 * counted with one array increment instead, and `flush()` moves those counts into the HDR histogram
 * with recordValueWithCount: the same values counted the same number of times, so the histogram is
 * exactly what recording each value would have made. Slower values go to HDR at once.
 */
export class LatencyRecorder {
  readonly total: Histogram = newHistogram();
  /** Since the last takeInterval(), for an HDR interval log (null when none is kept). */
  private readonly interval: Histogram | null;
  private readonly direct = new Float64Array(DIRECT);
  private lo = DIRECT;
  private hi = -1;

  constructor(intervals = false) {
    this.interval = intervals ? newHistogram() : null;
  }

  record(us: number): void {
    if (us < DIRECT) {
      this.direct[us]!++;
      if (us < this.lo) this.lo = us;
      if (us > this.hi) this.hi = us;
      return;
    }
    const v = us > HIGHEST_US ? HIGHEST_US : us;
    this.total.recordValue(v);
    this.interval?.recordValue(v);
  }

  flush(): Histogram {
    const d = this.direct, iv = this.interval, t = this.total;
    for (let i = this.lo; i <= this.hi; i++) {
      const c = d[i]!;
      if (c === 0) continue;
      t.recordValueWithCount(i, c);
      iv?.recordValueWithCount(i, c);
      d[i] = 0;
    }
    this.lo = DIRECT;
    this.hi = -1;
    return t;
  }

  /** The interval so far, encoded; starts a new one. */
  takeInterval(): string | null {
    if (this.interval === null) return null;
    this.flush();
    const s = encodeHistogram(this.interval);
    this.interval.reset();
    return s;
  }
}
