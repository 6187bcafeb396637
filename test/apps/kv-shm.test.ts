/**
 * The shared keyspace's lock and region (apps/kv-shm.ts): several kv apps over one region see one
 * keyspace; worker threads incrementing one key through their own apps lose no increment; a lock left
 * by a thread that no longer exists is taken over; a full region answers -OOM and keeps the keyspace.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { createKv, type KvApp } from '../../src/apps/kv.js';
import { LOCK_OWNER_INDEX, LOCK_STATE_INDEX } from '../../src/apps/kv-shm.js';
import { OutBuf } from '../../src/protocols/outbuf.js';
import { createShm, mapShm } from '../../src/sys/index.js';

function call(app: KvApp, ...args: string[]): string {
  const out = new OutBuf(64);
  app.handle(args.map((a) => Buffer.from(a, 'latin1')), out);
  return out.take().toString('latin1');
}

describe('kv: shared keyspace', () => {
  it('two apps over one memfd share keys, lists and deadlines', () => {
    const fd = createShm('iolab-kv-test', 1 << 24);
    const a = createKv({ shared: mapShm(fd, 1 << 24) });
    const b = createKv({ shared: mapShm(fd, 1 << 24) });
    assert.equal(call(a, 'SET', 'k', 'v'), '+OK\r\n');
    assert.equal(call(b, 'GET', 'k'), '$1\r\nv\r\n');
    assert.equal(call(a, 'RPUSH', 'l', 'x', 'y'), ':2\r\n');
    assert.equal(call(b, 'LPUSH', 'l', 'w'), ':3\r\n');
    assert.equal(call(a, 'LRANGE', 'l', '0', '-1'), '*3\r\n$1\r\nw\r\n$1\r\nx\r\n$1\r\ny\r\n');
    assert.equal(call(b, 'EXPIRE', 'k', '100'), ':1\r\n');
    assert.match(call(a, 'TTL', 'k'), /^:(99|100)\r\n$/);
    assert.equal(call(b, 'DEL', 'l'), ':1\r\n');
    assert.equal(call(a, 'DBSIZE'), ':1\r\n');
    assert.equal(call(a, 'FLUSHALL'), '+OK\r\n');
    assert.equal(call(b, 'DBSIZE'), ':0\r\n');
  });

  it('worker threads INCR one key through their own apps: no increment is lost', async () => {
    const region = new SharedArrayBuffer(1 << 24);
    const kvUrl = new URL('../../src/apps/kv.js', import.meta.url).href;
    const outUrl = new URL('../../src/protocols/outbuf.js', import.meta.url).href;
    const code = `
      const { workerData, parentPort } = require('node:worker_threads');
      (async () => {
        const { createKv } = await import(${JSON.stringify(kvUrl)});
        const { OutBuf } = await import(${JSON.stringify(outUrl)});
        const app = createKv({ shared: workerData.region });
        const args = [Buffer.from('INCR'), Buffer.from('n')];
        const out = new OutBuf(64);
        for (let i = 0; i < workerData.n; i++) { app.handle(args, out); out.reset(); }
        parentPort.postMessage('done');
      })();`;
    const threads = 4;
    const n = 5000;
    await Promise.all(
      Array.from({ length: threads }, () => new Promise<void>((resolve, reject) => {
        const w = new Worker(code, { eval: true, workerData: { region, n } });
        w.once('message', () => resolve());
        w.once('error', reject);
      })),
    );
    assert.equal(call(createKv({ shared: region }), 'GET', 'n'), `$5\r\n${threads * n}\r\n`);
  });

  it('a lock held by a thread that no longer exists is taken over, once said', () => {
    const region = new SharedArrayBuffer(1 << 24);
    const app = createKv({ shared: region });
    assert.equal(call(app, 'SET', 'k', 'v'), '+OK\r\n');
    // A pid (= the tid of its only thread) that has just exited: /proc/<pid> is gone.
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    const words = new Int32Array(region);
    Atomics.store(words, LOCK_STATE_INDEX, 1);
    Atomics.store(words, LOCK_OWNER_INDEX, Number(gone));
    const chunks: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((c: string) => (chunks.push(String(c)), true)) as typeof process.stderr.write;
    try {
      assert.equal(call(app, 'GET', 'k'), '$1\r\nv\r\n');
    } finally {
      process.stderr.write = write;
    }
    assert.match(chunks.join(''), new RegExp(`thread ${gone} ended while holding the shared keyspace`));
    assert.equal(Atomics.load(words, LOCK_STATE_INDEX), 0, 'the lock is free again');
    assert.equal(Atomics.load(words, LOCK_OWNER_INDEX), 0);
  });

  it('FLUSHALL gives the region\'s pages back to the kernel, and the keyspace goes on', () => {
    const shmem = (): number => Number(/RssShmem:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'latin1'))![1]) * 1024;
    const size = 64 << 20;
    const app = createKv({ shared: mapShm(createShm('iolab-kv-flush', size), size) });
    const before = shmem();
    const value = 'v'.repeat(100_000);
    for (let i = 0; i < 200; i++) assert.equal(call(app, 'SET', `k${i}`, value), '+OK\r\n');
    const filled = shmem();
    assert.ok(filled - before > 15 << 20, `20 MB of values: RssShmem ${before} -> ${filled}`);
    assert.equal(call(app, 'FLUSHALL'), '+OK\r\n');
    const flushed = shmem();
    assert.ok(filled - flushed > 15 << 20, `after FLUSHALL: RssShmem ${filled} -> ${flushed}`);
    assert.equal(call(app, 'DBSIZE'), ':0\r\n');
    assert.equal(call(app, 'SET', 'again', 'x'), '+OK\r\n');
    assert.equal(call(app, 'GET', 'again'), '$1\r\nx\r\n');
    assert.equal(call(app, 'GET', 'k7'), '$-1\r\n');
  });

  it('a full region answers -OOM and keeps what it holds', () => {
    const app = createKv({ shared: new SharedArrayBuffer(1 << 16) });
    assert.equal(call(app, 'SET', 'small', 'v'), '+OK\r\n');
    assert.match(call(app, 'SET', 'big', 'x'.repeat(1 << 16)), /^-OOM /);
    assert.equal(call(app, 'GET', 'small'), '$1\r\nv\r\n');
    assert.equal(call(app, 'GET', 'big'), '$-1\r\n');
    assert.equal(call(app, 'DBSIZE'), ':1\r\n');
  });
});
