/** Sockets: addresses (IPv4 and IPv6), listeners, connectors, options. */
import { isIPv4, isIPv6 } from 'node:net';
import * as c from './constants.js';
import * as f from './ffi.js';
import { SyscallError } from './errno.js';
import { SOCKADDR_STORAGE } from './structs.js';

export interface SockAddr {
  family: 4 | 6;
  host: string;
  port: number;
}

/** Encode an address as a sockaddr_in / sockaddr_in6 in a Buffer. */
export function encodeSockaddr(host: string, port: number): Buffer {
  if (isIPv4(host)) {
    const b = Buffer.alloc(16);
    b.writeUInt16LE(c.AF_INET, 0);
    b.writeUInt16BE(port, 2);
    const parts = host.split('.').map(Number);
    for (let i = 0; i < 4; i++) b[4 + i] = parts[i]!;
    return b;
  }
  if (isIPv6(host)) {
    const b = Buffer.alloc(28);
    b.writeUInt16LE(c.AF_INET6, 0);
    b.writeUInt16BE(port, 2);
    ipv6Bytes(host).copy(b, 8);
    return b;
  }
  throw new Error(`not a numeric IPv4 or IPv6 address: ${JSON.stringify(host)} (use e.g. 127.0.0.1 or ::1)`);
}

function ipv6Bytes(host: string): Buffer {
  const out = Buffer.alloc(16);
  let h = host;
  const pct = h.indexOf('%');
  if (pct >= 0) h = h.slice(0, pct);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  const v4 = h.match(/(\d+\.\d+\.\d+\.\d+)$/);
  if (v4) {
    const p = v4[1]!.split('.').map(Number);
    h = h.slice(0, -v4[1]!.length) + ((p[0]! << 8) | p[1]!).toString(16) + ':' + ((p[2]! << 8) | p[3]!).toString(16);
  }
  const [head, tail] = h.includes('::') ? h.split('::') : [h, undefined];
  const hs = head ? head.split(':').filter((x) => x !== '') : [];
  const ts = tail !== undefined && tail ? tail.split(':').filter((x) => x !== '') : [];
  const groups = tail === undefined ? hs : [...hs, ...Array(8 - hs.length - ts.length).fill('0'), ...ts];
  for (let i = 0; i < 8; i++) out.writeUInt16BE(parseInt(groups[i] ?? '0', 16), i * 2);
  return out;
}

export function decodeSockaddr(b: Uint8Array): SockAddr {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const fam = buf.readUInt16LE(0);
  const port = buf.readUInt16BE(2);
  if (fam === c.AF_INET) return { family: 4, host: `${buf[4]}.${buf[5]}.${buf[6]}.${buf[7]}`, port };
  if (fam === c.AF_INET6) {
    const g: string[] = [];
    for (let i = 0; i < 8; i++) g.push(buf.readUInt16BE(8 + i * 2).toString(16));
    // Compress the longest run of zero groups, as inet_ntop does.
    let best = -1, bestLen = 0;
    for (let i = 0; i < 8; ) {
      if (g[i] !== '0') { i++; continue; }
      let j = i;
      while (j < 8 && g[j] === '0') j++;
      if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
      i = j;
    }
    const host = best < 0 ? g.join(':') : `${g.slice(0, best).join(':')}::${g.slice(best + bestLen).join(':')}`;
    return { family: 6, host, port };
  }
  throw new Error(`unknown address family ${fam}`);
}

const intBuf = Buffer.alloc(4);
export function setIntOpt(fd: number, level: number, opt: number, value: number): void {
  intBuf.writeInt32LE(value, 0);
  f.setsockopt(fd, level, opt, intBuf, 4);
}

export function getIntOpt(fd: number, level: number, opt: number): number {
  const v = Buffer.alloc(4);
  const len = new Uint32Array([4]);
  f.check('getsockopt', f.getsockopt(fd, level, opt, v, len));
  return v.readInt32LE(0);
}

