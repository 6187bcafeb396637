/**
 * Sending a file body (FeedResult.file) from a readiness loop: as much as the socket takes now, by
 * sendfile(2) or by pread(2) + write(2) (Service.sendfile), never blocking. Shared by the reactor
 * engines; the blocking engines call the same chunk functions on blocking sockets.
 */
import { EAGAIN } from '../sys/errno.js';
import { copyChunk, sendfileChunk, type FileSend } from '../sys/file.js';

/**
 * Bytes asked of one sendfile(2) (nginx's sendfile_max_chunk is 2 MB). The pump still goes on to
 * EAGAIN: an edge-triggered poller reports writable again only after the socket has been full.
 */
const SENDFILE_MAX = 2 * 1024 * 1024;
/** Scratch for the copying way: one per thread, like the read buffer. */
export const COPY_CHUNK = 64 * 1024;

export const FILE_DONE = 1, FILE_BLOCKED = 0;

/**
 * Send what the socket takes. FILE_DONE: every byte sent (the caller closes f.fd); FILE_BLOCKED: the
 * socket is full: wait for writable and call again; -errno: the connection
 * failed, or -EIO when the file ended before its Content-Length.
 * `sent` receives the bytes moved (stats).
 */
export function pumpFile(sock: number, f: FileSend, zeroCopy: boolean, scratch: Buffer, sent: { n: number }): number {
  let moved = 0;
  while (f.off < f.end) {
    const n = zeroCopy ? sendfileChunk(sock, f, SENDFILE_MAX) : copyChunk(sock, f, scratch);
    if (n > 0) {
      moved += n;
      continue;
    }
    sent.n += moved;
    if (n === -EAGAIN) return FILE_BLOCKED;
    return n === 0 ? -5 /* EIO: truncated under us */ : n;
  }
  sent.n += moved;
  return FILE_DONE;
}
