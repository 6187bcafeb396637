/**
 * The traces section of the report (LabResults.traces, from `iolab trace`): one table putting every
 * model's connection side by side (terminal, report.md, report.html), and, in the HTML report, a
 * compact sequence diagram per model: the server's user space on the left, the kernel on the right,
 * one row per call (a merged run of EAGAINs is one row), waits and blocking calls drawn as the time
 * the thread spent on the kernel side.
 */
import type { TraceStep, TraceSummary } from '../lab/results.js';
import { escapeHtml, type Table } from './format.js';

const ms = (us: number): string => (us >= 100 ? (us / 1000).toFixed(1) : (us / 1000).toFixed(3));

export function traceTable(traces: TraceSummary[]): Table {
  // results.json is read back by `iolab report`: an entry without totals is shown as not traced, not a crash.
  const rows = traces.map((t) =>
    t.status !== 'ok' || !t.totals || !Array.isArray(t.request)
      ? [t.ran || t.engine, t.model, '-', '-', '-', '-', '-', `${t.status}: ${t.reason ?? ''}`]
      : [
          t.ran,
          t.model,
          t.totals.callsPerRequest.toFixed(1),
          String(t.totals.eagain),
          String(t.totals.waits),
          ms(t.totals.kernelUs),
          ms(t.totals.userUs),
          t.request.join(' → '),
        ],
  );
  const t0 = traces[0];
  return {
    id: 'traces',
    title: 'One connection, traced: what each model asks the kernel',
    columns: [
      { header: 'engine', nowrap: true },
      { header: 'model' },
      { header: 'calls/req', align: 'right' },
      { header: 'EAGAIN', align: 'right' },
      { header: 'waits', align: 'right' },
      { header: 'kernel ms', align: 'right' },
      { header: 'user ms', align: 'right' },
      { header: 'one request, as the server makes it', max: 60 },
    ],
    rows,
    notes: t0
      ? [
          `${t0.requests} ${t0.app} requests on one connection (the client pauses before each), traced in iolab's sys layer. ` +
            'kernel/user: the serving thread\'s time inside calls (blocked or working) and outside them, over the connection\'s life. ' +
            'waits: readiness or completion waits that reported this connection. Run `iolab trace --engine <name>` for the whole sequence.',
        ]
      : [],
    empty: 'not traced in this run (iolab bench --scenarios ...,trace, or iolab trace --all)',
  };
}

// ---------------------------------------------------------------------------------------------
// The sequence diagram (HTML report)

const PHASE_COLOR: Record<string, string> = {
  accept: '#6e7781', wait: '#9a6700', read: '#1f77b4', app: '#2ca02c', write: '#9467bd', close: '#c62828',
};
const ROW = 17;
const MAX_ROWS = 48;

function clip(s: string, n: number): string {
  return s.length > n ? s.slice(0, n - 1) + '…' : s;
}

/** An inline SVG sequence diagram of one traced connection (at most MAX_ROWS rows). */
export function traceSvg(t: TraceSummary): string {
  const steps = t.steps.slice(0, MAX_ROWS);
  const more = t.steps.length - steps.length + (t.truncated ?? 0);
  const W = 640, U = 150, K = 450, top = 34;
  const H = top + (steps.length + (more > 0 ? 1 : 0)) * ROW + 10;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="trace-seq" data-trace="${escapeHtml(t.engine)}" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="ui-monospace, monospace" font-size="11">`,
    '<defs><marker id="ah" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L8,4 L0,8 z" fill="#5b6475"/></marker></defs>',
    `<text x="${U}" y="14" text-anchor="middle" font-weight="bold">server (user space)</text>`,
    `<text x="${K}" y="14" text-anchor="middle" font-weight="bold">kernel</text>`,
    `<line x1="${U}" y1="20" x2="${U}" y2="${H - 4}" stroke="#d9dde5" stroke-width="2"/>`,
    `<line x1="${K}" y1="20" x2="${K}" y2="${H - 4}" stroke="#d9dde5" stroke-width="2"/>`,
  ];
  steps.forEach((s, i) => out.push(row(s, top + i * ROW, U, K)));
  if (more > 0) out.push(`<text x="${(U + K) / 2}" y="${top + steps.length * ROW + 4}" text-anchor="middle" fill="#5b6475">… ${more} more steps</text>`);
  out.push('</svg>');
  return out.join('');
}

function row(s: TraceStep, y: number, U: number, K: number): string {
  const color = PHASE_COLOR[s.phase] ?? '#5b6475';
  const parts: string[] = [`<text x="4" y="${y + 4}" fill="${color}">${escapeHtml(s.phase)}</text>`];
  const dur = s.durUs >= 1000 ? `${(s.durUs / 1000).toFixed(1)} ms` : `${Math.round(s.durUs)} µs`;
  if (s.sys === 'app') {
    parts.push(`<rect x="${U - 6}" y="${y - 6}" width="12" height="${ROW - 4}" fill="${color}" opacity="0.7"/>`);
    parts.push(`<text x="${U + 12}" y="${y + 4}" fill="${color}">app: ${dur} in user space</text>`);
    return parts.join('');
  }
  const fromKernel = s.sys === 'ready' || s.sys === 'cqe' || s.sys === 'aio_done';
  const dashed = fromKernel || s.sys === 'sqe';
  const [x1, x2] = fromKernel ? [K, U + 2] : [U, K - 2];
  parts.push(`<line x1="${x1}" y1="${y}" x2="${x2}" y2="${y}" stroke="${color}" stroke-width="1.3"${dashed ? ' stroke-dasharray="4 3"' : ''} marker-end="url(#ah)"/>`);
  // The enter's batch annotation is drawn as the SQE/CQE arrows around it.
  const label = clip(s.text.trim().replace(/\s+\[\d+ SQEs? in, \d+ CQEs? out\]$/, ''), 44);
  parts.push(`<text x="${(U + K) / 2}" y="${y - 3}" text-anchor="middle">${escapeHtml(label)}</text>`);
  // Time spent on the kernel side: a bar on the kernel's lifeline, wider the longer the call took.
  if (!dashed && s.durUs > 0) {
    const w = Math.max(2, Math.min(60, Math.log10(1 + s.durUs) * 12));
    parts.push(`<rect x="${K}" y="${y - 5}" width="${w.toFixed(1)}" height="10" fill="${color}" opacity="0.5"/>`);
    parts.push(`<text x="${K + w + 4}" y="${y + 4}" fill="#5b6475">${escapeHtml(dur)}</text>`);
  }
  return parts.join('');
}

/** The HTML section: the table, then a diagram per traced model. */
export function tracesHtml(traces: TraceSummary[], table: (t: Table) => string): string {
  const ok = traces.filter((t) => t.status === 'ok' && Array.isArray(t.steps) && Array.isArray(t.request));
  return (
    `<section id="traces-section">${table(traceTable(traces))}` +
    '<div class="trace-diagrams" style="display:grid;grid-template-columns:repeat(auto-fill,minmax(660px,1fr));gap:12px">' +
    ok
      .map(
        (t) =>
          `<div class="trace"><h3>${escapeHtml(t.ran)} <span class="muted">(${escapeHtml(t.model)})</span></h3>` +
          `<p class="note">one request: ${escapeHtml(t.request.join(' → '))}</p>${traceSvg(t)}</div>`,
      )
      .join('') +
    '</div></section>'
  );
}
