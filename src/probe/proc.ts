/**
 * /proc sampling of a process tree: the server, its threads and its children. Reading a few small
 * /proc files costs microseconds and takes no lock the server contends for, so sampling does not
 * disturb the run. Every figure is summed over the tree (nginx master + worker, prefork children).
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

/** Clock ticks per second for /proc/PID/stat times (sysconf(_SC_CLK_TCK) is 100 on Linux). */
const CLK_TCK = 100;

export interface ProcSample {
  /** ms since the epoch when taken */
  time: number;
  pids: number[];
  rssBytes: number;
  vmBytes: number;
  threads: number;
  /** Context switches summed over live threads (a thread that exited takes its counts with it). */
  voluntaryCtx: number;
  involuntaryCtx: number;
  cpuUserS: number;
  cpuSysS: number;
  fds: number;
}

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function field(status: string, name: string): number {
  const i = status.indexOf(`${name}:`);
  if (i < 0) return 0;
  return parseInt(status.slice(i + name.length + 1).trimStart(), 10) || 0;
}

/** The pid and all its descendants (children of every thread), depth first. */
export function processTree(root: number): number[] {
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    if (read(`/proc/${pid}/stat`) === null) continue;
    out.push(pid);
    let tids: string[] = [];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      /* gone */
    }
    for (const tid of tids) {
      const kids = read(`/proc/${pid}/task/${tid}/children`);
      if (kids) for (const k of kids.trim().split(/\s+/)) if (k) stack.push(Number(k));
    }
  }
  return out;
}

export function sampleProcess(pid: number): Omit<ProcSample, 'time' | 'pids'> | null {
  const status = read(`/proc/${pid}/status`);
  const stat = read(`/proc/${pid}/stat`);
  if (status === null || stat === null) return null;
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  let vol = 0, invol = 0;
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    /* gone */
  }
  for (const tid of tids) {
    const ts = read(`/proc/${pid}/task/${tid}/status`);
    if (ts === null) continue;
    vol += field(ts, 'voluntary_ctxt_switches');
    invol += field(ts, 'nonvoluntary_ctxt_switches');
  }
  let fds = 0;
  try {
    fds = readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    /* not ours to read */
  }
  return {
    rssBytes: field(status, 'VmRSS') * 1024,
    vmBytes: field(status, 'VmSize') * 1024,
    threads: field(status, 'Threads'),
    voluntaryCtx: vol,
    involuntaryCtx: invol,
    cpuUserS: Number(f[11]) / CLK_TCK,
    cpuSysS: Number(f[12]) / CLK_TCK,
    fds,
  };
}

/** One sample of the whole tree under `root`. */
export function sampleTree(root: number): ProcSample {
  const pids = processTree(root);
  const s: ProcSample = { time: Date.now(), pids, rssBytes: 0, vmBytes: 0, threads: 0, voluntaryCtx: 0, involuntaryCtx: 0, cpuUserS: 0, cpuSysS: 0, fds: 0 };
  for (const pid of pids) {
    const p = sampleProcess(pid);
    if (!p) continue;
    s.rssBytes += p.rssBytes;
    s.vmBytes += p.vmBytes;
    s.threads += p.threads;
    s.voluntaryCtx += p.voluntaryCtx;
    s.involuntaryCtx += p.involuntaryCtx;
    s.cpuUserS += p.cpuUserS;
    s.cpuSysS += p.cpuSysS;
    s.fds += p.fds;
  }
  return s;
}

export interface ProcDelta {
  seconds: number;
  cpuUserS: number;
  cpuSysS: number;
  voluntaryCtx: number;
  involuntaryCtx: number;
  rssBytes: number;
  threads: number;
}

/** What changed between two samples of the same tree (the measured window). */
export function delta(a: ProcSample, b: ProcSample): ProcDelta {
  return {
    seconds: (b.time - a.time) / 1000,
    cpuUserS: b.cpuUserS - a.cpuUserS,
    cpuSysS: b.cpuSysS - a.cpuSysS,
    voluntaryCtx: b.voluntaryCtx - a.voluntaryCtx,
    involuntaryCtx: b.involuntaryCtx - a.involuntaryCtx,
    rssBytes: b.rssBytes - a.rssBytes,
    threads: b.threads - a.threads,
  };
}

export interface SockStat {
  tcpInUse: number;
  tcpOrphan: number;
  tcpTimeWait: number;
  /** Pages of TCP buffer memory, in bytes. */
  tcpMemBytes: number;
}

