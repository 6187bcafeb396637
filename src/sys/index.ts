/** The sys layer: the only code that touches FFI. See ffi.ts for the error conventions. */
export * from './constants.js';
export * from './errno.js';
export * from './counters.js';
export * as ffi from './ffi.js';
export { check } from './ffi.js';
export * from './socket.js';
export * from './process.js';
export * from './epoll.js';
export * from './file.js';
export * from './shm.js';
