/** The sys layer against the real kernel: errors, EAGAIN as a value, counters, addresses, epoll. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  EAGAIN, EPOLLIN, bindCounters, eagain, EPOLL_CTL_ADD, Epoll, SyscallError, connectTcp, counts, SYS, decodeSockaddr, encodeSockaddr,
  ffi, getrlimit, listenTcp, localAddress, setNonBlocking, syscallCounts, SOCK_CLOEXEC, SOCK_NONBLOCK,
} from '../../src/sys/index.js';

describe('sys', () => {
  it('struct layouts are asserted at load (module imported without throwing)', async () => {
    const s = await import('../../src/sys/structs.js');
    assert.equal(s.EPOLL_EVENT_SIZE, process.arch === 'x64' ? 12 : 16);
  });

  it('a failed set-up call throws SyscallError with the call name and errno code', () => {
    const a = listenTcp({ port: 0 });
    const { port } = localAddress(a);
    try {
      assert.throws(() => listenTcp({ port }), (e: unknown) => {
        assert.ok(e instanceof SyscallError);
        assert.equal(e.syscall, 'bind');
        assert.equal(e.code, 'EADDRINUSE');
        assert.match(e.message, /bind\(\) failed: EADDRINUSE \(127\.0\.0\.1:\d+\)/);
        return true;
      });
    } finally {
      ffi.close(a);
    }
  });

  it('hot paths return -EAGAIN as a value and count calls', () => {
    const l = listenTcp({ port: 0, nonBlocking: true });
    const { port } = localAddress(l);
    const before = counts[SYS.accept4]!;
    assert.equal(ffi.accept4(l, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC), -EAGAIN);
    assert.equal(counts[SYS.accept4], before + 1);
    const c = connectTcp('127.0.0.1', port);
    const s = ffi.accept4(l, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
    assert.ok(s > 0);
    const buf = Buffer.alloc(16);
    assert.equal(ffi.read(s, buf, 16), -EAGAIN);
    assert.equal(ffi.write(c, Buffer.from('hi'), 2), 2);
    // epoll reports the data, then read returns it.
    const ep = new Epoll(8);
    ep.ctlOrThrow(EPOLL_CTL_ADD, s, EPOLLIN);
    assert.equal(ep.wait(1000), 1);
    assert.equal(ep.eventFd(0), s);
    assert.ok(ep.eventMask(0) & EPOLLIN);
    assert.equal(ffi.read(s, buf, 16), 2);
    assert.equal(buf.toString('utf8', 0, 2), 'hi');
    assert.ok(syscallCounts().epoll_wait! >= 1);
    ep.close();
    for (const fd of [c, s, l]) ffi.close(fd);
  });

  it('bindCounters moves the counters into a caller\'s shared array, with the counts so far', () => {
    const before = counts[SYS.read]!;
    const row = new Float64Array(new SharedArrayBuffer(8 * (counts.length + 1)));
    const c = row.subarray(0, counts.length);
    const e = row.subarray(counts.length);
    const eagainBefore = eagain[0]!;
    bindCounters(c, e);
    try {
      assert.equal(counts, c, 'the live binding now names the shared array');
      assert.equal(c[SYS.read], before, 'counts so far carried over');
      const r = ffi.read(-1, Buffer.alloc(1), 1);
      assert.ok(r < 0);
      assert.equal(c[SYS.read], before + 1, 'a call counts into the shared array');
      assert.equal(e[0], eagainBefore);
      assert.throws(() => bindCounters(new Float64Array(3), e), /wrong lengths/);
    } finally {
      bindCounters(new Float64Array(counts.length), new Float64Array(1)); // later tests count privately again
    }
    assert.equal(counts[SYS.read], before + 1);
  });

  it('IPv4 and IPv6 sockaddrs round-trip', () => {
    for (const [host, port] of [['127.0.0.1', 80], ['::1', 8080], ['fe80::1:2', 1], ['::', 0], ['2001:db8::ff00:42:8329', 443]] as const) {
      assert.deepEqual(decodeSockaddr(encodeSockaddr(host, port)), { family: host.includes(':') ? 6 : 4, host, port });
    }
    assert.throws(() => encodeSockaddr('localhost', 1), /not a numeric/);
  });

  it('IPv6 listener accepts a connection', () => {
    const l = listenTcp({ host: '::1', port: 0 });
    const { port, family } = localAddress(l);
    assert.equal(family, 6);
    const c = connectTcp('::1', port);
    const s = ffi.accept4(l, null, null, SOCK_CLOEXEC);
    assert.ok(s > 0);
    for (const fd of [c, s, l]) ffi.close(fd);
  });

  it('getrlimit reads the open-file limit; setNonBlocking toggles O_NONBLOCK', () => {
    const l = getrlimit();
    assert.ok(l.soft > 0 && l.hard >= l.soft);
    const fd = listenTcp({ port: 0 });
    setNonBlocking(fd);
    assert.equal(ffi.accept4(fd, null, null, 0), -EAGAIN);
    ffi.close(fd);
  });
});
