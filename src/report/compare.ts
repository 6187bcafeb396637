/**
 * `iolab compare a.json b.json`: what changed from run A to run B, measurement by measurement
 * (same scenario, target, protocol, connection count and work), as B's figure and B/A; the most
 * connections held; and the claims whose verdict changed (both judged afresh by today's rules).
 */
import type { LabResults, ScenarioResult } from '../lab/results.js';
import { judgeClaims } from './claims.js';
import { bytes, conns, div, num, ratio, textTable, wrap, us, type Table } from './format.js';
import { held, isMeasured, isStatic, label, targets, workOf, zeroCopyOf } from './query.js';

function key(s: ScenarioResult): string {
  const zc = zeroCopyOf(s);
  const app = isStatic(s) ? ` static${typeof s.params.fileBytes === 'number' ? ` ${s.params.fileBytes}` : ''}${zc == null ? '' : zc ? ' sendfile' : ' copy'}` : '';
  return [s.scenario, s.target.name, s.protocol + app, s.params.connections, workOf(s) ?? ''].join('|');
}

/** "52,000 (1.08x)": B's figure, and B/A. */
function cell(a: number | null | undefined, b: number | null | undefined, f: (v: number) => string): string {
  if (b == null || !Number.isFinite(b)) return a == null ? '-' : `- (A ${f(a)})`;
  const x = div(b, a);
  return x == null ? f(b) : `${f(b)} (${ratio(x)})`;
}

const p99 = (s: ScenarioResult): number | null => {
  const v = s.median?.latencyUs?.p99;
  return v != null && Number.isFinite(v) ? v : null;
};

