/**
 * The seam between the load loop and the kernel. The loop (loop.ts) knows connections only by a
 * *slot* (its index in this process, 0..n-1; a slot keeps its place in the schedule across
 * reconnects) and speaks to an `IoBackend` in four verbs: connect, send, close, wait. The backend
 * owns every fd and syscall and reports back through an `IoSink`.
 *
 * The verbs are completion-shaped on purpose, so that a completion backend fits behind them:
 *  - epoll (epoll-io.ts, the one built): readiness -> the backend does the read()/write() itself
 *    and hands the bytes to `onData`.
 *  - io_uring (planned, over src/sys/io_uring.ts): IORING_OP_CONNECT completes as `onConnect`,
 *    a multishot recv from a provided-buffer ring completes as `onData(slot, ringBuffer, n)`, a send
 *    whose CQE reports a short count keeps the rest queued exactly as `send()` promises here, and
 *    `wait()` is one io_uring_enter that submits and reaps. Nothing above this file would change;
 *    `createIo()` below is the one place that picks a backend.
 */
import type { LoadBackend } from './options.js';

export interface Endpoint {
  /** sockaddr_in / sockaddr_in6 bytes, encoded once (sys/socket.ts encodeSockaddr). */
  addr: Buffer;
  family: number;
}

export interface IoSink {
  /** A connect finished: errno 0 = established, else why not (ECONNREFUSED ...). On error the slot is already closed. */
  onConnect(slot: number, errno: number, now: number): void;
  /** Bytes arrived: buf[0, n) is valid only until the callback returns. */
  onData(slot: number, buf: Buffer, n: number, now: number): void;
  /** The connection ended: 0 = the peer sent FIN, else the errno (ECONNRESET ...). The slot is already closed. */
  onClose(slot: number, errno: number, now: number): void;
}

export interface IoBackend {
  readonly name: string;
  /** Start connecting `slot`. 0 = in progress (onConnect follows), or -errno when it failed at once. */
  connect(slot: number, target: Endpoint, source: Endpoint | null): number;
  /**
   * Send buf[0, len): whatever the socket does not take now is copied and sent when it drains, in order.
   * 0 = ok, or -errno when the connection failed (the caller then closes it).
   */
  send(slot: number, buf: Buffer, len: number): number;
  /** Bytes queued but not yet taken by the kernel. */
  backlog(slot: number): number;
  /** Close now (no callback). */
  close(slot: number): void;
  isOpen(slot: number): boolean;
  /** Block up to timeoutMs (0 = poll) and deliver what happened to the sink. Returns the events handled. */
  wait(timeoutMs: number): number;
  /** Close everything. */
  destroy(): void;
}

export async function createIo(backend: LoadBackend, slots: number, sink: IoSink): Promise<IoBackend> {
  switch (backend) {
    case 'epoll': {
      const { EpollIo } = await import('./epoll-io.js');
      return new EpollIo(slots, sink);
    }
  }
  throw new Error(`unknown I/O backend ${String(backend)}`);
}
