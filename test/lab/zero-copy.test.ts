/** The zero-copy scenario: its place in the plan, a real run of it, and the checks that guard its numbers. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildPlan, defaultPlanOptions, ZERO_COPY_CONNECTIONS } from '../../src/lab/plan.js';
import { deriveBreakingPoints, runLab } from '../../src/lab/lab.js';
import type { ScenarioResult } from '../../src/lab/results.js';
import { labRun } from '../helpers/lab.js';
import { checkBody, makeStaticFiles, parseSize, sizeName } from '../../src/lab/files.js';
import { nginxStatic, peerByName } from '../../src/lab/peers.js';
import { startPeer } from '../../src/lab/targets.js';
import { judgeClaims } from '../../src/report/claims.js';
import { probeIoUring } from '../../src/sys/io_uring.js';

/** A lab run of the zero-copy scenario alone, short windows, with the test's overrides. */
function zeroCopyRun(o: Partial<Parameters<typeof runLab>[0]>): Parameters<typeof runLab>[0] {
  return labRun({ engines: ['epoll'], scenarios: ['zero-copy'], durationS: 1, warmupS: 0, repeats: 1, sloP99Ms: 1000, ...o });
}

const ALL_ENGINES = ['select', 'poll', 'epoll', 'io_uring', 'threads', 'prefork', 'busypoll', 'aio', 'node'];
const ALL_PEERS = ['nginx', 'redis-server', 'apache2-prefork', 'apache2-worker', 'apache2-event'];

