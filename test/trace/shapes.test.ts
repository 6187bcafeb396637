/**
 * What each model asks the kernel, from real runs (`iolab serve` with IOLAB_TRACE, a scripted client,
 * 3 requests with a 5 ms pause before each): the shape the article describes, asserted on the trace.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TraceStep, TraceSummary } from '../../src/lab/results.js';
import { probeIoUring } from '../../src/sys/io_uring.js';
import { runTrace, type TraceRun } from '../../src/trace/index.js';

const REQUESTS = 3;

async function trace(engine: string, app: 'hello' | 'kv' | 'echo' = 'hello'): Promise<TraceRun> {
  const run = await runTrace({ engine, app, requests: REQUESTS, connections: 1, pauseMs: 5 });
  assert.equal(run.summary.status, 'ok', `${engine}: ${run.summary.reason}`);
  assert.equal(run.summary.reason, undefined, `${engine}: ${run.summary.reason}`);
  return run;
}

const isDataRead = (s: TraceStep): boolean => s.sys === 'read' && s.res > 0;
const callsOf = (t: TraceSummary): TraceStep[] => t.steps.filter((s) => s.sys !== 'app');

/** Every data read is directly preceded (among the connection's steps) by a wait that reported the fd readable. */
function assertWaitThenRead(t: TraceSummary, wait: string): void {
  const steps = callsOf(t);
  const reads = steps.map((s, i) => [s, i] as const).filter(([s]) => isDataRead(s));
  assert.equal(reads.length, REQUESTS, `${t.engine}: ${REQUESTS} reads that return data`);
  for (const [, i] of reads) {
    const ready = steps[i - 1]!, w = steps[i - 2]!;
    assert.equal(w.sys, wait, `${t.engine}: a ${wait} before the read, got ${w.text}`);
    assert.ok(w.res >= 1, `${t.engine}: the wait reported readiness (${w.text})`);
    assert.equal(w.phase, 'wait');
    assert.equal(ready.sys, 'ready');
    assert.equal(ready.fd, t.fd);
    assert.match(ready.events!, /IN/);
  }
  assert.equal(t.totals.eagain, 0, `${t.engine}: readiness first, so no EAGAIN on the connection`);
  assert.ok(t.totals.waits >= REQUESTS);
  assert.deepEqual(t.request.slice(0, 4), [wait, 'ready IN', 'read', 'app']);
}

