/**
 * The HTTP Service without sockets: what feed() answers, with and without a loop clock
 * (Service.tick), and how it counts loop stalls when the clock comes from the engine's turn.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { createService, FeedResult, stallWarner, type Service } from '../../src/apps/service.js';
import { createHello } from '../../src/apps/hello.js';
import type { HttpApp } from '../../src/apps/types.js';
import { OutBuf } from '../../src/protocols/outbuf.js';
import { dateHeader } from '../../src/protocols/http/response.js';

/** Feed `raw` in one call; the bytes answered (latin1) and the FeedResult. */
function feed(svc: Service, raw: string): { text: string; r: FeedResult } {
  const buf = Buffer.from(raw, 'latin1');
  const out = new OutBuf(64);
  const r = new FeedResult();
  svc.feed(buf, 0, buf.length, out, r);
  return { text: out.take().toString('latin1'), r };
}

const noDate = (s: string): string => s.replace(/^Date: [^\r]*\r$/gm, 'Date: <date>\r');
const busy = (ms: number): void => {
  const until = performance.now() + ms;
  while (performance.now() < until);
};

const PIPELINE =
  'GET / HTTP/1.1\r\nHost: a\r\n\r\n' +
  'HEAD / HTTP/1.1\r\nHost: a\r\n\r\n' +
  'GET /json?x=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\n\r\n' +
  'POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: text/x-test\r\nContent-Length: 5\r\n\r\nhello' +
  'GET /nope HTTP/1.0\r\nConnection: keep-alive\r\n\r\n' +
  'DELETE / HTTP/1.1\r\nHost: a\r\n\r\n' +
  'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' +
  'GET /after-close HTTP/1.1\r\nHost: a\r\n\r\n';

