/**
 * report.html: one self-contained file that works offline. uPlot (JS and CSS) is read from the
 * installed package at render time and inlined; the results and the chart data are embedded as
 * JSON; a small script draws each chart and then marks its container `data-drawn="1"` (a test
 * loads the page in headless Chromium and checks every chart drew).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ClaimVerdict, LabResults } from '../lab/results.js';
import { RULES, judgeClaims } from './claims.js';
import { buildCharts, isSkipped, type Chart } from './charts.js';
import { escapeHtml, htmlTable } from './format.js';
import { allTables, machineTable } from './tables.js';
import { tracesHtml } from './traces.js';

let uplot: { js: string; css: string } | undefined;

/** uPlot's IIFE build and stylesheet, from node_modules (resolved the way Node resolves imports). */
export function uplotAssets(): { js: string; css: string } {
  if (!uplot) {
    const require = createRequire(import.meta.url);
    const js = readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8');
    const css = readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8');
    uplot = { js, css };
  }
  return uplot;
}

/** JSON safe inside <script>: no "</script>", no "<!--" (every "<" escaped, which JSON.parse reads back). */
export function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** Inline script text: a literal "</script" would end the element early. */
const inlineJs = (js: string): string => js.replace(/<\/script/gi, '<\\/script');

const CSS = `
:root { --fg: #1d2330; --muted: #5b6475; --line: #d9dde5; --bg: #fff; --panel: #f6f7f9;
  --ok: #1a7f37; --bad: #c62828; --mid: #9a6700; --none: #6e7781; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg);
  margin: 0 auto; padding: 24px; max-width: 1240px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; }
p.sub, p.note, p.empty, .muted { color: var(--muted); }
p.note { font-size: 12px; margin: 4px 0; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--panel); font-weight: 600; }
td.nw { white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.verdict { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px; font-weight: 600; white-space: nowrap; }
.v-confirmed { background: var(--ok); } .v-refuted { background: var(--bad); } .v-depends { background: var(--mid); }
.v-not-measured { background: var(--none); }
ul.evidence { margin: 0; padding-left: 18px; }
.charts { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px; }
.chart, .chart-skipped { border: 1px solid var(--line); border-radius: 6px; padding: 8px; background: var(--bg); min-height: 120px; }
.chart h3, .chart-skipped h3 { font-size: 14px; margin: 0 0 4px; }
.chart-skipped p { color: var(--muted); }
.chart .plot { width: 100%; }
.rules li { margin-bottom: 4px; }
`;

/** The page's drawing script: reads the embedded chart data, draws with uPlot, marks each container. */
const PAGE_JS = String.raw`
(function () {
  var palette = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f',
                 '#bcbd22', '#17becf', '#393b79', '#637939', '#8c6d31', '#843c39'];
  function sig(v) { return Number(v.toPrecision(3)); }
  function fmt(unit, v) {
    if (v == null || !isFinite(v)) return '-';
    var a = Math.abs(v);
    switch (unit) {
      case 'rps': return a >= 1e6 ? sig(v / 1e6) + 'M' : a >= 1e3 ? sig(v / 1e3) + 'k' : String(sig(v));
      case 'ms': return a < 1 ? sig(v * 1000) + ' µs' : a >= 1000 ? sig(v / 1000) + ' s' : sig(v) + ' ms';
      case 'us': return a >= 1000 ? sig(v / 1000) + ' ms' : sig(v) + ' µs';
      case 'bytes': return a >= 1048576 ? sig(v / 1048576) + ' MB' : a >= 1024 ? sig(v / 1024) + ' KB' : sig(v) + ' B';
      case 'kb': return sig(v).toLocaleString('en-US') + ' KB';
      default: return String(sig(v));
    }
  }
  function conns(v) { return v >= 1e6 ? sig(v / 1e6) + 'M' : v >= 1e3 ? sig(v / 1e3) + 'k' : String(v); }
  // Log axes: label the powers of ten only (uPlot also hands over the minor ticks in between, some as null).
  function decade(v) { return v != null && v > 0 && Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9; }

  function draw(spec, container) {
    var plot = container.querySelector('.plot');
    var width = Math.max(320, (plot.clientWidth || container.clientWidth || 560));
    var bars = spec.kind === 'bars';
    var k = spec.series.length;
    var series = [{
      label: spec.xLabel,
      value: function (u, v) { return v == null ? '-' : bars ? (spec.categories[v] || '') : conns(v); }
    }];
    spec.series.forEach(function (s, j) {
      var color = palette[j % palette.length];
      var o = { label: s.label, stroke: color, width: 2, value: function (u, v) { return fmt(spec.unit, v); } };
      if (bars) {
        // Grouped bars: series j takes the j-th slice of 80% of each category's slot.
        var w = 0.8 / k;
        o.fill = color; o.width = 0;
        o.paths = uPlot.paths.bars({ disp: {
          x0: { unit: 1, values: function (u) { return u.data[0].map(function (i) { return i - 0.4 + j * w; }); } },
          size: { unit: 1, values: function () { return [w * 0.92]; } }
        } });
        o.points = { show: false };
      } else {
        o.spanGaps = true;
        o.points = { show: true, size: 6, fill: color };
      }
      series.push(o);
    });
    var n = spec.x.length;
    var opts = {
      width: width, height: 300, series: series,
      legend: { show: true, live: false },
      padding: [12, bars ? 48 : 16, 0, 0],
      scales: {
        x: bars ? { time: false, range: function () { return [-0.5, n - 0.5]; } }
                : { time: false, distr: spec.xLog ? 3 : 1, log: 10 },
        // Log scales span whole decades, so the smallest bar still rises from the floor.
        y: spec.yLog ? { distr: 3, log: 10, range: function (u, min, max) {
               return [Math.pow(10, Math.floor(Math.log10(min))), Math.pow(10, Math.ceil(Math.log10(max)))]; } }
             : { range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; } }
      },
      axes: [
        bars ? { label: spec.xLabel, splits: function () { return spec.x; }, rotate: -30, size: 70,
                 values: function (u, splits) { return splits.map(function (i) { return spec.categories[i] || ''; }); } }
             : { label: spec.xLabel, values: function (u, splits) {
                   return splits.map(function (v) { return v == null || (spec.xLog && !decade(v)) ? '' : conns(v); }); } },
        { label: spec.yLabel, size: 70, values: function (u, splits) {
            return splits.map(function (v) { return v == null || (spec.yLog && !decade(v)) ? '' : fmt(spec.unit, v); }); } }
      ],
      cursor: { points: { show: !bars } },
      hooks: { draw: [function () { container.setAttribute('data-drawn', '1'); }] }
    };
    var data = [spec.x].concat(spec.series.map(function (s) { return s.values; }));
    new uPlot(opts, data, plot);
  }

  var charts = JSON.parse(document.getElementById('iolab-charts').textContent);
  charts.forEach(function (spec) {
    if (spec.skipped) return;
    var container = document.querySelector('[data-chart="' + spec.id + '"]');
    if (!container) return;
    try { draw(spec, container); }
    catch (e) {
      container.setAttribute('data-drawn', 'error');
      var p = document.createElement('p'); p.className = 'muted'; p.textContent = 'chart failed: ' + (e && e.message || e);
      container.appendChild(p);
    }
  });
})();
`;

