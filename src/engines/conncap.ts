/**
 * --max-connections, counted once for the whole server. One loop counts its own connections; with
 * --workers N the loops share one Int32 in a SharedArrayBuffer (ConnectionLimits.shared), so the cap
 * is the server's and not each loop's (SO_REUSEPORT spreads connections unevenly).
 */
import type { ConnectionLimits } from './types.js';

/** Count a new connection against the cap; true: over it (refuse, and nothing was counted). */
export function overCap(limits: ConnectionLimits, current: number): boolean {
  const max = limits.maxConnections;
  if (max <= 0) return false;
  const shared = limits.shared;
  if (shared === undefined) return current >= max;
  if (Atomics.add(shared, 0, 1) < max) return false;
  Atomics.sub(shared, 0, 1);
  return true;
}

/** A connection counted by overCap() closed. */
export function releaseCap(limits: ConnectionLimits): void {
  if (limits.shared !== undefined && limits.maxConnections > 0) Atomics.sub(limits.shared, 0, 1);
}