export function setNonBlocking(fd: number, on = true): void {
  const fl = f.check('fcntl', f.fcntl(fd, c.F_GETFL, 0));
  f.check('fcntl', f.fcntl(fd, c.F_SETFL, on ? fl | c.O_NONBLOCK : fl & ~c.O_NONBLOCK));
}

export interface ListenOptions {
  host?: string;
  port: number;
  backlog?: number;
  /** SO_REUSEPORT: several listeners (loops, processes) share the port; the kernel balances accepts. */
  reusePort?: boolean;
  /** O_NONBLOCK on the listening socket (readiness engines); blocking engines leave it off. */
  nonBlocking?: boolean;
}

/** socket + SO_REUSEADDR (+ SO_REUSEPORT) + bind + listen. Closes the fd if a step fails. */
export function listenTcp(o: ListenOptions): number {
  const host = o.host ?? '127.0.0.1';
  const addr = encodeSockaddr(host, o.port);
  const family = addr.length === 16 ? c.AF_INET : c.AF_INET6;
  const fd = f.socket(family, c.SOCK_STREAM | c.SOCK_CLOEXEC | (o.nonBlocking ? c.SOCK_NONBLOCK : 0), 0);
  try {
    setIntOpt(fd, c.SOL_SOCKET, c.SO_REUSEADDR, 1);
    if (o.reusePort) setIntOpt(fd, c.SOL_SOCKET, c.SO_REUSEPORT, 1);
    try {
      f.bind(fd, addr, addr.length);
    } catch (e) {
      if (e instanceof SyscallError) throw new SyscallError('bind', e.errno, `${host}:${o.port}`);
      throw e;
    }
    // somaxconn caps this; 4096 is the kernel default cap since 5.4.
    f.listen(fd, o.backlog ?? 4096);
    return fd;
  } catch (e) {
    f.close(fd);
    throw e;
  }
}

export function localAddress(fd: number): SockAddr {
  const b = Buffer.alloc(SOCKADDR_STORAGE);
  const len = new Uint32Array([SOCKADDR_STORAGE]);
  f.getsockname(fd, b, len);
  return decodeSockaddr(b);
}

export function peerAddress(fd: number): SockAddr | null {
  const b = Buffer.alloc(SOCKADDR_STORAGE);
  const len = new Uint32Array([SOCKADDR_STORAGE]);
  return f.getpeername(fd, b, len) < 0 ? null : decodeSockaddr(b);
}

/**
 * Start a non-blocking connect. Returns the fd; the connection is established when the fd turns
 * writable and SO_ERROR is 0. `source` binds a local address first (spreading source addresses over
 * 127.0.0.0/8 lifts the ~28k ephemeral-port limit per destination).
 */
export function connectTcp(host: string, port: number, opts: { nonBlocking?: boolean; source?: string } = {}): number {
  const addr = encodeSockaddr(host, port);
  const family = addr.length === 16 ? c.AF_INET : c.AF_INET6;
  const fd = f.socket(family, c.SOCK_STREAM | c.SOCK_CLOEXEC | (opts.nonBlocking ? c.SOCK_NONBLOCK : 0), 0);
  if (opts.source) {
    try {
      const src = encodeSockaddr(opts.source, 0);
      f.bind(fd, src, src.length);
    } catch (e) {
      f.close(fd);
      throw e;
    }
  }
  const r = f.connect(fd, addr, addr.length);
  if (r < 0 && -r !== 115 /* EINPROGRESS */) {
    f.close(fd);
    throw new SyscallError('connect', -r, `${host}:${port}`);
  }
  return fd;
}

export function setNoDelay(fd: number): void {
  setIntOpt(fd, c.IPPROTO_TCP, c.TCP_NODELAY, 1);
}

/** SO_LINGER {on, 0}: close() sends RST instead of FIN (used by tests that simulate a reset). */
export function setLingerZero(fd: number): void {
  const b = Buffer.alloc(8);
  b.writeInt32LE(1, 0);
  b.writeInt32LE(0, 4);
  f.setsockopt(fd, c.SOL_SOCKET, c.SO_LINGER, b, 8);
}
