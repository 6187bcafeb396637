/**
 * Memory shared between isolates: the threads of one process and the processes of a prefork server.
 *
 * A JavaScript heap belongs to one isolate, and a SharedArrayBuffer can only travel by postMessage
 * (which a thread parked in read(2) never reads) and never to another process. A memfd can: it is an
 * anonymous file (memfd_create(2)), sized with ftruncate(2) (sparse: pages are allocated when first
 * written), which a process maps once by its fd number (its threads find the mapping's address, see
 * mapShm) and a child process maps by the fd it inherits (spawn's stdio array). Every mapping is
 * MAP_SHARED, so all see the same pages.
 *
 * koffi.view() hands back a plain ArrayBuffer over the mapping; Atomics work on it (ECMAScript allows
 * them on non-shared buffers, and V8 emits the same locked instructions), Atomics.wait does not.
 */
import * as ffi from './ffi.js';
import { koffi } from './ffi.js';
import { MAP_SHARED, PROT_READ, PROT_WRITE } from './constants.js';

const MFD_CLOEXEC = 1;

/** A new memfd of `size` bytes (all zero). Close-on-exec: a child gets it only when passed on purpose. */
export function createShm(name: string, size: number): number {
  const fd = ffi.memfdCreate(name, MFD_CLOEXEC);
  try {
    ffi.ftruncate(fd, size);
  } catch (e) {
    ffi.close(fd);
    throw e;
  }
  return fd;
}

/**
 * Map `size` bytes of the memfd `fd`, shared, for the life of the process: once per process. The
 * threads of a process share its address space, so the first to map it leaves the address in the
 * environment (IOLAB_SHM_<fd> = pid:address:size; the threads engine's threads share process.env) and
 * the others view the same mapping: one mapping, whose pages RSS counts once, instead of one per
 * thread counted as many times. A child process inherits the variable with its parent's pid, and maps
 * the fd it was given for itself. The fd must stay open for the life of the process (its number is
 * the mapping's name here).
 */
export function mapShm(fd: number, size: number): ArrayBuffer {
  const key = `IOLAB_SHM_${fd}`;
  const at = process.env[key]?.split(':');
  let p: unknown;
  if (at !== undefined && Number(at[0]) === process.pid && Number(at[2]) === size) {
    p = koffi.decode(new BigUint64Array([BigInt(at[1]!)]), 'void *');
  } else {
    p = ffi.mmap(null, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    process.env[key] = `${process.pid}:${koffi.address(p)}:${size}`;
  }
  const region = koffi.view(p, size) as ArrayBuffer;
  fdOf.set(region, fd);
  return region;
}

const fdOf = new WeakMap<ArrayBufferLike, number>();
const FALLOC_FL_KEEP_SIZE = 1;
const FALLOC_FL_PUNCH_HOLE = 2;
const PAGE = 4096;

/**
 * Give the pages of `region` from byte `from` on back to the kernel (fallocate(2) punching a hole in
 * the memfd: every mapping then reads zeros there, and the memory is free). A region that is not a
 * mapped memfd (a SharedArrayBuffer in tests) is left as it is.
 */
export function releaseShm(region: ArrayBufferLike, from: number): void {
  const fd = fdOf.get(region);
  if (fd === undefined) return;
  const start = Math.ceil(from / PAGE) * PAGE;
  if (start < region.byteLength) ffi.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, start, region.byteLength - start);
}
