/**
 * `iolab report` in a terminal: the article's two tables rebuilt with measured columns, the
 * throughput / scaling / blocking-handler tables, and the verdict on each claim with its numbers.
 * Plain text within 120 columns; a little colour only when stdout is a TTY (and NO_COLOR is unset).
 */
import type { ClaimVerdict, LabResults } from '../lab/results.js';
import { judgeClaims } from './claims.js';
import { bytes, pad, textTable, wrap } from './format.js';
import { allTables } from './tables.js';
import { traceTable } from './traces.js';

export interface TerminalOptions {
  /** Default: stdout is a TTY and NO_COLOR is not set. */
  color?: boolean;
  /** Default 120. */
  width?: number;
}

const SGR = { bold: '1', dim: '2', red: '31', green: '32', yellow: '33', cyan: '36' } as const;

export const VERDICT_COLOR: Record<ClaimVerdict['verdict'], keyof typeof SGR> = {
  confirmed: 'green',
  refuted: 'red',
  depends: 'yellow',
  'not measured': 'dim',
};

export function renderClaimsText(claims: ClaimVerdict[], width = 120, color = false): string {
  const paint = (s: string, c: keyof typeof SGR): string => (color ? `\x1b[${SGR[c]}m${s}\x1b[0m` : s);
  const indent = 4 + 14;
  const lines: string[] = ['Claims of the article, judged on this machine', '='.repeat(45)];
  for (const c of claims) {
    const head = wrap(c.claim, width - indent);
    lines.push(`${pad(c.id, 4)}${pad(paint(c.verdict.toUpperCase(), VERDICT_COLOR[c.verdict]), 14)}${head[0] ?? ''}`);
    for (const h of head.slice(1)) lines.push(' '.repeat(indent) + h);
    for (const e of c.evidence) {
      const w = wrap(e, width - indent - 2);
      lines.push(' '.repeat(indent) + '- ' + (w[0] ?? ''));
      for (const more of w.slice(1)) lines.push(' '.repeat(indent + 2) + more);
    }
  }
  return lines.join('\n');
}

export function renderTerminal(r: LabResults, opts: TerminalOptions = {}): string {
  const width = opts.width ?? 120;
  const color = opts.color ?? (!!process.stdout.isTTY && !process.env.NO_COLOR);
  const bold = (s: string): string => (color ? `\x1b[1m${s}\x1b[0m` : s);
  const m = r.machine;
  const out: string[] = [
    bold(`iolab report: ${r.mode} run, ${r.startedAt} to ${r.finishedAt}`),
    ...wrap(
      `Machine: ${m.kernel} ${m.arch}, ${m.cpus} CPUs (${m.cpuModel}), ${bytes(m.memBytes)}, node ${m.node}, ` +
        `io_uring ${m.ioUring.available ? 'available' : `not available${m.ioUring.reason ? ` (${m.ioUring.reason})` : ''}`}, ` +
        `server on CPU ${m.serverCpu ?? '-'}, load on CPU ${m.clientCpu ?? '-'}`,
      width,
    ),
    '',
  ];
  for (const t of allTables(r)) {
    const text = textTable(t, width);
    out.push(color ? text.replace(t.title, bold(t.title)) : text, '');
  }
  if (Array.isArray(r.traces) && r.traces.length) out.push(textTable(traceTable(r.traces), width), '');
  out.push(renderClaimsText(judgeClaims(r), width, color));
  if (r.notes.length) {
    out.push('', 'Notes', '=====');
    for (const n of r.notes) out.push(...wrap(`- ${n}`, width));
  }
  return out.join('\n') + '\n';
}
