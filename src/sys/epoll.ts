/** epoll(7): create, control and wait, over the asserted epoll_event layout. */
import * as c from './constants.js';
import * as f from './ffi.js';
import { SyscallError } from './errno.js';
import { EPOLL_EVENT_DATA, EPOLL_EVENT_SIZE } from './structs.js';

export class Epoll {
  readonly fd: number;
  /** Raw epoll_event array filled by wait(). */
  readonly events: Buffer;
  readonly max: number;
  private readonly ev = Buffer.alloc(EPOLL_EVENT_SIZE);

  constructor(maxEvents = 1024) {
    this.fd = f.epollCreate1(c.EPOLL_CLOEXEC);
    this.max = maxEvents;
    this.events = Buffer.alloc(maxEvents * EPOLL_EVENT_SIZE);
  }

  /** op is EPOLL_CTL_ADD/MOD/DEL; `data` carries the fd back in each event. Returns 0 or -errno. */
  ctl(op: number, fd: number, events: number): number {
    const ev = this.ev;
    ev.writeUInt32LE(events >>> 0, 0);
    ev.writeUInt32LE(fd, EPOLL_EVENT_DATA);
    ev.writeUInt32LE(0, EPOLL_EVENT_DATA + 4);
    return f.epollCtl(this.fd, op, fd, op === c.EPOLL_CTL_DEL ? null : ev);
  }

  ctlOrThrow(op: number, fd: number, events: number): void {
    const r = this.ctl(op, fd, events);
    if (r < 0) throw new SyscallError('epoll_ctl', -r, `fd ${fd}`);
  }

  /** Wait up to `timeoutMs` (-1 forever). Returns the number of events, or -errno. */
  wait(timeoutMs: number): number {
    return f.epollWait(this.fd, this.events, this.max, timeoutMs);
  }

  eventMask(i: number): number {
    return this.events.readUInt32LE(i * EPOLL_EVENT_SIZE);
  }

  eventFd(i: number): number {
    return this.events.readUInt32LE(i * EPOLL_EVENT_SIZE + EPOLL_EVENT_DATA);
  }

  close(): void {
    f.close(this.fd);
  }
}
