/**
 * The scripted client of `iolab trace`: C connections, each connects, sends N requests one at a time
 * (each after a short pause, so the server visibly waits for it), reads each whole answer, then
 * half-closes and waits for the server's close. Node's own sockets: the client is not what is traced.
 */
import net from 'node:net';
import { parseResponse } from '../protocols/http/client.js';
import { skipReply } from '../protocols/resp/client.js';

export type TraceApp = 'hello' | 'kv' | 'echo';

export interface ClientOptions {
  host: string;
  port: number;
  app: TraceApp;
  requests: number;
  connections: number;
  /** Pause before each request (ms): the time the server spends waiting for it. */
  pauseMs: number;
  timeoutMs?: number;
}

function request(app: TraceApp, i: number): Buffer {
  switch (app) {
    case 'hello':
      return Buffer.from('GET / HTTP/1.1\r\nHost: iolab\r\nUser-Agent: iolab-trace\r\n\r\n', 'latin1');
    case 'kv': {
      const args = i % 2 === 0 ? ['SET', 'trace:key', `value-${i}`] : ['GET', 'trace:key'];
      return Buffer.from(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`, 'latin1');
    }
    case 'echo':
      return Buffer.from(`iolab trace ${String(i).padStart(4, '0')}\n`, 'latin1');
  }
}

/** Bytes at the front of buf that make one complete answer, or -1. */
function answerLength(app: TraceApp, buf: Buffer, sent: number): number {
  switch (app) {
    case 'hello': {
      const r = parseResponse(buf, 0, buf.length);
      if (r.kind === 'error') throw new Error(`bad HTTP response: ${r.reason}`);
      return r.kind === 'incomplete' ? -1 : r.next;
    }
    case 'kv': {
      const n = skipReply(buf, 0, buf.length);
      if (n < -1) throw new Error('bad RESP reply');
      return n;
    }
    case 'echo':
      return buf.length >= sent ? sent : -1;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function oneConnection(o: ClientOptions, c: number): Promise<number> {
  const s = net.connect({ host: o.host, port: o.port });
  s.setNoDelay(true);
  let buf: Buffer = Buffer.alloc(0);
  let wake: (() => void) | null = null;
  let closed = false;
  let failure: Error | null = null;
  s.on('data', (d: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    wake?.();
  });
  s.on('close', () => {
    closed = true;
    wake?.();
  });
  s.on('error', (e) => {
    failure = e;
    wake?.();
  });
  const until = Date.now() + (o.timeoutMs ?? 5000);
  const waitFor = async (done: () => boolean, what: string): Promise<void> => {
    while (!done()) {
      if (failure) throw failure;
      if (Date.now() > until) throw new Error(`trace client: timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 50);
      });
      wake = null;
    }
  };
  await new Promise<void>((res, rej) => {
    s.once('connect', res);
    s.once('error', rej);
  });
  let answered = 0;
  for (let i = 0; i < o.requests; i++) {
    if (o.pauseMs > 0) await sleep(o.pauseMs);
    const req = request(o.app, c * 1000 + i);
    s.write(req);
    let n = -1;
    await waitFor(() => closed || (n = answerLength(o.app, buf, req.length)) >= 0, `answer ${i + 1}`);
    if (n < 0) throw new Error(`trace client: the server closed before answer ${i + 1}`);
    buf = buf.subarray(n);
    answered++;
  }
  if (o.pauseMs > 0) await sleep(o.pauseMs);
  s.end(); // FIN: the server sees EOF and closes
  await waitFor(() => closed, 'the server to close');
  return answered;
}

/** Run the script; resolves with the answers received (requests x connections when all went well). */
export async function runClient(o: ClientOptions): Promise<number> {
  const counts = await Promise.all(Array.from({ length: o.connections }, (_, c) => oneConnection(o, c)));
  return counts.reduce((a, b) => a + b, 0);
}
