/** RESP2 codecs: server command parser, reply writers, client reply parser, and their shared types. */
export * from './types.js';
export * from './server.js';
export * from './encode.js';
export * from './client.js';
