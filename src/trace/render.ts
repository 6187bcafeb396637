/** `iolab trace` as text: one connection's sequence with its phases, or every engine side by side. */
import type { TraceSummary } from '../lab/results.js';
import { pad, textTable } from '../report/format.js';
import { traceTable } from '../report/traces.js';
import { PHASE_TITLE } from './analyze.js';

const fmtUs = (us: number): string => (Math.abs(us) >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(1)} µs`);
const signed = (us: number): string => (us < 0 ? `-${fmtUs(-us)}` : `+${fmtUs(us)}`);

export function renderTrace(t: TraceSummary, width = 120): string {
  const head = `iolab trace: ${t.ran}${t.ran !== t.engine ? ` (asked for ${t.engine})` : ''} — ${t.model}, app ${t.app}, ` +
    `${t.requests} request${t.requests === 1 ? '' : 's'} on ${t.connections} connection${t.connections === 1 ? '' : 's'}`;
  if (t.status !== 'ok') return `${head}\n  ${t.status}: ${t.reason ?? ''}\n`;
  const multi = (t.threads ?? 1) > 1 || (t.processes ?? 1) > 1;
  const lines: string[] = [
    head,
    `The server's calls for one connection (fd ${t.fd}${multi ? `, across ${t.threads} threads in ${t.processes} process${t.processes === 1 ? '' : 'es'}` : ''}), in order:`,
    '',
    `${pad('at', 11, 'right')}  ${pad('in call', 10, 'right')}  ${pad('phase', 13)}  ${multi ? pad('thread', 8) + '  ' : ''}call`,
  ];
  const tids = new Map<string, number>();
  for (const s of t.steps) {
    const key = `${s.pid}/${s.tid}`;
    if (!tids.has(key)) tids.set(key, tids.size + 1);
    const inCall = s.sys === 'app' || s.sys === 'ready' || s.sys === 'sqe' || s.sys === 'cqe' || s.sys === 'aio_done' ? '' : fmtUs(s.durUs);
    const text = s.sys === 'app' ? `(${fmtUs(s.durUs)} in user space: parse, app, encode)` : s.text;
    const line = `${pad(signed(s.atUs), 11, 'right')}  ${pad(inCall, 10, 'right')}  ${pad(PHASE_TITLE[s.phase], 13)}  ` +
      `${multi ? pad(`#${tids.get(key)} ${s.tid}`, 8) + '  ' : ''}${text}`;
    lines.push(line.length > width ? line.slice(0, width - 1) + '…' : line);
  }
  if (t.truncated) lines.push(`  … ${t.truncated} more steps (--json has them all up to 400)`);
  lines.push('', 'By phase:', `  ${pad('phase', 14)}${pad('calls', 8, 'right')}  ${pad('time', 12, 'right')}`);
  for (const p of t.phases) lines.push(`  ${pad(PHASE_TITLE[p.phase], 14)}${pad(String(p.calls), 8, 'right')}  ${pad(fmtUs(p.timeUs), 12, 'right')}`);
  const x = t.totals;
  lines.push(
    '',
    `Totals: ${x.syscalls} calls (${x.callsPerRequest} per request), ${x.eagain} EAGAIN, ${x.waits} waits` +
      `${x.sqes || x.cqes ? `, ${x.sqes} SQEs submitted, ${x.cqes} CQEs reaped` : ''}.`,
    `The serving thread spent ${fmtUs(x.kernelUs)} inside calls (blocked or working in the kernel) and ${fmtUs(x.userUs)} ` +
      `in user space over the connection's ${fmtUs(x.lifeUs)}.`,
    `One request: ${t.request.join(' → ')}`,
  );
  if (t.reason) lines.push(`Note: ${t.reason}`);
  return lines.join('\n') + '\n';
}

export function renderAll(ts: TraceSummary[], width = 120): string {
  return textTable(traceTable(ts), width) + '\n';
}
