/**
 * errno names and the error type every failed syscall becomes. Numbers are Linux's generic ones
 * (asm-generic/errno-base.h, errno.h), identical on x86_64 and aarch64.
 */
import koffi from 'koffi';

export const EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, EBADF = 9, ECHILD = 10, EAGAIN = 11,
  ENOMEM = 12, EACCES = 13, EFAULT = 14, EBUSY = 16, EEXIST = 17, EINVAL = 22, ENFILE = 23, EMFILE = 24,
  ENOSPC = 28, EPIPE = 32, ERANGE = 34, ENOSYS = 38, ENOTSOCK = 88, EOPNOTSUPP = 95, EADDRINUSE = 98,
  EADDRNOTAVAIL = 99, ENETUNREACH = 101, ECONNABORTED = 103, ECONNRESET = 104, ENOBUFS = 105,
  ENOTCONN = 107, ETIMEDOUT = 110, ECONNREFUSED = 111, EHOSTUNREACH = 113, EALREADY = 114,
  EINPROGRESS = 115, ECANCELED = 125;

const NAMES: Record<number, string> = {
  1: 'EPERM', 2: 'ENOENT', 3: 'ESRCH', 4: 'EINTR', 5: 'EIO', 9: 'EBADF', 10: 'ECHILD', 11: 'EAGAIN',
  12: 'ENOMEM', 13: 'EACCES', 14: 'EFAULT', 16: 'EBUSY', 17: 'EEXIST', 22: 'EINVAL', 23: 'ENFILE',
  24: 'EMFILE', 28: 'ENOSPC', 32: 'EPIPE', 34: 'ERANGE', 38: 'ENOSYS', 88: 'ENOTSOCK', 95: 'EOPNOTSUPP',
  98: 'EADDRINUSE', 99: 'EADDRNOTAVAIL', 101: 'ENETUNREACH', 103: 'ECONNABORTED', 104: 'ECONNRESET',
  105: 'ENOBUFS', 107: 'ENOTCONN', 110: 'ETIMEDOUT', 111: 'ECONNREFUSED', 113: 'EHOSTUNREACH',
  114: 'EALREADY', 115: 'EINPROGRESS', 125: 'ECANCELED',
};

/** Short hints for the errors a user can do something about. */
const HINTS: Record<string, string> = {
  EADDRINUSE: 'another process is listening on that port: pick another with --port, or stop it',
  EACCES: 'ports below 1024 need root or CAP_NET_BIND_SERVICE: use a port above 1024',
  EMFILE: 'the open-file limit was reached: raise it with `ulimit -n` or use more processes',
  ENFILE: 'the system-wide file table is full: close connections or raise fs.file-max',
  EADDRNOTAVAIL: 'that address is not on this machine (or local ports ran out)',
  ECONNREFUSED: 'nothing is listening there: start the server first',
};

export function errnoName(errno: number): string {
  return NAMES[errno] ?? `E${errno}`;
}

/** A failed syscall: which call, the errno and its name (`code`, like Node's own errors). */
export class SyscallError extends Error {
  readonly syscall: string;
  readonly errno: number;
  readonly code: string;
  constructor(syscall: string, errno: number, detail?: string) {
    const code = errnoName(errno);
    const hint = HINTS[code];
    super(`${syscall}() failed: ${code}${detail ? ` (${detail})` : ''}${hint ? `: ${hint}` : ''}`);
    this.name = 'SyscallError';
    this.syscall = syscall;
    this.errno = errno;
    this.code = code;
  }
}

/** The one place errno is read. */
export function lastErrno(): number {
  return koffi.errno();
}