describe('zero-copy scenario', () => {
  it('quick: epoll serves 64 KB with sendfile on and off; full adds io_uring, nginx and 1 MB', () => {
    const zc = (mode: 'quick' | 'full'): string[] =>
      buildPlan({ ...defaultPlanOptions(mode), engines: ALL_ENGINES, peers: ALL_PEERS })
        .filter((s) => s.scenario === 'zero-copy')
        .map((s) => `${s.target.name} ${sizeName(s.file!.bytes)} ${s.file!.sendfile ? 'on' : 'off'} ${s.target.extra?.join(' ') ?? '-'} @${s.connections.join(',')}`);
    const c = ZERO_COPY_CONNECTIONS;
    assert.deepEqual(zc('quick'), [`epoll 64KB on --sendfile on @${c}`, `epoll 64KB off --sendfile off @${c}`]);
    const full = zc('full');
    assert.equal(full.length, 12);
    for (const want of [`io_uring 1MB off --sendfile off @${c}`, `nginx 64KB on - @${c}`, `nginx 1MB off - @${c}`]) assert.ok(full.includes(want), `${want} in ${full.join('; ')}`);
    // Asked for by name only: no zero-copy steps unless the scenario is in the list.
    assert.equal(buildPlan({ ...defaultPlanOptions('quick'), scenarios: ['throughput'], engines: ['epoll'], peers: [] }).some((s) => s.scenario === 'zero-copy'), false);
    // Without epoll (or io_uring in full) there is nothing to run it on.
    assert.equal(buildPlan({ ...defaultPlanOptions('quick'), engines: ['threads'], peers: [] }).some((s) => s.scenario === 'zero-copy'), false);
  });

  it('a short real run: epoll static, sendfile vs copy, recorded as throughput and judged by C9', { timeout: 60_000 }, async () => {
    const lines: string[] = [];
    const r = await runLab(zeroCopyRun({ engines: ['epoll'], durationS: 1, warmupS: 0.2, progress: (l) => lines.push(l) }));
    assert.equal(r.results.length, 2, lines.join('\n'));
    for (const s of r.results) {
      assert.equal(s.status, 'ok', `${s.reason ?? ''}\n${lines.join('\n')}`);
      assert.equal(s.scenario, 'throughput');
      assert.equal(s.target.name, 'epoll');
      assert.equal(s.params.app, 'static');
      assert.equal(s.params.fileBytes, 64 << 10);
      assert.equal(s.params.connections, ZERO_COPY_CONNECTIONS);
      const m = s.median!;
      assert.ok(m.rps > 0 && m.errors === 0, `rps ${m.rps}, errors ${m.errors}`);
      // The load generator counts every received byte: 64 KB bodies (+ ~100 B of head) per reply.
      const perReply = m.bytesPerSec! / m.rps;
      assert.ok(perReply > 65_536 * 0.95 && perReply < 65_536 * 1.1, `bytes per reply ${perReply.toFixed(0)}`);
      assert.ok(m.syscallsPerReq != null && m.syscallsPerReq > 0, 'the engine counted its syscalls');
      // The L3 cache probe is read before every window (on by default).
      for (const w of s.samples) assert.ok(typeof w.cacheNs === 'number' && w.cacheNs > 0, `cacheNs ${w.cacheNs}`);
    }
    const on = r.results.find((s) => s.params.sendfile === true)!;
    const off = r.results.find((s) => s.params.sendfile === false)!;
    // sendfile on: the body leaves through sendfile(2); off: through pread + write.
    assert.ok((on.median!.syscallsByNamePerReq?.sendfile ?? 0) >= 1, `sendfile on: ${JSON.stringify(on.median!.syscallsByNamePerReq)}`);
    assert.equal(off.median!.syscallsByNamePerReq?.sendfile ?? 0, 0, `sendfile off: ${JSON.stringify(off.median!.syscallsByNamePerReq)}`);
    assert.ok((off.median!.syscallsByNamePerReq?.pread64 ?? 0) >= 1, `sendfile off reads the file: ${JSON.stringify(off.median!.syscallsByNamePerReq)}`);
    const c9 = judgeClaims(r).find((c) => c.id === 'C9')!;
    assert.notEqual(c9.verdict, 'not measured', c9.evidence.join('\n'));
    assert.ok(c9.evidence.some((e) => /static on epoll, 64 KB file, 16 connections: sendfile .* vs copy/.test(e)), c9.evidence.join('\n'));
  });

  it('a server that sends other bytes than the file is caught before it is measured', async () => {
    const files = makeStaticFiles([4096]);
    const good = files.content(4096);
    let body: Buffer = Buffer.from(good);
    body[1234] ^= 1;
    const srv = http.createServer((_req, res) => res.end(body));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}${files.path(4096)}`;
    try {
      assert.match((await checkBody(url, good))!, /differs from the file at byte 1234/);
      body = good.subarray(0, 4000);
      assert.match((await checkBody(url, good))!, /Content-Length 4000, expected 4096/);
      body = good;
      assert.equal(await checkBody(url, good), null);
    } finally {
      srv.close();
      files.remove();
    }
  });

  it('static results are no point of the hello ramp (breaking points ignore them)', () => {
    const at = (scenario: ScenarioResult['scenario'], connections: number, params: Record<string, unknown> = {}): ScenarioResult => ({
      scenario, target: { kind: 'engine', name: 'epoll', ran: 'epoll', model: 'multiplexing' }, protocol: 'http', params: { connections, ...params },
      status: 'ok', samples: [], median: null, rpsSpread: null,
    });
    const [bp] = deriveBreakingPoints([at('throughput', 100), at('scaling', 1000), at('throughput', 16, { app: 'static', sendfile: true, fileBytes: 65536 })]);
    assert.deepEqual(bp!.breaking!.steps.map((s) => s.connections), [100, 1000]);
  });

  it('sizes are named and parsed in binary units', () => {
    assert.deepEqual([4 << 10, 64 << 10, 1 << 20, 16 << 20, 1000].map(sizeName), ['4KB', '64KB', '1MB', '16MB', '1000B']);
    assert.deepEqual(['4k', '64KB', '1m', '16MB', '1000'].map(parseSize), [4 << 10, 64 << 10, 1 << 20, 16 << 20, 1000]);
    assert.throws(() => parseSize('lots'), /not a size/);
  });

  const nginx = peerByName('nginx')!;
  it('nginx serves the same files, sendfile on and off', { skip: nginx.binary() ? false : 'nginx not installed (apt-get install nginx-light)' }, async () => {
    const files = makeStaticFiles([64 << 10, 1 << 20]);
    try {
      for (const sendfile of [true, false]) {
        const srv = await startPeer(nginxStatic(files.dir, sendfile), null);
        try {
          for (const size of [64 << 10, 1 << 20]) {
            assert.equal(await checkBody(`http://127.0.0.1:${srv.port}${files.path(size)}`, files.content(size)), null, `sendfile ${sendfile}, ${sizeName(size)}`);
          }
        } finally {
          await srv.stop();
        }
      }
    } finally {
      files.remove();
    }
  });

  it('io_uring sends the file with SPLICE (sendfile on) and SEND (off)', { skip: probeIoUring().ok ? false : 'io_uring not available here', timeout: 60_000 }, async () => {
    // io_uring is in the zero-copy steps in --full only: build that plan, for io_uring alone.
    const r = await runLab(zeroCopyRun({ mode: 'full', engines: ['io_uring'], durationS: 0.5, warmupS: 0, cacheProbe: false }));
    assert.equal(r.results.length, 4);
    for (const s of r.results) {
      assert.equal(s.status, 'ok', s.reason);
      assert.equal(s.target.ran, 'io_uring');
      for (const w of s.samples) assert.equal(w.cacheNs, null, 'cacheProbe: false reads no probe');
    }
  });
});
