/**
 * The data behind report.html's charts, computed here (typed, testable) so that the page's script
 * only draws. A chart with nothing to draw becomes a SkippedChart carrying the reason (a scenario
 * skipped, a target absent), so partial results show why instead of an empty frame.
 */
import type { LabResults, ScenarioResult } from '../lab/results.js';
import { idleActiveOf, isMeasured, idleOf, label, representative, targets, workOf } from './query.js';
import { emptyReason, scalingSeries } from './tables.js';

export type Unit = 'rps' | 'ms' | 'bytes' | 'kb' | 'count' | 'us';

export interface ChartSpec {
  id: string;
  title: string;
  kind: 'lines' | 'bars';
  xLabel: string;
  yLabel: string;
  unit: Unit;
  xLog?: boolean;
  yLog?: boolean;
  /** lines: the x values (connection counts); bars: 0..n-1, named by `categories`. */
  x: number[];
  categories?: string[];
  series: { label: string; values: (number | null)[] }[];
  note?: string;
}

export interface SkippedChart {
  id: string;
  title: string;
  skipped: string;
}

export type Chart = ChartSpec | SkippedChart;

export const isSkipped = (c: Chart): c is SkippedChart => 'skipped' in c;

/** Values a log scale cannot show (<= 0, NaN) become gaps. */
const positive = (v: number | null | undefined): number | null => (v != null && Number.isFinite(v) && v > 0 ? v : null);

function finish(spec: ChartSpec, whyEmpty: string): Chart {
  const series = spec.series.filter((s) => s.values.some((v) => v != null));
  if (series.length === 0 || spec.x.length === 0) return { id: spec.id, title: spec.title, skipped: whyEmpty };
  if (spec.kind === 'bars') {
    // Drop categories with no value in any series.
    const keep = spec.x.map((_, i) => series.some((s) => s.values[i] != null));
    return {
      ...spec,
      categories: spec.categories!.filter((_, i) => keep[i]),
      x: spec.x.filter((_, i) => keep[i]).map((_, i) => i),
      series: series.map((s) => ({ ...s, values: s.values.filter((_, i) => keep[i]) })),
    };
  }
  return { ...spec, series };
}

function scaling(r: LabResults, what: 'rps' | 'p99'): Chart {
  const ss = scalingSeries(r);
  const x = [...new Set(ss.flatMap((s) => [...s.points.keys()]))].filter((c) => c > 0).sort((a, b) => a - b);
  const multiProto = new Set(ss.map((s) => s.protocol)).size > 1;
  const value = (s: ScenarioResult | undefined): number | null => {
    if (!isMeasured(s)) return null;
    if (what === 'rps') return positive(s.median.rps);
    const p = s.median.latencyUs?.p99;
    return positive(p == null ? null : p / 1000);
  };
  return finish(
    {
      id: `scaling-${what}`,
      title: what === 'rps' ? 'Scaling: throughput as connections grow' : 'Scaling: p99 latency as connections grow',
      kind: 'lines',
      xLabel: 'connections',
      yLabel: what === 'rps' ? 'req/s' : 'p99 (ms)',
      unit: what === 'rps' ? 'rps' : 'ms',
      xLog: true,
      yLog: what === 'p99',
      x,
      series: ss.map((s) => ({
        label: multiProto && s.protocol !== 'http' ? `${label(s.target)} ${s.protocol}` : label(s.target),
        values: x.map((c) => value(s.points.get(c))),
      })),
      note: 'Closed-loop keep-alive load; a missing point is a step that broke or was not run (see the tables).',
    },
    emptyReason(r, 'scaling'),
  );
}

function idleRss(r: LabResults): Chart {
  const ts = targets(r).filter((t) => idleOf(r, t.name));
  const idle = ts.map((t) => idleOf(r, t.name)!);
  return finish(
    {
      id: 'idle-rss',
      title: 'Memory per idle connection (log scale)',
      kind: 'bars',
      xLabel: 'target',
      yLabel: 'KB per connection',
      unit: 'kb',
      yLog: true,
      x: ts.map((_, i) => i),
      categories: ts.map((t, i) => `${label(t)} @${idle[i]!.held >= 1000 ? `${Math.round(idle[i]!.held / 1000)}k` : idle[i]!.held}`),
      series: [
        { label: 'user RSS / conn', values: idle.map((i) => positive(i.userPerConn / 1024)) },
        { label: 'kernel / conn', values: idle.map((i) => positive(i.kernelPerConn == null ? null : i.kernelPerConn / 1024)) },
      ],
      note: 'The article: thread-per-connection ~10 MB, epoll ~10 KB.',
    },
    emptyReason(r, 'idle'),
  );
}

