/** The io_uring engine: completion-based loop over a raw ring (sys/io_uring.ts), with epoll fallback. */
export { IoUringEngine, createIoUringEngine, sqpollRequested } from './engine.js';
export { UringLoop, type UringStats } from './loop.js';
