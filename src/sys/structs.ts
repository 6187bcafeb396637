/**
 * Struct layouts, declared once with koffi and asserted at module load against the sizes and
 * offsets of the kernel ABI (as libuv pins its io_uring structs with static asserts). Code that
 * packs these structs into Buffers by hand uses the offsets exported here, never literals.
 */
import koffi from 'koffi';

function assertLayout(name: string, type: ReturnType<typeof koffi.struct>, size: number, offsets: Record<string, number>): void {
  const got = koffi.sizeof(type);
  if (got !== size) throw new Error(`struct ${name}: size ${got}, the kernel ABI says ${size}`);
  for (const [field, off] of Object.entries(offsets)) {
    const o = koffi.offsetof(type, field);
    if (o !== off) throw new Error(`struct ${name}: ${field} at ${o}, the kernel ABI says ${off}`);
  }
}

export const sockaddr_in = koffi.struct('iolab_sockaddr_in', {
  sin_family: 'uint16',
  sin_port: 'uint16', // network byte order
  sin_addr: 'uint32', // network byte order
  sin_zero: koffi.array('uint8', 8),
});
assertLayout('sockaddr_in', sockaddr_in, 16, { sin_family: 0, sin_port: 2, sin_addr: 4 });

export const sockaddr_in6 = koffi.struct('iolab_sockaddr_in6', {
  sin6_family: 'uint16',
  sin6_port: 'uint16',
  sin6_flowinfo: 'uint32',
  sin6_addr: koffi.array('uint8', 16),
  sin6_scope_id: 'uint32',
});
assertLayout('sockaddr_in6', sockaddr_in6, 28, { sin6_family: 0, sin6_port: 2, sin6_addr: 8, sin6_scope_id: 24 });

/** sockaddr_storage is 128 bytes; large enough for either family. */
export const SOCKADDR_STORAGE = 128;

// epoll_event is __attribute__((packed)) on x86_64 only (include/uapi/linux/eventpoll.h, EPOLL_PACKED).
const EPOLL_PACKED = process.arch === 'x64';
export const epoll_event = EPOLL_PACKED
  ? koffi.pack('iolab_epoll_event', { events: 'uint32', data: 'uint64' })
  : koffi.struct('iolab_epoll_event', { events: 'uint32', data: 'uint64' });
export const EPOLL_EVENT_SIZE = EPOLL_PACKED ? 12 : 16;
export const EPOLL_EVENT_DATA = EPOLL_PACKED ? 4 : 8;
assertLayout('epoll_event', epoll_event, EPOLL_EVENT_SIZE, { events: 0, data: EPOLL_EVENT_DATA });

export const pollfd = koffi.struct('iolab_pollfd', { fd: 'int32', events: 'int16', revents: 'int16' });
export const POLLFD_SIZE = 8;
assertLayout('pollfd', pollfd, POLLFD_SIZE, { fd: 0, events: 4, revents: 6 });

export const timespec = koffi.struct('iolab_timespec', { tv_sec: 'int64', tv_nsec: 'int64' });
assertLayout('timespec', timespec, 16, { tv_sec: 0, tv_nsec: 8 });
export const timeval = koffi.struct('iolab_timeval', { tv_sec: 'int64', tv_usec: 'int64' });
assertLayout('timeval', timeval, 16, { tv_sec: 0, tv_usec: 8 });

export const rlimit = koffi.struct('iolab_rlimit', { rlim_cur: 'uint64', rlim_max: 'uint64' });
assertLayout('rlimit', rlimit, 16, { rlim_cur: 0, rlim_max: 8 });

export const iovec = koffi.struct('iolab_iovec', { iov_base: 'void *', iov_len: 'size_t' });
export const IOVEC_SIZE = 16;
assertLayout('iovec', iovec, IOVEC_SIZE, { iov_base: 0, iov_len: 8 });

export const linger = koffi.struct('iolab_linger', { l_onoff: 'int32', l_linger: 'int32' });
assertLayout('linger', linger, 8, { l_onoff: 0, l_linger: 4 });

/** glibc's fd_set: FD_SETSIZE bits. */
export const FD_SET_BYTES = 1024 / 8;

// ---- POSIX AIO (glibc) ----
// struct sigevent, LP64 glibc (bits/types/struct_sigevent.h): sigev_value, sigev_signo, sigev_notify,
// then a union padded to __SIGEV_MAX_SIZE = 64 bytes.
export const sigevent = koffi.struct('iolab_sigevent', {
  sigev_value: 'uint64',
  sigev_signo: 'int32',
  sigev_notify: 'int32',
  _sigev_un: koffi.array('int32', 12),
});
assertLayout('sigevent', sigevent, 64, { sigev_value: 0, sigev_signo: 8, sigev_notify: 12 });

// struct aiocb, glibc's layout (rt/aio.h; bits/types/struct_aiocb.h on 2.36). The public fields come
// first, then glibc's internals: __error_code and __return_value are what aio_error() and aio_return()
// read. Checked on x86_64 glibc 2.36 with offsetof() against /usr/include/aio.h: 168 bytes.
export const aiocb = koffi.struct('iolab_aiocb', {
  aio_fildes: 'int32',
  aio_lio_opcode: 'int32',
  aio_reqprio: 'int32',
  aio_buf: 'void *',
  aio_nbytes: 'size_t',
  aio_sigevent: sigevent,
  __next_prio: 'void *',
  __abs_prio: 'int32',
  __policy: 'int32',
  __error_code: 'int32',
  __return_value: 'int64', // ssize_t
  aio_offset: 'int64', // off_t (64-bit on LP64, so no __pad)
  __glibc_reserved: koffi.array('uint8', 32),
});
export const AIOCB_SIZE = 168;
export const AIOCB_FILDES = 0, AIOCB_LIO_OPCODE = 4, AIOCB_REQPRIO = 8, AIOCB_BUF = 16, AIOCB_NBYTES = 24,
  AIOCB_SIGEVENT = 32, AIOCB_ERROR_CODE = 112, AIOCB_RETURN_VALUE = 120, AIOCB_OFFSET = 128;
/** sigev_notify inside aio_sigevent. */
export const AIOCB_SIGEV_NOTIFY = AIOCB_SIGEVENT + 12;
assertLayout('aiocb', aiocb, AIOCB_SIZE, {
  aio_fildes: AIOCB_FILDES, aio_lio_opcode: AIOCB_LIO_OPCODE, aio_reqprio: AIOCB_REQPRIO, aio_buf: AIOCB_BUF,
  aio_nbytes: AIOCB_NBYTES, aio_sigevent: AIOCB_SIGEVENT, __error_code: AIOCB_ERROR_CODE,
  __return_value: AIOCB_RETURN_VALUE, aio_offset: AIOCB_OFFSET,
});

// struct aioinit (glibc rt/aio.h, a GNU extension): eight ints; aio_init() reads aio_threads, aio_num
// and aio_idle_time.
export const aioinit = koffi.struct('iolab_aioinit', {
  aio_threads: 'int32',
  aio_num: 'int32',
  aio_locks: 'int32',
  aio_usedba: 'int32',
  aio_debug: 'int32',
  aio_numusers: 'int32',
  aio_idle_time: 'int32',
  aio_reserved: 'int32',
});
export const AIOINIT_SIZE = 32;
assertLayout('aioinit', aioinit, AIOINIT_SIZE, { aio_threads: 0, aio_num: 4, aio_idle_time: 24 });

/** Exported so the io_uring layouts (sys/io_uring.ts) are pinned by the same check. */
export { assertLayout };
