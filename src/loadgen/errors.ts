/**
 * Error kinds the load generator counts. Each failed request or connection is counted once, under
 * the first kind that explains it:
 *  - refused: connect() failed with ECONNREFUSED (nothing listening, or the backlog overflowed);
 *  - reset: an established connection ended under us (RST, or the server closed it unasked);
 *  - timeout: a request (or a connect) took longer than --timeout (--connect-timeout);
 *  - protocol: the reply bytes do not parse (bad framing, a response nobody asked for);
 *  - wrong-reply: the reply parses but is not the right one (HTTP status, RESP type, echo bytes);
 *  - other: anything else (EADDRNOTAVAIL: out of local ports, EMFILE ...), by errno in `byErrno`.
 */
import { ECONNREFUSED, ECONNRESET, EPIPE, ETIMEDOUT, errnoName } from '../sys/index.js';

export const E_REFUSED = 0, E_RESET = 1, E_TIMEOUT = 2, E_PROTOCOL = 3, E_WRONG = 4, E_OTHER = 5;
export const ERROR_KINDS = ['refused', 'reset', 'timeout', 'protocol', 'wrong-reply', 'other'] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];
export type ErrorCounts = Record<ErrorKind, number>;

/** The kind a connect/read/write errno counts as. */
export function kindOfErrno(errno: number): number {
  if (errno === ECONNREFUSED) return E_REFUSED;
  if (errno === ECONNRESET || errno === EPIPE || errno === 0) return E_RESET;
  if (errno === ETIMEDOUT) return E_TIMEOUT;
  return E_OTHER;
}

export function errnoLabel(errno: number): string {
  return errno === 0 ? 'EOF' : errnoName(errno);
}

export function emptyErrors(): ErrorCounts {
  return { refused: 0, reset: 0, timeout: 0, protocol: 0, 'wrong-reply': 0, other: 0 };
}

export function errorsFromArray(a: ArrayLike<number>): ErrorCounts {
  const e = emptyErrors();
  ERROR_KINDS.forEach((k, i) => (e[k] = a[i] ?? 0));
  return e;
}

export function totalErrors(e: ErrorCounts): number {
  let t = 0;
  for (const k of ERROR_KINDS) t += e[k];
  return t;
}
