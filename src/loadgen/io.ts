/**
 * The seam between the load loop and the kernel. The loop (loop.ts) knows connections only by a
 * *slot* (its index in this process, 0..n-1; a slot keeps its place in the schedule across
 * reconnects) and speaks to an `IoBackend` in four verbs: connect, send, close, wait. The backend
 * owns every fd and syscall and reports back through an `IoSink`.
 *
 * The verbs are completion-shaped on purpose, so that a completion backend fits behind them:
 *  - epoll (epoll-io.ts): readiness -> the backend does the read()/write() itself and hands the
 *    bytes to `onData`.
 *  - io_uring (uring-io.ts, over src/sys/io_uring.ts): IORING_OP_CONNECT completes as `onConnect`,
 *    a multishot recv from a provided-buffer ring completes as `onData(slot, ringBuffer, n)`, a send
 *    whose CQE reports a short count keeps the rest queued exactly as `send()` promises here, and
 *    `wait()` is one io_uring_enter that submits and reaps.
 * Nothing above this file knows which one runs; `chooseBackend()` and `createIo()` below are the one
 * place that picks.
 */
import type { LoadBackend } from './options.js';

/** A backend that can actually run (what `auto` resolves to). */
export type ConcreteBackend = 'epoll' | 'io_uring';

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
  /** Backend counters for the result (`client.io`), also after destroy(). */
  stats?(): Record<string, number>;
}

export interface BackendChoice {
  backend: ConcreteBackend;
  /** Why the backend asked for is not the one that runs (null: it is). */
  notice: string | null;
}

/**
 * `auto` (the default) and `io_uring` run on io_uring when the kernel lets this process use it the
 * way the backend needs (sys/io_uring.ts probeIoUring: setup, features, opcodes, buffer rings), and
 * on epoll otherwise, with a notice saying why (as `iolab serve --engine io_uring` falls back).
 * `IOLAB_IO_URING=off` or `=fail:<errno>` forces the refusal.
 */
export async function chooseBackend(requested: LoadBackend): Promise<BackendChoice> {
  if (requested === 'epoll') return { backend: 'epoll', notice: null };
  const { probeIoUring } = await import('../sys/io_uring.js');
  const p = probeIoUring();
  if (p.ok) return { backend: 'io_uring', notice: null };
  return { backend: 'epoll', notice: `io_uring unavailable (${p.reason}); falling back to epoll` };
}

const noticed = new Set<string>();
/** Print a backend notice on stderr once per process. */
export function noticeOnce(msg: string): void {
  if (noticed.has(msg)) return;
  noticed.add(msg);
  process.stderr.write(`iolab load: ${msg}\n`);
}

/**
 * The backend for one load process. run.ts resolves `auto` once, before any process starts, so the
 * processes agree and the notice is printed once; a direct caller passing `auto` gets it resolved here.
 */
export async function createIo(backend: LoadBackend, slots: number, sink: IoSink): Promise<IoBackend> {
  switch (backend) {
    case 'auto':
    case 'io_uring': {
      const { probeIoUring } = await import('../sys/io_uring.js');
      const p = probeIoUring();
      if (p.ok) {
        const { UringIo } = await import('./uring-io.js');
        return new UringIo(slots, sink, p);
      }
      noticeOnce(`io_uring unavailable (${p.reason}); falling back to epoll`);
      return createIo('epoll', slots, sink);
    }
    case 'epoll': {
      const { EpollIo } = await import('./epoll-io.js');
      return new EpollIo(slots, sink);
    }
  }
  throw new Error(`unknown I/O backend ${String(backend)}: use auto, io_uring or epoll`);
}