describe('HTTP service', () => {
  test('a ticking service (engine clock) answers byte for byte as a plain one, Date aside', () => {
    for (const stallMs of [null, 5]) {
      const plain = feed(createService(createHello(), { stallMs }), PIPELINE);
      const svc = createService(createHello(), { stallMs });
      svc.tick(performance.now());
      const ticking = feed(svc, PIPELINE);
      assert.equal(noDate(ticking.text), noDate(plain.text));
      assert.equal(ticking.r.requests, 7);
      assert.ok(ticking.r.close);
      assert.equal(ticking.r.next, PIPELINE.length, 'what follows a closing request is discarded');
      assert.match(plain.text, /^HTTP\/1\.1 200 OK\r\n[\s\S]*Hello, World!HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nHTTP\/1\.1 200 OK/);
      assert.match(plain.text, /Content-Type: text\/x-test\r\n[\s\S]*\r\n\r\nhello/);
      assert.match(plain.text, /404 Not Found[\s\S]*Connection: keep-alive\r\n[\s\S]*405 Method Not Allowed[\s\S]*Connection: close\r\n\r\nHello, World!$/);
    }
  });

  test('the Date a ticking service writes is the wall clock\'s, even after Date was built for another time', () => {
    for (let attempt = 0; ; attempt++) {
      dateHeader(0); // the cached line now says 1970: the reading must not be trusted to it
      const svc = createService(createHello(), { stallMs: 5 });
      const before = dateHeader().toString('latin1');
      svc.tick(performance.now());
      const { text } = feed(svc, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n');
      const after = dateHeader().toString('latin1');
      if (before !== after && attempt < 3) continue; // a second boundary passed meanwhile
      assert.ok(text.includes(before), `${JSON.stringify(text)} should carry ${JSON.stringify(before)}`);
      break;
    }
  });

  test('with the loop clock, a slow request is one stall by route; fast ones around it and time outside a turn are none', () => {
    const app: HttpApp = {
      protocol: 'http',
      name: 'slow',
      handle(req) {
        if (req.target.startsWith('/slow')) busy(30);
        return { status: 200, body: 'ok' };
      },
    };
    const stalls: string[] = [];
    const svc = createService(app, { stallMs: 15, onStall: (route) => stalls.push(route) });
    svc.tick(performance.now());
    feed(svc, 'GET /a HTTP/1.1\r\nHost: a\r\n\r\n');
    feed(svc, 'GET /slow?q=1 HTTP/1.1\r\nHost: a\r\n\r\n');
    feed(svc, 'GET /b HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.equal(svc.stalls.count, 1);
    assert.deepEqual(Object.fromEntries(svc.stalls.byRoute), { 'GET /slow': 1 });
    assert.deepEqual(stalls, ['GET /slow']);
    assert.ok(svc.stalls.maxMs >= 30, `maxMs ${svc.stalls.maxMs}`);
    // The turn ends (NaN): time spent outside it, e.g. in the engine's wait, is nobody's stall.
    svc.tick(NaN);
    busy(30);
    feed(svc, 'GET /c HTTP/1.1\r\nHost: a\r\n\r\n');
    // A new turn: its reading starts the next batch.
    busy(30);
    svc.tick(performance.now());
    feed(svc, 'GET /d HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.equal(svc.stalls.count, 1);
    // A batch of fast requests is timed as one: pipelined, the slow one still counts once.
    feed(svc, 'GET /e HTTP/1.1\r\nHost: a\r\n\r\nGET /slow HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.equal(svc.stalls.count, 2);
  });

  test('a service no engine ticks times each feed by itself', () => {
    const app: HttpApp = { protocol: 'http', name: 'slow', handle: (req) => (req.target === '/slow' && busy(30), { status: 204 }) };
    const svc = createService(app, { stallMs: 15 });
    feed(svc, 'GET /a HTTP/1.1\r\nHost: a\r\n\r\n');
    busy(30);
    feed(svc, 'GET /b HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.equal(svc.stalls.count, 0);
    feed(svc, 'GET /slow HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.equal(svc.stalls.count, 1);
  });

  test('a request the app keeps (async handler) is intact after the input buffer is reused', async () => {
    let kept: Promise<void> = Promise.resolve();
    const app: HttpApp = {
      protocol: 'http',
      name: 'later',
      handle(req) {
        return new Promise((res) => {
          kept = new Promise<void>((done) =>
            setTimeout(() => {
              res({ status: 200, body: `${req.method} ${req.target} ${req.headers.join('|')}` });
              done();
            }, 5),
          );
        });
      },
    };
    const svc = createService(app, { stallMs: 5 });
    svc.tick(performance.now());
    const buf = Buffer.from('PURGE /x?y HTTP/1.1\r\nHost: h\r\nX-Odd: V\r\n\r\n', 'latin1');
    const out = new OutBuf(64);
    const r = new FeedResult();
    svc.feed(buf, 0, buf.length, out, r);
    svc.tick(NaN);
    buf.fill(0x41); // the engine reuses its buffer at once
    assert.ok(r.pending !== null);
    await kept;
    const d = await r.pending;
    assert.match(d.bytes.toString('latin1'), /\r\n\r\nPURGE \/x\?y host\|h\|x-odd\|V$/);
  });
});

describe('stallWarner: the loop-stall warning every event-loop engine prints', () => {
  /** What `fn` writes to stderr, one string per write. */
  function stderrOf(fn: () => void): string[] {
    const lines: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    try {
      fn();
    } finally {
      process.stderr.write = write;
    }
    return lines;
  }

  test('names the engine, the route, the time and the count; at most one every 5 s', () => {
    let n = 0;
    const warn = stallWarner('epoll', false, () => n);
    const lines = stderrOf(() => {
      n = 1;
      warn('GET /slow', 12.34);
      n = 2;
      warn('GET /slow', 20); // within 5 s of the first: counted by the service, not printed
    });
    assert.deepEqual(lines, ['iolab epoll: loop stall: GET /slow held the event loop 12.3 ms (1 so far); every connection on this loop waited meanwhile\n']);
  });

  test('quiet: nothing printed', () => {
    const warn = stallWarner('io_uring', true, () => 1);
    assert.deepEqual(stderrOf(() => warn('SET', 9)), []);
  });
});