describe('iolab trace: each model\'s shape, from real runs', () => {
  it('threads: a blocking read that returns data (no wait, no EAGAIN, the thread parks in read)', async () => {
    const { summary: t } = await trace('threads');
    const steps = callsOf(t);
    const acc = steps.find((s) => s.sys === 'accept4')!;
    assert.ok(acc.text.includes('SOCK_CLOEXEC') && !acc.text.includes('SOCK_NONBLOCK'), `a blocking socket: ${acc.text}`);
    const reads = steps.filter(isDataRead);
    assert.equal(reads.length, REQUESTS);
    // The client pauses 5 ms before each request: with no wait call, that time is spent parked in read().
    assert.ok(Math.max(...reads.map((r) => r.durUs)) >= 2000, `a read parked >= 2 ms: ${reads.map((r) => r.durUs).join(', ')} µs`);
    assert.ok(steps.every((s) => !['epoll_wait', 'poll', 'select', 'io_uring_enter'].includes(s.sys)), 'no readiness wait');
    assert.equal(t.totals.eagain, 0);
    assert.equal(t.totals.waits, 0);
    assert.deepEqual(t.request, ['read', 'app', 'write']);
    // The reads happen on the connection's own thread, not the acceptor's.
    assert.notEqual(reads[0]!.tid, acc.tid);
    assert.equal(t.threads, 2);
  });

  it('prefork: the same blocking read, in a child process', async () => {
    const { summary: t } = await trace('prefork', 'kv');
    assert.deepEqual(t.request, ['read', 'app', 'write']);
    assert.equal(t.totals.eagain, 0);
    const reads = callsOf(t).filter(isDataRead);
    assert.equal(reads.length, REQUESTS);
    assert.ok(Math.max(...reads.map((r) => r.durUs)) >= 2000);
  });

  it('busypoll: read says EAGAIN (again and again) before the data', async () => {
    const { summary: t } = await trace('busypoll');
    const steps = callsOf(t);
    const first = steps.findIndex(isDataRead);
    assert.ok(first > 0);
    const eagainBefore = steps.slice(0, first).filter((s) => s.sys === 'read' && s.err === 'EAGAIN');
    assert.ok(eagainBefore.length >= 1, 'EAGAIN before the first data');
    assert.equal(eagainBefore[0]!.phase, 'wait');
    // Every request: the read before the one that returns data said EAGAIN.
    steps.forEach((s, i) => {
      if (isDataRead(s)) assert.equal(steps[i - 1]!.err, 'EAGAIN', `before ${s.text}: ${steps[i - 1]!.text}`);
    });
    assert.ok(t.totals.eagain >= REQUESTS, `${t.totals.eagain} EAGAINs`);
    assert.equal(t.totals.waits, 0, 'no readiness API');
    assert.match(t.request[0]!, /^read EAGAIN/);
  });

  for (const [engine, wait] of [['select', 'select'], ['poll', 'poll'], ['epoll', 'epoll_wait']] as const) {
    it(`${engine}: a ${wait} that reports readiness, then a read`, async () => {
      const { summary: t } = await trace(engine);
      assertWaitThenRead(t, wait);
    });
  }

  it('io_uring: an SQE submitted, a completion that carries the bytes, and no read(2)', { skip: probeIoUring().ok ? false : 'io_uring refused here (the engine falls back to epoll)' }, async () => {
    const { summary: t, records } = await trace('io_uring', 'echo');
    assert.equal(t.ran, 'io_uring');
    const steps = t.steps;
    const recv = steps.find((s) => s.sys === 'sqe' && s.op === 'RECV');
    assert.ok(recv, 'a RECV submitted');
    assert.equal(recv.fd, t.fd);
    const cqes = steps.filter((s) => s.sys === 'cqe' && s.op === 'RECV' && s.res > 0);
    assert.equal(cqes.length, REQUESTS, 'a completion per request');
    for (const c of cqes) assert.equal(c.res, 'iolab trace 0000\n'.length, 'the completion carries the request bytes');
    // The RECV went to the kernel in an io_uring_enter, and each completion came back out of one.
    const enterAfterSqe = steps.slice(steps.indexOf(recv)).find((s) => s.sys === 'io_uring_enter');
    assert.ok(enterAfterSqe && enterAfterSqe.res >= 1, 'the enter that submitted it');
    for (const c of cqes) {
      const before = steps.slice(0, steps.indexOf(c)).reverse().find((s) => s.sys !== 'cqe');
      assert.equal(before?.sys, 'io_uring_enter', `an enter before ${c.text}`);
    }
    const sends = steps.filter((s) => s.sys === 'sqe' && s.op === 'SEND');
    assert.equal(sends.length, REQUESTS);
    // No read(2), recv(2) or write(2) for the connection, in the summary or anywhere in the raw trace.
    assert.ok(!steps.some((s) => ['read', 'recv', 'readv', 'write', 'send'].includes(s.sys)));
    assert.ok(!records.some((r) => ['read', 'recv', 'readv'].includes(r.sys) && r.fd === t.fd && r.pid === steps[0]!.pid));
    assert.ok(t.totals.sqes >= 1 + REQUESTS && t.totals.cqes >= 2 * REQUESTS);
    assert.deepEqual(t.request.slice(0, 3), ['io_uring_enter', `cqe RECV ${'iolab trace 0000\n'.length}`, 'app']);
  });

  it('aio: aio_read submitted, aio_suspend woken, the request found complete with its bytes', async () => {
    const { summary: t } = await trace('aio', 'echo');
    const done = t.steps.filter((s) => s.sys === 'aio_done' && s.op === 'READ' && s.res > 0);
    assert.equal(done.length, REQUESTS);
    assert.ok(t.steps.some((s) => s.sys === 'aio_read' && s.fd === t.fd));
    assert.ok(t.steps.some((s) => s.sys === 'aio_suspend' && s.phase === 'wait'));
  });

  it('node: nothing to trace (libuv makes its calls), reported as skipped', async () => {
    const { summary: t } = await runTrace({ engine: 'node', app: 'hello', requests: 1 });
    assert.equal(t.status, 'skipped');
    assert.match(t.reason!, /libuv/);
  });
});
