/**
 * select(2) backend. The kernel gets three bitmaps of FD_SETSIZE (1024) bits and overwrites them
 * with the ready subset, so each wait copies our master sets first (Redis's ae_select.c says why:
 * "not safe to reuse FD sets after select()") and then scans every bit up to the highest fd:
 * O(highest fd) per wait, on both sides of the syscall. An fd >= 1024 cannot be represented at
 * all; add() refuses it and the reactor closes that connection (glibc would write past the set).
 */
import { FD_SETSIZE, ffi } from '../../sys/index.js';
import { FD_SET_BYTES } from '../../sys/structs.js';
import { READABLE, WRITABLE, type Poller, type PollerCapabilities } from '../reactor/poller.js';

export class SelectPoller implements Poller {
  readonly name = 'select';
  readonly capabilities: PollerCapabilities = { edge: false, fdLimit: FD_SETSIZE, closeRemoves: false };
  readonly firedFd = new Int32Array(FD_SETSIZE);
  readonly firedMask = new Uint8Array(FD_SETSIZE);
  private readonly rset = new Uint8Array(FD_SET_BYTES);
  private readonly wset = new Uint8Array(FD_SET_BYTES);
  private readonly rwork = new Uint8Array(FD_SET_BYTES);
  private readonly wwork = new Uint8Array(FD_SET_BYTES);
  private readonly tv = Buffer.alloc(16);
  private maxFd = -1;

  add(fd: number, mask: number): boolean {
    if (fd < 0 || fd >= FD_SETSIZE) return false;
    this.modify(fd, mask);
    if (fd > this.maxFd) this.maxFd = fd;
    return true;
  }

  modify(fd: number, mask: number): void {
    const byte = fd >> 3, bit = 1 << (fd & 7);
    if (mask & READABLE) this.rset[byte]! |= bit;
    else this.rset[byte]! &= ~bit;
    if (mask & WRITABLE) this.wset[byte]! |= bit;
    else this.wset[byte]! &= ~bit;
  }

  remove(fd: number): void {
    if (fd >= FD_SETSIZE) return;
    this.modify(fd, 0);
    if (fd === this.maxFd) {
      let m = fd - 1;
      while (m >= 0 && !((this.rset[m >> 3]! | this.wset[m >> 3]!) & (1 << (m & 7)))) m--;
      this.maxFd = m;
    }
  }

  wait(timeoutMs: number): number {
    const nbytes = (this.maxFd >> 3) + 1;
    this.rwork.set(this.rset.subarray(0, nbytes));
    this.wwork.set(this.wset.subarray(0, nbytes));
    const tv = this.tv;
    tv.writeBigInt64LE(BigInt(Math.floor(timeoutMs / 1000)), 0);
    tv.writeBigInt64LE(BigInt((timeoutMs % 1000) * 1000), 8);
    const r = ffi.select(this.maxFd + 1, this.rwork, this.wwork, null, timeoutMs < 0 ? null : tv);
    if (r <= 0) return 0;
    let n = 0;
    for (let byte = 0; byte < nbytes; byte++) {
      const rb = this.rwork[byte]!, wb = this.wwork[byte]!;
      if ((rb | wb) === 0) continue;
      for (let bit = 0; bit < 8; bit++) {
        const m = (rb >> bit) & 1 ? READABLE : 0;
        const w = (wb >> bit) & 1 ? WRITABLE : 0;
        if (m | w) {
          this.firedFd[n] = (byte << 3) | bit;
          this.firedMask[n++] = m | w;
        }
      }
    }
    return n;
  }

  close(): void {}
}
