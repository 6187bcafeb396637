/** Shapes shared by the RESP2 codecs (server command parser, reply encoder, client reply parser). */

export interface RespLimits {
  /** Largest inline command line without a newline (Redis: PROTO_INLINE_MAX_SIZE, 64 KB). */
  maxInline: number;
  /** Largest bulk string (Redis proto-max-bulk-len, 512 MB; ours defaults to 512 MB too). */
  maxBulk: number;
  /** Most elements in one multibulk (Redis rejects > 1024*1024*1024; we default to 1M). */
  maxMultibulk: number;
}

export const DEFAULT_RESP_LIMITS: RespLimits = Object.freeze({
  maxInline: 64 * 1024,
  maxBulk: 512 * 1024 * 1024,
  maxMultibulk: 1024 * 1024,
});

export type RespCommandParse =
  | { kind: 'command'; args: Buffer[]; next: number }
  /** Input that Redis ignores (an empty inline line, `*0`, `*-10`): skip to `next`. */
  | { kind: 'skip'; next: number }
  | { kind: 'incomplete' }
  /** `message` is Redis's wording without the `-ERR ` prefix, e.g. `Protocol error: invalid bulk length`. */
  | { kind: 'error'; message: string };

/** A reply error (`-ERR ...`) as a value, distinct from a simple string. */
export class RespErrorReply {
  constructor(readonly message: string) {}
}

export type RespValue = string | number | Buffer | null | RespErrorReply | RespValue[];

export type RespReplyParse =
  | { kind: 'reply'; value: RespValue; next: number }
  | { kind: 'incomplete' }
  | { kind: 'error'; reason: string };
