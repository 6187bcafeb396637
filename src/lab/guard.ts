/**
 * The memory guard: a scenario may not take the host down. It samples the server's process tree
 * (RSS summed over every process) and the machine's MemAvailable every 100 ms, and trips when the
 * tree passes its share of RAM (default 50%) or the machine runs low (MemAvailable under 1 GiB or
 * 5%, whichever is larger). Tripping SIGKILLs the tree at once: thread-per-connection can grow by
 * gigabytes a second, so the guard acts first and the lab records "stopped by the guard at N
 * connections (X GB)".
 */
import { readFileSync } from 'node:fs';
import { processTree, sampleTree } from '../probe/index.js';

export interface GuardTrip {
  rssBytes: number;
  availableBytes: number;
  limitBytes: number;
  why: string;
}

export function memInfo(): { totalBytes: number; availableBytes: number } {
  const t = readFileSync('/proc/meminfo', 'utf8');
  const kb = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(t)?.[1] ?? 0) * 1024;
  return { totalBytes: kb('MemTotal'), availableBytes: kb('MemAvailable') };
}

export const gb = (b: number): string => `${(b / 2 ** 30).toFixed(1)} GB`;

export class MemoryGuard {
  readonly limitBytes: number;
  readonly floorBytes: number;
  private timer: NodeJS.Timeout | null = null;
  tripped: GuardTrip | null = null;
  peakRss = 0;

  constructor(share = 0.5) {
    const { totalBytes } = memInfo();
    this.limitBytes = Math.floor(totalBytes * share);
    this.floorBytes = Math.max(2 ** 30, totalBytes * 0.05);
  }

  /** Watch the tree under `pid` until stop(); `onTrip` runs once, after the tree is killed. */
  watch(pid: number, onTrip: (t: GuardTrip) => void = () => {}): this {
    this.stop();
    this.tripped = null;
    this.peakRss = 0;
    this.timer = setInterval(() => {
      const rss = sampleTree(pid).rssBytes;
      if (rss > this.peakRss) this.peakRss = rss;
      const { availableBytes } = memInfo();
      let why: string | null = null;
      if (rss > this.limitBytes) why = `server RSS ${gb(rss)} passed the guard's ${gb(this.limitBytes)}`;
      else if (availableBytes < this.floorBytes) why = `machine down to ${gb(availableBytes)} available`;
      if (why === null) return;
      for (const p of processTree(pid).reverse()) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      this.tripped = { rssBytes: rss, availableBytes, limitBytes: this.limitBytes, why };
      this.stop();
      onTrip(this.tripped);
    }, 100);
    this.timer.unref();
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