/** /proc/net/sockstat: system-wide TCP sockets and their buffer memory. */
export function sockstat(): SockStat {
  const t = read('/proc/net/sockstat') ?? '';
  const m = /TCP: inuse (\d+) orphan (\d+) tw (\d+) alloc \d+ mem (\d+)/.exec(t);
  return m
    ? { tcpInUse: Number(m[1]), tcpOrphan: Number(m[2]), tcpTimeWait: Number(m[3]), tcpMemBytes: Number(m[4]) * 4096 }
    : { tcpInUse: 0, tcpOrphan: 0, tcpTimeWait: 0, tcpMemBytes: 0 };
}

/**
 * Kernel slab memory that TCP connections hold (socket, inode, file, dentry, epoll item), from
 * /proc/slabinfo (readable by root; 0 otherwise). Idle sockets hold no buffer pages, so sockstat's
 * `mem` misses this part of a connection's cost. A system-wide sum: for a cost per connection use
 * socketSlabPerConn() (below), which this sum's changes cannot tell reliably.
 */
export function socketSlabBytes(): number {
  const sizes = slabSizes(true);
  let total = 0;
  if (sizes) for (const name of SLABS) total += sizes.get(name) ?? 0;
  return total;
}
const SLABS = new Set(['TCP', 'TCPv6', 'sock_inode_cache', 'filp', 'dentry', 'eventpoll_epi', 'tcp_bind_bucket']);

/** /proc/slabinfo: each cache's object size (or, with `inUse`, active_objs x objsize); null where unreadable. */
function slabSizes(inUse = false): Map<string, number> | null {
  const text = read('/proc/slabinfo');
  if (text === null) return null;
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const f = line.split(/\s+/);
    if (f.length < 4 || line.startsWith('#') || line.startsWith('slabinfo')) continue;
    out.set(f[0]!, inUse ? Number(f[1]) * Number(f[3]) : Number(f[3]));
  }
  return out;
}

/**
 * The slab memory one server-side TCP connection holds on this kernel: its sock (the TCP or TCPv6
 * cache), its socket inode, its file and its dentry (one object each: every socket fd is made of
 * them, sock_alloc_file()), at the object sizes /proc/slabinfo gives; plus `epitemsPerConn` epoll
 * items (eventpoll_epi) where the server watches its connections with epoll (epollItems() counts them).
 * Null where /proc/slabinfo is not readable (it is root's).
 *
 * Why not the change in the caches' active objects while connections are held: that is system-wide
 * and SLUB counts per-CPU slabs as wholly in use, so other sockets freed meanwhile and the state of the
 * per-CPU slabs moved it by thousands of objects either way (a busypoll server holding 1,000 sockets:
 * sock_inode_cache "active" fell by 4,332), and the quick tour once printed 0 B per connection.
 */
export function socketSlabPerConn(epitemsPerConn: number, v6 = false): number | null {
  const sizes = slabSizes();
  if (!sizes) return null;
  const sock = sizes.get(v6 ? 'TCPv6' : 'TCP');
  if (sock === undefined) return null;
  const one = (name: string): number => sizes.get(name) ?? 0;
  return sock + one('sock_inode_cache') + one('filp') + one('dentry') + epitemsPerConn * one('eventpoll_epi');
}

/**
 * epoll items over the epoll instances of a process tree: one "tfd:" line per watched fd in
 * /proc/PID/fdinfo of each fd that is an `anon_inode:[eventpoll]` (proc(5)). Threads share their
 * process's fd table, so each process is read once.
 */
export function epollItems(root: number): number {
  let n = 0;
  for (const pid of processTree(root)) {
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link = '';
      try {
        link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (link !== 'anon_inode:[eventpoll]') continue;
      const info = read(`/proc/${pid}/fdinfo/${fd}`);
      if (info === null) continue;
      for (let i = info.indexOf('tfd:'); i >= 0; i = info.indexOf('tfd:', i + 4)) n++;
    }
  }
  return n;
}

/** Samples a tree every `intervalMs` and keeps the peak RSS and thread count. */
export class Sampler {
  readonly samples: ProcSample[] = [];
  peakRss = 0;
  peakThreads = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly root: number) {}

  take(): ProcSample {
    const s = sampleTree(this.root);
    this.samples.push(s);
    if (s.rssBytes > this.peakRss) this.peakRss = s.rssBytes;
    if (s.threads > this.peakThreads) this.peakThreads = s.threads;
    return s;
  }

  start(intervalMs = 500): this {
    this.take();
    this.timer = setInterval(() => this.take(), intervalMs);
    this.timer.unref();
    return this;
  }

  stop(): ProcSample {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    return this.take();
  }
}