function perRequest(r: LabResults, what: 'calls' | 'cpu'): Chart {
  const ts = targets(r).map((t) => ({ t, s: representative(r, t.name, 100) })).filter((x) => x.s);
  const base = {
    kind: 'bars' as const,
    xLabel: 'target',
    x: ts.map((_, i) => i),
    categories: ts.map(({ t, s }) => `${label(t)}${s!.protocol !== 'http' ? ` ${s!.protocol}` : ''}`),
  };
  const why = emptyReason(r, 'throughput');
  if (what === 'calls') {
    return finish(
      {
        ...base,
        id: 'per-request',
        title: 'Syscalls and context switches per request (log scale)',
        yLabel: 'per request',
        unit: 'count',
        yLog: true,
        series: [
          { label: 'syscalls / req', values: ts.map(({ s }) => positive(s!.median.syscallsPerReq)) },
          { label: 'context switches / req', values: ts.map(({ s }) => positive(s!.median.ctxSwitchesPerReq)) },
        ],
        note: 'Syscalls are counted by iolab engines only; peers show context switches alone.',
      },
      why,
    );
  }
  return finish(
    {
      ...base,
      id: 'cpu-per-request',
      title: 'Server CPU time per request',
      yLabel: 'CPU µs / req',
      unit: 'us',
      series: [{ label: 'CPU µs / req', values: ts.map(({ s }) => positive(s!.median.cpuUsPerReq)) }],
      note: 'User + system CPU of the server process tree over the window, per request (100 connections where measured).',
    },
    why,
  );
}

function blocking(r: LabResults, what: 'rps' | 'p99'): Chart {
  const bh = r.results.filter((s) => s.scenario === 'blocking-handler');
  const names = targets(r).filter((t) => bh.some((s) => s.target.name === t.name));
  const works = [...new Set(bh.map((s) => workOf(s) ?? 'none'))].sort();
  const pick = (name: string, w: string): ScenarioResult | undefined => bh.find((s) => s.target.name === name && (workOf(s) ?? 'none') === w && isMeasured(s));
  return finish(
    {
      id: `blocking-${what}`,
      title: what === 'rps' ? 'Blocking handler: throughput (log scale)' : 'Blocking handler: p99 latency (log scale)',
      kind: 'bars',
      xLabel: 'target',
      yLabel: what === 'rps' ? 'req/s' : 'p99 (ms)',
      unit: what === 'rps' ? 'rps' : 'ms',
      yLog: true,
      x: names.map((_, i) => i),
      categories: names.map(label),
      series: works.map((w) => ({
        label: w,
        values: names.map((t) => {
          const s = pick(t.name, w);
          if (!s?.median) return null;
          const p = s.median.latencyUs?.p99;
          return positive(what === 'rps' ? s.median.rps : p == null ? null : p / 1000);
        }),
      })),
      note: 'A handler that blocks 1 ms (nanosleep) vs one that waits 1 ms on a timer, same connections.',
    },
    emptyReason(r, 'blocking-handler'),
  );
}

/** idle-active: CPU per request against the connections watched (idle held + busy), one line per engine. */
function idleActive(r: LabResults): Chart {
  const series = targets(r)
    .map((t) => ({ t, ps: idleActiveOf(r, t.name) }))
    .filter(({ ps }) => ps.length > 0);
  // Watched connections (idle asked + busy), not idle ones, on the x axis: a log scale cannot place 0 idle.
  const x = [...new Set(series.flatMap(({ ps }) => ps.map((p) => p.idle + p.active)))].filter((c) => c > 0).sort((a, b) => a - b);
  const busy = series[0]?.ps[0]?.active;
  return finish(
    {
      id: 'idle-active-cpu',
      title: 'Idle + active: CPU per request as idle connections grow',
      kind: 'lines',
      xLabel: `connections (idle + ${busy ?? 'the'} busy)`,
      yLabel: 'CPU µs / req',
      unit: 'us',
      xLog: true,
      x,
      series: series.map(({ t, ps }) => ({
        label: label(t),
        values: x.map((c) => positive(ps.find((p) => p.idle + p.active === c)?.result.median.cpuUsPerReq)),
      })),
      note: 'The same busy closed loop at each point; only the idle connections beside it change. poll and select scan every watched fd per wait, epoll only the ready ones.',
    },
    emptyReason(r, 'idle-active'),
  );
}

export function buildCharts(r: LabResults): Chart[] {
  return [
    scaling(r, 'rps'),
    scaling(r, 'p99'),
    idleRss(r),
    perRequest(r, 'calls'),
    perRequest(r, 'cpu'),
    idleActive(r),
    blocking(r, 'rps'),
    blocking(r, 'p99'),
  ];
}
