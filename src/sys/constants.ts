/** Linux ABI constants (include/uapi/...; identical on x86_64 and aarch64 unless noted). */
export const AF_INET = 2, AF_INET6 = 10;
export const SOCK_STREAM = 1, SOCK_NONBLOCK = 0o4000, SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1, SO_REUSEADDR = 2, SO_ERROR = 4, SO_SNDBUF = 7, SO_RCVBUF = 8, SO_LINGER = 13,
  SO_REUSEPORT = 15;
export const IPPROTO_TCP = 6, TCP_NODELAY = 1, TCP_DEFER_ACCEPT = 9, IPPROTO_IPV6 = 41, IPV6_V6ONLY = 26;
export const SHUT_RD = 0, SHUT_WR = 1, SHUT_RDWR = 2;
export const F_GETFL = 3, F_SETFL = 4, O_NONBLOCK = 0o4000, O_RDONLY = 0, O_CLOEXEC = 0o2000000;
export const MSG_DONTWAIT = 0x40, MSG_NOSIGNAL = 0x4000;
/** More data follows (a file body after its head): the kernel holds a partial segment, as TCP_CORK does for one call. */
export const MSG_MORE = 0x8000;
export const EPOLL_CLOEXEC = 0o2000000;
export const EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2, EPOLL_CTL_MOD = 3;
export const EPOLLIN = 0x1, EPOLLPRI = 0x2, EPOLLOUT = 0x4, EPOLLERR = 0x8, EPOLLHUP = 0x10,
  EPOLLRDHUP = 0x2000, EPOLLEXCLUSIVE = 1 << 28, EPOLLONESHOT = 1 << 30, EPOLLET = 0x80000000;
export const POLLIN = 0x1, POLLPRI = 0x2, POLLOUT = 0x4, POLLERR = 0x8, POLLHUP = 0x10, POLLNVAL = 0x20,
  POLLRDHUP = 0x2000;
export const EFD_NONBLOCK = 0o4000, EFD_CLOEXEC = 0o2000000;
export const RLIMIT_NOFILE = 7;
export const PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20,
  MAP_POPULATE = 0x8000;
/** select(2)'s fd_set holds 1024 bits: glibc's FD_SETSIZE, fixed at compile time. */
export const FD_SETSIZE = 1024;
/**
 * include/uapi/linux/in.h: IPPROTO_IP (= SOL_IP) and IP_BIND_ADDRESS_NO_PORT (Linux 4.2). With the
 * option set, bind() to a source address leaves the port to connect(), which picks one unique per
 * 4-tuple: ~28k connections per (source, destination) pair instead of ~28k per source address.
 */
export const IPPROTO_IP = 0, IP_BIND_ADDRESS_NO_PORT = 24;
/**
 * Blocking engines (threads, prefork). asm-generic/socket.h: SO_RCVTIMEO_OLD / SO_SNDTIMEO_OLD take a
 * struct timeval; on 64-bit x86_64 and aarch64 that is already the 64-bit time_t layout. A blocked
 * read/accept/write returns EAGAIN when the timeout passes (socket(7)). include/uapi/linux/prctl.h:
 * PR_SET_PDEATHSIG; asm-generic/signal.h: SIGKILL, SIGTERM.
 */
export const SO_RCVTIMEO = 20, SO_SNDTIMEO = 21;
export const PR_SET_PDEATHSIG = 1, SIGKILL = 9, SIGTERM = 15;
