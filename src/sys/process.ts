/** Process-level calls: resource limits, CPU affinity, sleeping in the kernel. */
import * as f from './ffi.js';
import { RLIMIT_NOFILE } from './constants.js';
import { EINTR } from './errno.js';

export interface RLimit {
  soft: number;
  hard: number;
}

export function getrlimit(resource = RLIMIT_NOFILE): RLimit {
  const b = Buffer.alloc(16);
  f.getrlimitRaw(resource, b);
  return { soft: Number(b.readBigUInt64LE(0)), hard: Number(b.readBigUInt64LE(8)) };
}

export function setrlimit(limit: RLimit, resource = RLIMIT_NOFILE): void {
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(BigInt(limit.soft), 0);
  b.writeBigUInt64LE(BigInt(limit.hard), 8);
  f.setrlimitRaw(resource, b);
}

/** Raise the soft open-file limit to the hard limit (as nginx's worker_rlimit_nofile would). */
export function raiseNofile(): RLimit {
  const l = getrlimit();
  if (l.soft < l.hard) setrlimit({ soft: l.hard, hard: l.hard });
  return getrlimit();
}

/** Pin the calling thread (pid 0) or a process to the given CPUs. */
export function setAffinity(cpus: number[], pid = 0): void {
  const mask = Buffer.alloc(128); // cpu_set_t: 1024 bits
  for (const cpu of cpus) mask[cpu >> 3]! |= 1 << (cpu & 7);
  f.schedSetaffinityRaw(pid, mask.length, mask);
}

const req = Buffer.alloc(16);
const rem = Buffer.alloc(16);
/** A real blocking sleep in the kernel (nanosleep), holding the calling thread for the whole time. */
export function nanosleep(ms: number): void {
  const ns = Math.round(ms * 1e6);
  req.writeBigInt64LE(BigInt(Math.floor(ns / 1e9)), 0);
  req.writeBigInt64LE(BigInt(ns % 1e9), 8);
  // On EINTR, sleep what remains (the kernel wrote it to `rem`) rather than start over.
  while (f.nanosleepRaw(req, rem) === -EINTR) rem.copy(req);
}
