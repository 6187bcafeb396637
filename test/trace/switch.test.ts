/**
 * The tracing switch (sys/trace.ts, ffi.ts): off by default and then the bindings ARE the untraced ones
 * (the same function objects: no wrapper, no flag per call); on, calls are recorded with their
 * arguments, results and errno; no-progress repeats are merged; off again restores every binding.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as ffi from '../../src/sys/ffi.js';
import { AioQueue } from '../../src/sys/aio.js';
import { Ring, probeIoUring } from '../../src/sys/io_uring.js';
import { drain, parseTrace, tracing } from '../../src/sys/trace.js';
import { ffi as ffiFromIndex, listenTcp, connectTcp, SOCK_CLOEXEC, SOCK_NONBLOCK, Epoll, EPOLL_CTL_ADD, EPOLLIN } from '../../src/sys/index.js';

type Binding = keyof typeof ffi.untraced;
const names = Object.keys(ffi.untraced) as Binding[];
const plainRing = { submitAndWait: Ring.prototype.submitAndWait, cqAdvance: Ring.prototype.cqAdvance };
const plainAio = { submit: AioQueue.prototype.submit, wait: AioQueue.prototype.wait, reap: AioQueue.prototype.reap };

function assertUntraced(): void {
  assert.equal(tracing(), false);
  for (const k of names) {
    assert.equal(ffi[k], ffi.untraced[k], `ffi.${k} is the untraced binding`);
    assert.equal(ffiFromIndex[k], ffi.untraced[k], `sys/index's ffi.${k} is the untraced binding`);
  }
  assert.equal(Ring.prototype.submitAndWait, plainRing.submitAndWait);
  assert.equal(Ring.prototype.cqAdvance, plainRing.cqAdvance);
  assert.equal(AioQueue.prototype.submit, plainAio.submit);
  assert.equal(AioQueue.prototype.wait, plainAio.wait);
  assert.equal(AioQueue.prototype.reap, plainAio.reap);
}

describe('tracing switch', () => {
  it('is off by default: every binding is the untraced one (ffi.read === untraced read)', () => {
    assert.equal(process.env.IOLAB_TRACE, undefined);
    assert.ok(names.length >= 40, `${names.length} bindings`);
    assert.equal(ffi.read, ffi.untraced.read);
    assertUntraced();
  });

  it('every binding ffi.ts exports can be traced (a new one must join BINDINGS there)', () => {
    const helpers = new Set(['enableTracing', 'disableTracing', 'check']);
    for (const [k, v] of Object.entries(ffi)) {
      if (typeof v !== 'function' || helpers.has(k)) continue;
      assert.ok(k in ffi.untraced, `ffi.${k} is not in ffi.ts's BINDINGS, so tracing cannot see it`);
    }
  });

  it('on: records calls with fd, length, result and errno; merges EAGAIN repeats; off: restores every binding', () => {
    const lfd = listenTcp({ port: 0, nonBlocking: true });
    const fds: number[] = [lfd];
    try {
      ffi.enableTracing({ capacity: 1024 });
      assert.equal(tracing(), true);
      for (const k of names) if (ffi.untraced[k] !== null) assert.notEqual(ffi[k], ffi.untraced[k], `ffi.${k} is traced`);
      assert.notEqual(Ring.prototype.submitAndWait, plainRing.submitAndWait);
      drain();

      // EAGAIN from accept4 on an empty backlog, 50 times in a row: one record, n = 50.
      for (let i = 0; i < 50; i++) assert.equal(ffi.accept4(lfd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC), -11);
      const { port } = (() => {
        const b = Buffer.alloc(128), l = new Uint32Array([128]);
        ffi.getsockname(lfd, b, l);
        return { port: b.readUInt16BE(2) };
      })();
      const c = connectTcp('127.0.0.1', port);
      fds.push(c);
      const ep = new Epoll(8);
      fds.push(ep.fd);
      let s = -1;
      for (let i = 0; i < 1000 && s < 0; i++) s = ffi.accept4(lfd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
      assert.ok(s >= 0);
      fds.push(s);
      ep.ctlOrThrow(EPOLL_CTL_ADD, s, EPOLLIN);
      const buf = Buffer.alloc(64);
      assert.equal(ffi.read(s, buf, 64), -11);
      assert.equal(ffi.write(c, Buffer.from('hello'), 5), 5);
      assert.equal(ep.wait(1000), 1);
      assert.equal(ffi.read(s, buf, 64), 5);

      const recs = drain();
      const acc = recs.filter((r) => r.sys === 'accept4');
      assert.equal(acc[0]!.err, 'EAGAIN');
      assert.ok(acc[0]!.n! >= 50, `50 EAGAINs merged into one record (n = ${acc[0]!.n})`);
      assert.equal(acc[0]!.fd, lfd);
      assert.match(acc[0]!.flags!, /SOCK_NONBLOCK/);
      assert.ok(acc.some((r) => r.res === s));
      const ctl = recs.find((r) => r.sys === 'epoll_ctl')!;
      assert.deepEqual([ctl.fd, ctl.op, ctl.events], [s, 'ADD', 'IN']);
      const w = recs.findIndex((r) => r.sys === 'epoll_wait');
      assert.equal(recs[w]!.res, 1);
      assert.deepEqual([recs[w + 1]!.sys, recs[w + 1]!.fd, recs[w + 1]!.events], ['ready', s, 'IN']);
      const reads = recs.filter((r) => r.sys === 'read' && r.fd === s);
      assert.deepEqual(reads.map((r) => [r.res, r.err ?? null, r.len]), [[-11, 'EAGAIN', 64], [5, null, 64]]);
      const wr = recs.find((r) => r.sys === 'write')!;
      assert.deepEqual([wr.fd, wr.len, wr.res], [c, 5, 5]);
      for (const r of recs) {
        assert.equal(r.pid, process.pid);
        assert.ok(r.tid > 0);
        assert.ok(r.t > 0 && r.dur >= 0);
      }
      // Times are CLOCK_MONOTONIC ns and in order.
      for (let i = 1; i < recs.length; i++) assert.ok(recs[i]!.t >= recs[i - 1]!.t);
      // A cold binding that throws is recorded with its errno, then the error propagates.
      assert.throws(() => ffi.bind(lfd, Buffer.alloc(16), 16));
      const bind = drain().find((r) => r.sys === 'bind')!;
      assert.equal(bind.err, 'EINVAL');
      // The NDJSON form parses back to the same records.
      assert.deepEqual(parseTrace(recs.map((r) => JSON.stringify(r)).join('\n') + '\n{"torn'), recs);
    } finally {
      ffi.disableTracing();
      for (const fd of fds) ffi.close(fd);
    }
    assertUntraced();
  });

  it('io_uring: SQEs are recorded before the enter that submits them, CQEs after it', { skip: probeIoUring().ok ? false : 'io_uring unavailable here' }, () => {
    ffi.enableTracing();
    const ring = new Ring({ entries: 8 });
    try {
      drain();
      ring.prepNop();
      ring.prepNop();
      ring.submitAndWait(2, 1000);
      const n = ring.cqReady();
      ring.cqAdvance(n);
      const recs = drain().map((r) => `${r.sys}${r.op ? ' ' + r.op : ''}`);
      assert.deepEqual(recs, ['sqe NOP', 'sqe NOP', 'io_uring_enter', 'cqe NOP', 'cqe NOP']);
    } finally {
      ring.close();
      ffi.disableTracing();
    }
    assertUntraced();
  });
});
