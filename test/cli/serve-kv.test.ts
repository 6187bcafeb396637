/**
 * `iolab serve --app kv` on engines that run the app in more than one isolate (a thread per
 * connection, a process per child, a loop per worker): one keyspace for all of them (apps/kv-shm.ts).
 * Connections held open at once are served by different threads or processes, so a key set on one
 * and read on another crosses isolates; concurrent INCRs from all of them check the lock.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer } from '../helpers/server.js';

/** A RESP connection that sends commands and reads one reply per command (simple, bulk, integer, array of bulks). */
class Client {
  private buf = '';
  private waiters: (() => void)[] = [];
  private constructor(private readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static connect(port: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new Client(s)));
      s.once('error', reject);
    });
  }

  /** Send commands in one write; resolve with their replies, raw. */
  async send(...cmds: string[][]): Promise<string[]> {
    this.sock.write(cmds.map((a) => `*${a.length}\r\n${a.map((x) => `$${Buffer.byteLength(x)}\r\n${x}\r\n`).join('')}`).join(''));
    const out: string[] = [];
    const deadline = Date.now() + 10_000;
    while (out.length < cmds.length) {
      const n = replyLength(this.buf, 0);
      if (n > 0) {
        out.push(this.buf.slice(0, n));
        this.buf = this.buf.slice(n);
        continue;
      }
      if (Date.now() > deadline) throw new Error(`no reply in 10 s (have ${JSON.stringify(this.buf)})`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
    return out;
  }

  close(): void {
    this.sock.destroy();
  }
}

/** Length of the complete reply at `at`, or 0 when it is not all here. */
function replyLength(b: string, at: number): number {
  const eol = b.indexOf('\r\n', at);
  if (eol < 0) return 0;
  const head = b[at];
  if (head === '+' || head === '-' || head === ':') return eol + 2 - at;
  const n = Number(b.slice(at + 1, eol));
  if (head === '$') {
    if (n < 0) return eol + 2 - at;
    return b.length >= eol + 2 + n + 2 ? eol + 2 + n + 2 - at : 0;
  }
  // '*': n elements
  let p = eol + 2;
  for (let i = 0; i < n; i++) {
    const m = replyLength(b, p);
    if (m === 0) return 0;
    p += m;
  }
  return p - at;
}

const bulk = (s: string): string => `$${s.length}\r\n${s}\r\n`;

for (const args of [['--engine', 'threads'], ['--engine', 'prefork', '--workers', '3'], ['--engine', 'epoll', '--workers', '2']]) {
  describe(`serve kv ${args.slice(1).join(' ')}: one keyspace across isolates`, () => {
    it('keys, lists and deadlines set on one connection are seen on the others; concurrent INCRs all count', async () => {
      const s = await startServer([...args, '--app', 'kv', '--quiet']);
      const n = 3; // prefork --workers 3: three children, one connection each
      const cs: Client[] = [];
      try {
        for (let i = 0; i < n; i++) cs.push(await Client.connect(s.port));
        for (let i = 0; i < n; i++) {
          assert.deepEqual(await cs[i]!.send(['SET', `key${i}`, `value${i}`], ['RPUSH', 'list', `item${i}`]), ['+OK\r\n', `:${i + 1}\r\n`]);
        }
        assert.deepEqual(await cs[0]!.send(['SET', 'ttl', 'x', 'PX', '60000']), ['+OK\r\n']);
        for (let i = 0; i < n; i++) {
          const keys = Array.from({ length: n }, (_, j) => `key${j}`);
          const [mget, lrange, pttl, dbsize] = await cs[i]!.send(['MGET', ...keys], ['LRANGE', 'list', '0', '-1'], ['PTTL', 'ttl'], ['DBSIZE']);
          assert.equal(mget, `*${n}\r\n${keys.map((_, j) => bulk(`value${j}`)).join('')}`, `connection ${i} reads every connection's SET`);
          assert.equal(lrange, `*${n}\r\n${keys.map((_, j) => bulk(`item${j}`)).join('')}`, `connection ${i} reads the list all of them pushed to`);
          assert.match(pttl!, /^:\d+\r\n$/);
          assert.ok(Number(pttl!.slice(1)) > 50_000, pttl);
          assert.equal(dbsize, `:${n + 2}\r\n`);
        }
        // Every connection INCRs the same key at once, pipelined: no increment may be lost.
        const per = 300;
        await Promise.all(cs.map((c) => c.send(...Array.from({ length: per }, () => ['INCR', 'counter']))));
        assert.deepEqual(await cs[n - 1]!.send(['GET', 'counter']), [bulk(String(n * per))]);
      } finally {
        for (const c of cs) c.close();
        assert.equal(await s.stop(), 0);
      }
    });

    it('keys with a deadline that nobody reads again are reclaimed (active expiry)', async () => {
      const s = await startServer([...args, '--app', 'kv', '--quiet']);
      const c = await Client.connect(s.port);
      try {
        const sets = Array.from({ length: 100 }, (_, i) => ['SET', `tmp${i}`, 'x', 'PX', '50']);
        assert.equal((await c.send(...sets, ['SET', 'keep', 'y'], ['DBSIZE']))[101], ':101\r\n');
        // DBSIZE counts expired keys until something reclaims them; nothing reads them here.
        let size = '';
        for (let i = 0; i < 40 && size !== ':1\r\n'; i++) {
          await new Promise((r) => setTimeout(r, 100));
          [size] = await c.send(['DBSIZE']);
        }
        assert.equal(size, ':1\r\n', 'the 100 expired keys were swept');
      } finally {
        c.close();
        assert.equal(await s.stop(), 0);
      }
    });
  });
}
