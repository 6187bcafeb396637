/**
 * report.html in a real browser: Debian's Chromium, headless, loads the file from disk (offline,
 * no network), runs its scripts, and we check every chart container was drawn (data-drawn="1"
 * and a canvas). A screenshot is kept in the test's temp dir for a human to look at.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { renderHtml } from '../../src/report/html.js';
import { buildCharts, isSkipped } from '../../src/report/charts.js';
import type { LabResults } from '../../src/lab/results.js';
import { buildResults } from './fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
const NO_BROWSER = existsSync(CHROMIUM) ? false : 'chromium not installed (apt-get install chromium)';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'iolab-report-html-'));
});

/** Headless Chromium with a fresh profile that never touches the network; returns stdout. */
function chromium(args: string[], url: string): string {
  const profile = mkdtempSync(join(tmpdir(), 'iolab-chromium-'));
  try {
    const p = spawnSync(
      CHROMIUM,
      [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, '--virtual-time-budget=5000', ...args, url,
      ],
      { encoding: 'utf8', timeout: 90_000, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 },
    );
    assert.equal(p.error, undefined, `chromium: ${p.error?.message}`);
    assert.equal(p.status, 0, `chromium exited ${p.status} ${p.signal ?? ''}: ${p.stderr.slice(-2000)}`);
    return p.stdout;
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

/** Each chart container in the DOM after the scripts ran: id, its opening tag, and its inner markup. */
function chartContainers(dom: string): { id: string; tag: string; body: string }[] {
  const out: { id: string; tag: string; body: string }[] = [];
  const re = /<div class="chart" data-chart="([^"]+)"[^>]*>/g;
  const starts = [...dom.matchAll(re)];
  starts.forEach((m, i) => {
    const from = m.index! + m[0].length;
    const to = i + 1 < starts.length ? starts[i + 1]!.index! : dom.indexOf('</section>', from);
    out.push({ id: m[1]!, tag: m[0], body: dom.slice(from, to) });
  });
  return out;
}

function write(name: string, r: LabResults): string {
  const f = join(dir, name);
  writeFileSync(f, renderHtml(r));
  return f;
}

/** Only throughput measured; scaling, idle and blocking-handler skipped with a reason. */
function partial(): LabResults {
  const r = buildResults({ static: false });
  r.results = r.results
    .filter((s) => s.scenario !== 'breaking-point')
    .map((s) =>
      s.scenario === 'throughput' ? s : { ...s, status: 'skipped' as const, reason: 'budget: 150 s spent', median: null, samples: [], idle: undefined },
    );
  return r;
}

describe('report.html', () => {
  it('is self-contained: uPlot and the results inlined, nothing fetched from outside', () => {
    const r = buildResults();
    const html = renderHtml(r);
    assert.match(html, /^<!doctype html>/);
    assert.ok(html.includes('uPlot'), 'uPlot inlined');
    assert.ok(html.includes('.uplot'), 'uPlot CSS inlined');
    assert.doesNotMatch(html, /<(script|img|link|iframe)[^>]+(src|href)=["']?(https?:)?\/\//i, 'no external resource');
    const json = /<script type="application\/json" id="iolab-results">([^<]*)<\/script>/.exec(html);
    assert.ok(json, 'results embedded');
    const back = JSON.parse(json[1]!) as LabResults;
    assert.equal(back.results.length, r.results.length);
    assert.equal(back.claims?.length, 9);
    for (const id of ['C1', 'C5', 'C9']) assert.ok(html.includes(`id="claim-${id}"`));
    for (const t of ['shines', 'cost', 'throughput', 'scaling-rps', 'idle-active', 'blocking', 'machine']) assert.ok(html.includes(`id="${t}"`), t);
  });

  it('every chart draws in headless Chromium (data-drawn="1" and a canvas)', { skip: NO_BROWSER }, () => {
    const file = write('report.html', buildResults());
    const dom = chromium(['--dump-dom'], pathToFileURL(file).href);
    const charts = chartContainers(dom);
    const expected = buildCharts(buildResults()).filter((c) => !isSkipped(c)).map((c) => c.id);
    assert.deepEqual(charts.map((c) => c.id), expected);
    assert.equal(expected.length, 8);
    for (const c of charts) {
      assert.match(c.tag, /data-drawn="1"/, `${c.id} drawn`);
      assert.match(c.body, /<canvas/, `${c.id} has a canvas`);
    }
    assert.ok(!dom.includes('data-drawn="error"'), 'no chart threw');
    assert.match(dom, /class="verdict v-confirmed">confirmed</);
  });

  it('partial results: drawn charts draw, the others say why they are not drawn', { skip: NO_BROWSER }, () => {
    const file = write('partial.html', partial());
    const dom = chromium(['--dump-dom'], pathToFileURL(file).href);
    const charts = chartContainers(dom);
    assert.deepEqual(charts.map((c) => c.id).sort(), ['cpu-per-request', 'per-request']);
    for (const c of charts) {
      assert.match(c.tag, /data-drawn="1"/, `${c.id} drawn`);
      assert.match(c.body, /<canvas/);
    }
    for (const id of ['scaling-rps', 'scaling-p99', 'idle-rss', 'idle-active-cpu', 'blocking-rps', 'blocking-p99']) {
      assert.match(dom, new RegExp(`data-chart-skipped="${id}"><h3>[^<]+</h3><p>Not drawn: [a-z-]+: nothing measured \\(skipped: budget: 150 s spent\\)</p>`), id);
    }
  });

  it('screenshot at 1280x2400 (kept for a human to look at)', { skip: NO_BROWSER }, (t) => {
    const file = join(dir, 'report.html');
    if (!existsSync(file)) write('report.html', buildResults());
    const png = join(dir, 'report.png');
    chromium([`--screenshot=${png}`, '--window-size=1280,2400', '--hide-scrollbars'], pathToFileURL(file).href);
    assert.ok(existsSync(png), 'screenshot written');
    assert.deepEqual([...readFileSync(png).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG');
    assert.ok(statSync(png).size > 50_000, 'not a blank page');
    t.diagnostic(`screenshot: ${png}`);
    console.log(`report.html screenshot: ${png}`);
  });
});