export function renderCompare(a: LabResults, b: LabResults, width = 120): string {
  const out: string[] = [
    'iolab compare: B against A',
    `A: ${a.mode} run ${a.startedAt} on ${a.machine.kernel}, ${a.machine.cpus} CPUs, node ${a.machine.node}`,
    `B: ${b.mode} run ${b.startedAt} on ${b.machine.kernel}, ${b.machine.cpus} CPUs, node ${b.machine.node}`,
  ];
  const diffs: string[] = [];
  if (a.machine.kernel !== b.machine.kernel) diffs.push(`kernel ${a.machine.kernel} -> ${b.machine.kernel}`);
  if (a.machine.cpus !== b.machine.cpus || a.machine.cpuModel !== b.machine.cpuModel) diffs.push(`CPU ${a.machine.cpus} x ${a.machine.cpuModel} -> ${b.machine.cpus} x ${b.machine.cpuModel}`);
  if (a.machine.node !== b.machine.node) diffs.push(`node ${a.machine.node} -> ${b.machine.node}`);
  if (a.machine.ioUring.available !== b.machine.ioUring.available) diffs.push(`io_uring ${a.machine.ioUring.available ? 'available' : 'unavailable'} -> ${b.machine.ioUring.available ? 'available' : 'unavailable'}`);
  if (diffs.length) out.push(...wrap(`Different machines or software: ${diffs.join('; ')}. Ratios compare the runs, not only the code.`, width));
  out.push('');

  const ia = new Map(a.results.map((s) => [key(s), s]));
  const ib = new Map(b.results.map((s) => [key(s), s]));
  const load: string[][] = [];
  const idle: string[][] = [];
  const statusChanged: string[] = [];
  for (const [k, sb] of ib) {
    const sa = ia.get(k);
    if (!sa) continue;
    if (sa.status !== sb.status) {
      statusChanged.push(`${sb.scenario} ${label(sb.target)} ${sb.protocol} @${conns(sb.params.connections)}: ${sa.status} -> ${sb.status}${sb.reason ? ` (${sb.reason})` : ''}`);
    }
    if (sb.scenario === 'idle') {
      if (sa.idle && sb.idle) {
        idle.push([
          label(sb.target),
          conns(sb.idle.held),
          cell(sa.idle.rssPerConnBytes, sb.idle.rssPerConnBytes, bytes),
          cell(
            sa.idle.kernelSlabPerConnBytes == null ? null : sa.idle.kernelSlabPerConnBytes + (sa.idle.kernelBufferPerConnBytes ?? 0),
            sb.idle.kernelSlabPerConnBytes == null ? null : sb.idle.kernelSlabPerConnBytes + (sb.idle.kernelBufferPerConnBytes ?? 0),
            bytes,
          ),
          cell(sa.idle.threadsPerConn, sb.idle.threadsPerConn, num),
        ]);
      }
      continue;
    }
    if (!isMeasured(sa) || !isMeasured(sb)) continue;
    const [, , proto, c, work] = k.split('|');
    load.push([
      sb.scenario + (work ? ` ${work}` : ''),
      label(sb.target),
      proto!,
      conns(Number(c)),
      cell(sa.median.rps, sb.median.rps, num),
      cell(p99(sa), p99(sb), us),
      cell(sa.median.cpuUsPerReq, sb.median.cpuUsPerReq, us),
      cell(sa.median.syscallsPerReq, sb.median.syscallsPerReq, num),
    ]);
  }
  const loadTable: Table = {
    id: 'compare-load',
    title: 'Load: B\'s figure (B/A)',
    columns: [
      { header: 'Scenario', max: 22 },
      { header: 'Target', max: 18 },
      { header: 'Protocol', max: 14 },
      { header: 'Conns', align: 'right' },
      { header: 'req/s', align: 'right' },
      { header: 'p99', align: 'right' },
      { header: 'CPU/req', align: 'right' },
      { header: 'Syscalls/req', align: 'right' },
    ],
    rows: load,
    empty: 'no measurement appears, measured, in both files',
    notes: ['req/s above 1.00x is better; p99, CPU/req and syscalls/req below 1.00x are better.'],
  };
  const idleTable: Table = {
    id: 'compare-idle',
    title: 'Cost per idle connection: B\'s figure (B/A)',
    columns: [
      { header: 'Target', max: 22 },
      { header: 'Held', align: 'right' },
      { header: 'User RSS/conn', align: 'right' },
      { header: 'Kernel/conn', align: 'right' },
      { header: 'Threads/conn', align: 'right' },
    ],
    rows: idle,
    empty: 'no idle measurement in both files',
  };
  out.push(textTable(loadTable, width), '', textTable(idleTable, width), '');

  // Most connections held, where it changed.
  const names = [...new Set([...targets(a), ...targets(b)].map((t) => t.name))];
  const heldRows: string[][] = [];
  for (const n of names) {
    const ha = held(a, n);
    const hb = held(b, n);
    if (ha.maxOk === hb.maxOk && ha.brokeAt === hb.brokeAt) continue;
    heldRows.push([n, conns(ha.maxOk), conns(hb.maxOk), ratio(div(hb.maxOk, ha.maxOk)), conns(ha.brokeAt), conns(hb.brokeAt) + (hb.why ? `: ${hb.why}` : '')]);
  }
  out.push(
    textTable(
      {
        id: 'compare-held',
        title: 'Most connections held, where it changed',
        columns: [
          { header: 'Target', max: 22 },
          { header: 'Held A', align: 'right' },
          { header: 'Held B', align: 'right' },
          { header: 'B/A', align: 'right' },
          { header: 'Broke A', align: 'right' },
          { header: 'Broke B (why)', max: 50 },
        ],
        rows: heldRows,
        empty: 'unchanged',
      },
      width,
    ),
    '',
  );

  const only = (x: Map<string, ScenarioResult>, y: Map<string, ScenarioResult>): string[] =>
    [...x.entries()].filter(([k]) => !y.has(k)).map(([, s]) => `${s.scenario} ${label(s.target)} ${s.protocol} @${conns(s.params.connections)}${workOf(s) ? ` ${workOf(s)}` : ''}`);
  const onlyA = only(ia, ib);
  const onlyB = only(ib, ia);
  if (statusChanged.length) out.push('Status changed:', ...statusChanged.map((l) => `  ${l}`), '');
  if (onlyA.length) out.push(...wrap(`Only in A (${onlyA.length}): ${onlyA.join(', ')}`, width), '');
  if (onlyB.length) out.push(...wrap(`Only in B (${onlyB.length}): ${onlyB.join(', ')}`, width), '');

  // Claims, judged afresh on both sides so a rule change never reads as a measurement change.
  const ca = judgeClaims(a);
  const cb = judgeClaims(b);
  const changed = cb.filter((c) => ca.find((x) => x.id === c.id)?.verdict !== c.verdict);
  out.push('Claims', '======');
  if (changed.length === 0) out.push(...wrap(`No verdict changed (${cb.map((c) => `${c.id} ${c.verdict}`).join(', ')}).`, width));
  for (const c of changed) {
    const before = ca.find((x) => x.id === c.id);
    out.push(`${c.id}  verdict changed: ${before?.verdict ?? 'absent'} -> ${c.verdict}`);
    out.push(...wrap(c.claim, width - 4).map((l) => `    ${l}`));
    for (const e of c.evidence) out.push(...wrap(`B: ${e}`, width - 6).map((l, i) => (i === 0 ? `    - ${l}` : `      ${l}`)));
    for (const e of before?.evidence ?? []) out.push(...wrap(`A: ${e}`, width - 6).map((l, i) => (i === 0 ? `    - ${l}` : `      ${l}`)));
  }
  const same = cb.filter((c) => !changed.includes(c));
  if (changed.length && same.length) out.push(...wrap(`Unchanged: ${same.map((c) => `${c.id} ${c.verdict}`).join(', ')}.`, width));
  return out.join('\n') + '\n';
}
