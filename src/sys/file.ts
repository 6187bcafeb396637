/**
 * Files, for apps that serve them (apps/static.ts) and engines that send them (engines/filebody.ts):
 * open without following the path out of a root, size and type through statx(2), and the two ways a
 * file reaches a socket — copied through user space (pread + write) or not at all (sendfile, splice).
 */
import koffi from 'koffi';
import * as ffi from './ffi.js';
import { assertLayout } from './structs.js';

export const AT_FDCWD = -100, AT_EMPTY_PATH = 0x1000;
export const STATX_TYPE = 0x1, STATX_MODE = 0x2, STATX_MTIME = 0x40, STATX_SIZE = 0x200;
export const S_IFMT = 0o170000, S_IFREG = 0o100000, S_IFDIR = 0o040000;
/** include/uapi/asm-generic/fcntl.h; O_NOFOLLOW refuses a symlink as the last component. */
export const O_NOFOLLOW = 0o400000;
export const SPLICE_F_MOVE = 1, SPLICE_F_NONBLOCK = 2, SPLICE_F_MORE = 4;

// include/uapi/linux/stat.h: struct statx is the same on every architecture (struct stat is not,
// which is why fstat(2) is not used here).
const statx_timestamp = koffi.struct('iolab_statx_timestamp', { tv_sec: 'int64', tv_nsec: 'uint32', __reserved: 'int32' });
export const statx_struct = koffi.struct('iolab_statx', {
  stx_mask: 'uint32', stx_blksize: 'uint32', stx_attributes: 'uint64', stx_nlink: 'uint32', stx_uid: 'uint32',
  stx_gid: 'uint32', stx_mode: 'uint16', __spare0: 'uint16', stx_ino: 'uint64', stx_size: 'uint64', stx_blocks: 'uint64',
  stx_attributes_mask: 'uint64', stx_atime: statx_timestamp, stx_btime: statx_timestamp, stx_ctime: statx_timestamp,
  stx_mtime: statx_timestamp, stx_rdev_major: 'uint32', stx_rdev_minor: 'uint32', stx_dev_major: 'uint32',
  stx_dev_minor: 'uint32', __spare2: koffi.array('uint64', 14),
});
export const STATX_SIZE_BYTES = 256;
export const STATX = { stx_mask: 0, stx_mode: 28, stx_size: 40, stx_mtime: 112 } as const;
assertLayout('statx', statx_struct, STATX_SIZE_BYTES, STATX);

export interface FileInfo {
  size: number;
  /** S_IFREG, S_IFDIR ... (mode & S_IFMT). */
  type: number;
  mtimeMs: number;
}

const sx = Buffer.alloc(STATX_SIZE_BYTES);

/** Size, type and mtime of an open fd, or -errno. */
export function fileInfo(fd: number): FileInfo | number {
  const r = ffi.statx(fd, '', AT_EMPTY_PATH, STATX_TYPE | STATX_SIZE | STATX_MTIME, sx);
  if (r < 0) return r;
  return {
    size: Number(sx.readBigUInt64LE(STATX.stx_size)),
    type: sx.readUInt16LE(STATX.stx_mode) & S_IFMT,
    mtimeMs: Number(sx.readBigInt64LE(STATX.stx_mtime)) * 1000 + Math.floor(sx.readUInt32LE(STATX.stx_mtime + 8) / 1e6),
  };
}

/**
 * A file body on its way to a socket. `off` advances as bytes are taken by the socket; the engine
 * that holds it closes `fd` once `off === end` or the connection dies.
 */
export interface FileSend {
  fd: number;
  off: number;
  end: number;
}

/** One sendfile(2) offset, reused: the kernel reads and advances it (the file's own position is untouched). */
const offBuf = Buffer.alloc(8);

/**
 * Move up to `max` bytes of the file to `sock` without copying them through user space (sendfile(2):
 * page cache -> socket). Returns bytes sent or -errno (-EAGAIN when the socket is full).
 */
export function sendfileChunk(sock: number, f: FileSend, max: number): number {
  offBuf.writeUInt32LE(f.off % 0x100000000, 0);
  offBuf.writeUInt32LE(Math.floor(f.off / 0x100000000), 4);
  const n = ffi.sendfile(sock, f.fd, offBuf, Math.min(max, f.end - f.off));
  if (n > 0) f.off += n;
  return n;
}

/**
 * The copying way: pread(2) into `scratch`, write(2) to the socket. What the socket does not take is
 * read again next time (the page cache makes that cheap); nothing is buffered per connection.
 * Returns bytes sent or -errno; 0 when the file ended early (it was truncated under us).
 */
export function copyChunk(sock: number, f: FileSend, scratch: Buffer): number {
  const want = Math.min(scratch.length, f.end - f.off);
  const got = ffi.pread(f.fd, scratch, want, f.off);
  if (got <= 0) return got;
  const n = ffi.write(sock, scratch, got);
  if (n > 0) f.off += n;
  return n;
}
