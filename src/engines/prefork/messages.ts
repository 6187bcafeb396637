/** What the prefork parent and its children say to each other (over the IPC channel, as JSON). */
import type { ServiceOptions } from '../../apps/service.js';
import type { ConnectionLimits } from '../types.js';

/** Handed to a child in the IOLAB_PREFORK_CHILD environment variable. */
export interface ChildConfig {
  app: string;
  service: ServiceOptions;
  /** SO_RCVTIMEO/SO_SNDTIMEO on the listening socket (inherited by connections), ms. */
  tickMs: number;
  /** Header, idle and send timeouts and the lingering close, checked against the clock on each tick. */
  limits: ConnectionLimits;
  /** The parent's pid: if it is not our parent once PR_SET_PDEATHSIG is armed, it died already. */
  ppid: number;
  quiet: boolean;
}

export type ToChild = { type: 'stats'; id: number };

export type FromChild =
  | { type: 'ready' }
  /** `row`: the child's counters (threads/blocking.ts row layout); `current`: 1 while it serves a connection. */
  | { type: 'stats'; id: number; row: number[]; current: number }
  | { type: 'final'; row: number[] };