function claimsHtml(claims: ClaimVerdict[]): string {
  const rows = claims.map(
    (c) =>
      `<tr id="claim-${c.id}"><td><b>${c.id}</b></td><td>${escapeHtml(c.claim)}</td>` +
      `<td><span class="verdict v-${c.verdict.replace(' ', '-')}">${escapeHtml(c.verdict)}</span></td>` +
      `<td><ul class="evidence">${c.evidence.map((e) => `<li>${escapeHtml(e)}</li>`).join('')}</ul></td></tr>`,
  );
  return (
    '<section id="claims"><h2>The article\'s claims, judged on this machine</h2>' +
    '<table><thead><tr><th>Claim</th><th>The article says</th><th>Verdict</th><th>Measured</th></tr></thead>' +
    `<tbody>${rows.join('')}</tbody></table></section>`
  );
}

function chartHtml(c: Chart): string {
  if (isSkipped(c)) {
    return `<div class="chart-skipped" data-chart-skipped="${escapeHtml(c.id)}"><h3>${escapeHtml(c.title)}</h3><p>Not drawn: ${escapeHtml(c.skipped)}</p></div>`;
  }
  return (
    `<div class="chart" data-chart="${escapeHtml(c.id)}"><h3>${escapeHtml(c.title)}</h3><div class="plot"></div>` +
    (c.note ? `<p class="note">${escapeHtml(c.note)}</p>` : '') +
    '</div>'
  );
}

export function renderHtml(r: LabResults): string {
  const { js, css } = uplotAssets();
  const claims = judgeClaims(r);
  const charts = buildCharts(r);
  const m = r.machine;
  const withClaims: LabResults = { ...r, claims };
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>iolab report: ${escapeHtml(r.mode)} run, ${escapeHtml(r.startedAt)}</title>`,
    `<style>${css}</style><style>${CSS}</style>`,
    '</head><body>',
    '<header><h1>iolab report</h1>',
    `<p class="sub">${escapeHtml(r.mode)} run, ${escapeHtml(r.startedAt)} to ${escapeHtml(r.finishedAt)}; ` +
      `${escapeHtml(`${m.kernel} ${m.arch}, ${m.cpus} CPUs, node ${m.node}`)}. Every figure was measured on this machine.</p></header>`,
    claimsHtml(claims),
    '<section id="charts"><h2>Charts</h2><div class="charts">',
    ...charts.map(chartHtml),
    '</div></section>',
    ...allTables(r).map(htmlTable),
    Array.isArray(r.traces) && r.traces.length ? tracesHtml(r.traces, htmlTable) : '',
    htmlTable(machineTable(r)),
    r.notes.length ? `<section id="notes"><h2>Notes</h2><ul>${r.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul></section>` : '',
    '<section id="rules"><h2>How each verdict is decided</h2><ul class="rules">',
    ...RULES.map((rule) => `<li><b>${rule.id}</b>: ${escapeHtml(rule.rule)}.</li>`),
    '</ul></section>',
    `<script>${inlineJs(js)}</script>`,
    `<script type="application/json" id="iolab-results">${scriptJson(withClaims)}</script>`,
    `<script type="application/json" id="iolab-charts">${scriptJson(charts)}</script>`,
    `<script>${inlineJs(PAGE_JS)}</script>`,
    '</body></html>',
    '',
  ].join('\n');
}
