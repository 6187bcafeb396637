/**
 * The readiness interface the shared reactor runs over, one small backend per kernel API
 * (the shape of Redis's ae_epoll.c / ae_select.c and mio's selectors). Backends keep their own
 * kernel state and normalise what fired into two parallel arrays, `firedFd` and `firedMask`.
 * Errors and hang-ups are reported as READABLE|WRITABLE, so the handler finds them where it reads
 * or writes (as ae_epoll.c does) instead of needing a third path.
 */
export const READABLE = 1;
export const WRITABLE = 2;
/**
 * The peer hung up (EPOLLRDHUP / POLLRDHUP / HUP), always reported with READABLE. Edge-triggered
 * readers need it: data and FIN arriving together raise one edge, so after a short read they must
 * read on to the EOF instead of waiting for an edge that will not come.
 */
export const HANGUP = 4;

export interface PollerCapabilities {
  /** Edge-triggered notification is available and on. */
  edge: boolean;
  /** Largest fd the backend can watch, plus one (select: FD_SETSIZE). */
  fdLimit: number;
  /** remove() before close() needs no syscall: closing the fd drops it from the kernel's set. */
  closeRemoves: boolean;
}

export interface Poller {
  readonly name: string;
  readonly capabilities: PollerCapabilities;
  /** Filled by wait(): entries [0, n). */
  readonly firedFd: Int32Array;
  readonly firedMask: Uint8Array;
  /** Start watching fd for mask (READABLE | WRITABLE). Returns false if the backend cannot watch this fd. */
  add(fd: number, mask: number): boolean;
  modify(fd: number, mask: number): void;
  /** Stop watching fd. `closing` says the fd is about to be closed (epoll can skip EPOLL_CTL_DEL). */
  remove(fd: number, closing: boolean): void;
  /** Block up to timeoutMs (0 = poll, -1 = forever). Returns how many entries of firedFd/firedMask are set. */
  wait(timeoutMs: number): number;
  close(): void;
}
