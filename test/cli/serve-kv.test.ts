/**
 * `iolab serve --app kv`: where the engine runs the app in more than one isolate (threads, prefork,
 * --workers N), each keeps a keyspace of its own, and serve says so once at start; on one loop every
 * connection sees every key.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { keyspaceNotice } from '../../src/cli/serve.js';
import { startServer } from '../helpers/server.js';

/** Send one RESP command on an open socket and resolve with the first reply's bytes. */
function command(sock: net.Socket, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString('latin1');
      // The replies here are one line, or a bulk header line and its data line.
      const lines = buf.split('\r\n');
      if (lines.length >= 2 && (!buf.startsWith('$') || buf.startsWith('$-1') || lines.length >= 3)) {
        sock.off('data', onData);
        resolve(buf);
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
    sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
  });
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

describe('serve: kv keyspaces', () => {
  it('keyspaceNotice names the engines that split the keyspace, and only for kv', () => {
    assert.equal(keyspaceNotice('kv', 'epoll', 1), null);
    assert.equal(keyspaceNotice('kv', 'io_uring', 1), null);
    assert.equal(keyspaceNotice('hello', 'threads', 1), null);
    assert.match(keyspaceNotice('kv', 'threads', 1)!, /each connection thread keeps a keyspace of its own/);
    assert.match(keyspaceNotice('kv', 'prefork', 4)!, /each child process/);
    assert.match(keyspaceNotice('kv', 'epoll', 2)!, /each of the 2 loops/);
  });

  it('threads: the notice is printed once at start; --quiet drops it', async () => {
    for (const quiet of [false, true]) {
      const s = await startServer(['--engine', 'threads', '--app', 'kv', ...(quiet ? ['--quiet'] : [])]);
      try {
        const sock = await connect(s.port);
        assert.equal(await command(sock, 'PING'), '+PONG\r\n');
        sock.destroy();
      } finally {
        assert.equal(await s.stop(), 0);
      }
      const n = s.stderr().split('\n').filter((l) => l.startsWith('iolab: kv: ')).length;
      assert.equal(n, quiet ? 0 : 1, s.stderr());
    }
  });

  it('epoll, one loop: no notice, and a key set on one connection is read on another', async () => {
    const s = await startServer(['--engine', 'epoll', '--app', 'kv']);
    const a = await connect(s.port);
    const b = await connect(s.port);
    try {
      assert.equal(await command(a, 'SET', 'shared', 'v1'), '+OK\r\n');
      assert.equal(await command(b, 'GET', 'shared'), '$2\r\nv1\r\n');
    } finally {
      a.destroy();
      b.destroy();
      assert.equal(await s.stop(), 0);
    }
    assert.doesNotMatch(s.stderr(), /kv: /);
  });
});
