/**
 * The report's tables, built once from LabResults and rendered by terminal.ts, markdown.ts and
 * html.ts. Two of them rebuild the article's own tables ("When each shines", "Cost-per-connection")
 * with a column of what this machine measured beside each of the article's figures.
 */
import type { LabResults, Protocol, ScenarioResult, Target } from '../lab/results.js';
import { bytes, conns, div, num, pct, ratio, us, type Table } from './format.js';
import {
  PROTOCOL_ORDER, held, idleActiveParams, idleOf, isMeasured, isStatic, label, loadPoints, representative, targets, workOf, zeroCopyOf,
} from './query.js';

const p99Of = (s: ScenarioResult | undefined): number | null => {
  const v = s?.median?.latencyUs?.p99;
  return v != null && Number.isFinite(v) ? v : null;
};

/** The article's models, in its order, and which measured targets fall under each. */
interface Group {
  model: string;
  /** The article's words for this model in the table being rebuilt. */
  article: string;
  members: (t: Target) => boolean;
  /** When no target can be measured here at all. */
  never?: string;
}

const SHINES: Group[] = [
  { model: 'Blocking + threads', article: '<1000 connections, simple code, low concurrency services', members: (t) => t.model === 'blocking' },
  {
    model: 'Non-blocking alone (busy poll)',
    article: 'not in the table; the article: "wastes CPU if you actually poll, useless on its own"',
    members: (t) => t.model === 'non-blocking',
  },
  {
    model: 'Non-blocking + epoll',
    article: '10k-1M connections, network servers, proxies',
    members: (t) => t.model === 'multiplexing' || t.model === 'reference',
  },
  { model: 'io_uring', article: 'High-throughput storage and network, latest kernels', members: (t) => t.model === 'async' },
  { model: 'IOCP (Windows)', article: 'Same as io_uring, but on Windows', members: () => false, never: 'Windows only: not measurable here' },
];

const COST: Group[] = [
  { model: 'Thread-per-connection', article: '~10MB RAM, plus context switch every syscall', members: (t) => t.model === 'blocking' },
  { model: 'Non-blocking alone (busy poll)', article: '(no figure in the article)', members: (t) => t.model === 'non-blocking' },
  {
    model: 'epoll',
    article: '~10KB RAM (fd table entry, kernel buffer), no per-connection thread',
    members: (t) => t.model === 'multiplexing' || t.model === 'reference',
  },
  { model: 'io_uring', article: 'similar to epoll, with batched submission', members: (t) => t.model === 'async' },
];

const KNOWN_MODELS = new Set(['blocking', 'non-blocking', 'multiplexing', 'reference', 'async']);

/** Targets not under any of the article's models (a model name the lab added later). */
function others(r: LabResults): Group[] {
  const extra = [...new Set(targets(r).map((t) => t.model).filter((m) => !KNOWN_MODELS.has(m)))];
  return extra.map((m) => ({ model: m, article: '(not in the article)', members: (t: Target) => t.model === m }));
}

function grouped(r: LabResults, groups: Group[], row: (t: Target) => string[], width: number): string[][] {
  const rows: string[][] = [];
  for (const g of [...groups, ...others(r)]) {
    const ts = targets(r).filter(g.members);
    if (ts.length === 0) {
      rows.push([g.model, g.article, g.never ? 'n/a' : '(none in this run)', ...Array(width - 3).fill(g.never ? '-' : '')]);
      continue;
    }
    ts.forEach((t, i) => rows.push([i === 0 ? g.model : '', i === 0 ? g.article : '', ...row(t)]));
  }
  return rows;
}

function rpsCell(s: ScenarioResult | undefined, at: number): string {
  if (!s?.median) return '-';
  const c = s.params.connections;
  // Where the figure is not at `at` connections over HTTP, say so on a second line.
  const where = [c !== at ? `@${conns(c)}` : '', s.protocol !== 'http' ? s.protocol : ''].filter(Boolean).join(' ');
  return where ? `${num(s.median.rps)}\n${where}` : num(s.median.rps);
}

export function shinesTable(r: LabResults): Table {
  const rows = grouped(
    r,
    SHINES,
    (t) => {
      const rep = representative(r, t.name, 100);
      const h = held(r, t.name);
      return [
        label(t),
        rpsCell(rep, 100),
        us(p99Of(rep)),
        conns(h.maxOk),
        h.brokeAt == null ? (h.maxOk == null ? '-' : 'did not break') : `${conns(h.brokeAt)}: ${h.why ?? 'no reason recorded'}`,
      ];
    },
    7,
  );
  return {
    id: 'shines',
    title: 'When each shines: the article\'s table, with what this machine measured',
    columns: [
      { header: 'Model', max: 14 },
      { header: 'Article\'s sweet spot', max: 26 },
      { header: 'Target', max: 15, nowrap: true },
      { header: 'req/s @100', align: 'right', max: 10 },
      { header: 'p99 @100', align: 'right' },
      { header: 'Held', align: 'right' },
      { header: 'Broke at (why)', max: 30 },
    ],
    rows,
    notes: [
      'req/s and p99 at 100 connections over HTTP where measured (else the nearest count, marked @N, or the protocol named). ' +
        'Held: most connections held within the SLO and the memory guard (ramp, load or idle hold); "did not break": the run stopped first.',
    ],
  };
}

export function costTable(r: LabResults): Table {
  const rows = grouped(
    r,
    COST,
    (t) => {
      const i = idleOf(r, t.name);
      const rep = representative(r, t.name, 100);
      return [
        label(t),
        i ? (i.partial ? `${conns(i.held)} of ${conns(i.connections)}` : conns(i.held)) : '-',
        i ? bytes(i.userPerConn) : '-',
        i ? bytes(i.kernelPerConn) : '-',
        i ? num(i.threadsPerConn) : '-',
        num(rep?.median.ctxSwitchesPerReq),
      ];
    },
    8,
  );
  const skipped = r.results.filter((s) => s.scenario === 'idle' && s.status !== 'ok');
  return {
    id: 'cost',
    title: 'Cost per connection: the article\'s figures vs idle connections held here',
    columns: [
      { header: 'Model', max: 14 },
      { header: 'Article', max: 26 },
      { header: 'Target', max: 15, nowrap: true },
      { header: 'Idle conns', align: 'right' },
      { header: 'User RSS/conn', align: 'right' },
      { header: 'Kernel/conn', align: 'right' },
      { header: 'Threads/conn', align: 'right' },
      { header: 'Ctx sw/req', align: 'right' },
    ],
    rows,
    notes: [
      'User RSS/conn: growth of the server\'s resident memory per idle connection held. Kernel/conn: the slab objects of a server socket at this kernel\'s sizes ' +
        '(sock, inode, file, dentry, and an epoll item where the server was seen to add one per connection) + queued buffers. ' +
        'Ctx sw/req: context switches per request under load (100 connections where measured).',
      ...groupedReasons(skipped),
    ],
  };
}

function protoLabel(s: ScenarioResult): string {
  if (!isStatic(s)) return s.protocol;
  const zc = zeroCopyOf(s);
  const size = typeof s.params.fileBytes === 'number' ? ` ${bytes(s.params.fileBytes)}` : '';
  return `${s.protocol} static${size}${zc == null ? '' : zc ? ' sendfile' : ' copy'}`;
}

const byTargetOrder = (r: LabResults): ((a: ScenarioResult, b: ScenarioResult) => number) => {
  const order = new Map(targets(r).map((t, i) => [t.name, i]));
  return (a, b) =>
    PROTOCOL_ORDER.indexOf(a.protocol) - PROTOCOL_ORDER.indexOf(b.protocol) ||
    Number(isStatic(a)) - Number(isStatic(b)) ||
    (order.get(a.target.name) ?? 0) - (order.get(b.target.name) ?? 0) ||
    a.params.connections - b.params.connections;
};

export function throughputTable(r: LabResults): Table {
  const all = r.results.filter((s) => s.scenario === 'throughput').sort(byTargetOrder(r));
  const rs = all.some(isMeasured) ? all : [];
  const rows = rs.map((s) => {
    const m = s.median;
    if (!isMeasured(s) || !m) return [label(s.target), protoLabel(s), conns(s.params.connections), s.status, '-', '-', '-', '-', '-', '-'];
    return [
      label(s.target),
      protoLabel(s),
      conns(s.params.connections),
      num(m.rps),
      us(p99Of(s)),
      us(m.cpuUsPerReq),
      num(m.syscallsPerReq),
      num(m.ctxSwitchesPerReq),
      bytes(m.rssBytes),
      s.rpsSpread == null ? '-' : pct(s.rpsSpread * 100),
    ];
  });
  return {
    id: 'throughput',
    title: 'Throughput and cost per request',
    columns: [
      { header: 'Target', max: 22, nowrap: true },
      { header: 'Protocol', max: 26 },
      { header: 'Conns', align: 'right' },
      { header: 'req/s', align: 'right' },
      { header: 'p99', align: 'right' },
      { header: 'CPU/req', align: 'right' },
      { header: 'Syscalls/req', align: 'right' },
      { header: 'Ctx/req', align: 'right' },
      { header: 'RSS', align: 'right' },
      { header: 'Spread', align: 'right' },
    ],
    rows,
    empty: emptyReason(r, 'throughput'),
    notes: [
      'CPU/req: the server process tree\'s user+system CPU per request over the window (ranks servers even when the client is the bottleneck). ' +
        'Syscalls/req: the engine\'s own counters (iolab engines only). Spread: (max - min) / median req/s over repeats.',
    ],
  };
}

/** "idle skipped (budget): epoll @10,000, poll @10,000": one line per distinct status and reason. */
export function groupedReasons(rs: ScenarioResult[]): string[] {
  const by = new Map<string, string[]>();
  for (const s of rs) {
    const k = `${s.scenario} ${s.status}${s.reason ? ` (${s.reason})` : ''}`;
    by.set(k, [...(by.get(k) ?? []), `${label(s.target)} @${conns(s.idle?.connections ?? s.params.connections)}`]);
  }
  return [...by.entries()].map(([k, v]) => `${k}: ${v.join(', ')}`);
}

/** Why a scenario has no rows: the reasons it was skipped or failed, or that it was not in the run. */
export function emptyReason(r: LabResults, scenario: ScenarioResult['scenario']): string {
  const rs = r.results.filter((s) => s.scenario === scenario);
  if (rs.length === 0) return `${scenario}: not in this run`;
  const why = [...new Set(rs.filter((s) => s.status !== 'ok').map((s) => `${s.status}${s.reason ? `: ${s.reason}` : ''}`))];
  return `${scenario}: nothing measured (${why.slice(0, 3).join('; ') || 'no samples'})`;
}

/** Series of the connection ramp: one per (target, protocol) with at least two connection counts. */
export function scalingSeries(r: LabResults): { target: Target; protocol: Protocol; points: Map<number, ScenarioResult> }[] {
  const out: { target: Target; protocol: Protocol; points: Map<number, ScenarioResult> }[] = [];
  for (const t of targets(r)) {
    for (const p of PROTOCOL_ORDER) {
      const points = loadPoints(r, t.name, p);
      if ([...points.values()].filter(isMeasured).length >= 2) out.push({ target: t, protocol: p, points });
    }
  }
  return out;
}

export function scalingTable(r: LabResults, what: 'rps' | 'p99' = 'rps'): Table {
  const series = scalingSeries(r);
  const counts = [...new Set(series.flatMap((s) => [...s.points.keys()]))].sort((a, b) => a - b);
  const cell = (s: ScenarioResult | undefined): string => {
    if (!s) return '';
    if (!isMeasured(s)) return s.status;
    return what === 'rps' ? num(s.median.rps) : us(p99Of(s));
  };
  return {
    id: `scaling-${what}`,
    title: what === 'rps' ? 'Scaling: req/s as connections grow' : 'Scaling: p99 latency as connections grow',
    columns: [{ header: 'Target', max: 22, nowrap: true }, { header: 'Protocol' }, ...counts.map((c) => ({ header: conns(c), align: 'right' as const }))],
    rows: series.map((s) => [label(s.target), s.protocol, ...counts.map((c) => cell(s.points.get(c)))]),
    empty: emptyReason(r, 'scaling'),
    notes:
      what === 'rps'
        ? ['Each column is a connection count (closed loop, keep-alive; counts from the breaking-point ramp included). "broke": that step failed the SLO or the guard.']
        : [],
  };
}

/** idle-active: each engine's busy connections measured beside more and more idle ones (CLAIMS.md C3). */
export function idleActiveTable(r: LabResults): Table {
  const order = new Map(targets(r).map((t, i) => [t.name, i]));
  const all = r.results
    .filter((s) => s.scenario === 'idle-active')
    .sort((a, b) => (order.get(a.target.name) ?? 0) - (order.get(b.target.name) ?? 0) || idleActiveParams(a).idle - idleActiveParams(b).idle);
  const rs = all.some(isMeasured) ? all : [];
  const rows = rs.map((s) => {
    const p = idleActiveParams(s);
    const idle = p.held < p.idle ? `${conns(p.held)} of ${conns(p.idle)}` : conns(p.idle);
    if (!isMeasured(s)) return [label(s.target), idle, conns(p.active), s.status, '-', '-', '-', '-', s.reason ?? ''];
    // CPU per request against the same target's fewest idle measured: the cost idle connections add.
    const first = rs.find((o) => o.target.name === s.target.name && isMeasured(o));
    const vs = first && first !== s ? ratio(div(s.median.cpuUsPerReq, first.median?.cpuUsPerReq)) : '';
    return [label(s.target), idle, conns(p.active), num(s.median.rps), us(p99Of(s)), us(s.median.cpuUsPerReq), num(s.median.syscallsPerReq), vs, ''];
  });
  return {
    id: 'idle-active',
    title: 'Idle + active: busy connections beside idle ones (CPU per request as idle connections grow)',
    columns: [
      { header: 'Target', max: 22, nowrap: true },
      { header: 'Idle', align: 'right' },
      { header: 'Busy', align: 'right' },
      { header: 'req/s', align: 'right' },
      { header: 'p99', align: 'right' },
      { header: 'CPU/req', align: 'right' },
      { header: 'Syscalls/req', align: 'right' },
      { header: 'CPU vs fewest idle', align: 'right' },
      { header: 'Why not measured', max: 40 },
    ],
    rows,
    empty: emptyReason(r, 'idle-active'),
    notes: [
      'A closed loop of busy HTTP connections while the server also holds N idle ones. poll and select hand the kernel every watched fd ' +
        'on each wait and scan them all for the ready few (O(n) per wait); epoll and io_uring report only what is ready.',
    ],
  };
}

export function blockingTable(r: LabResults): Table {
  const all = r.results.filter((s) => s.scenario === 'blocking-handler').sort(byTargetOrder(r));
  const rs = all.some(isMeasured) ? all : [];
  const rows = rs.map((s) => {
    const w = workOf(s) ?? 'none';
    if (!isMeasured(s)) return [label(s.target), conns(s.params.connections), w, s.status, '-', '-', s.reason ?? ''];
    const asyncTwin = rs.find(
      (o) => o !== s && o.target.name === s.target.name && o.params.connections === s.params.connections && workOf(o)?.startsWith('async') && isMeasured(o),
    );
    const vs = w.startsWith('blocking') && asyncTwin?.median ? ratio(div(s.median.rps, asyncTwin.median.rps)) : '';
    return [label(s.target), conns(s.params.connections), w, num(s.median.rps), us(p99Of(s)), num(s.median.loopStalls), vs];
  });
  return {
    id: 'blocking',
    title: 'Blocking handler: 1 ms of blocking work vs 1 ms of asynchronous waiting',
    columns: [
      { header: 'Target', max: 22, nowrap: true },
      { header: 'Conns', align: 'right' },
      { header: 'Work' },
      { header: 'req/s', align: 'right' },
      { header: 'p99', align: 'right' },
      { header: 'Loop stalls', align: 'right' },
      { header: 'vs async', align: 'right', max: 40 },
    ],
    rows,
    empty: emptyReason(r, 'blocking-handler'),
    notes: ['blocking:1ms parks the serving thread in nanosleep; async:1ms answers from a timer. One event loop can do at most ~1,000 blocking requests a second.'],
  };
}

export function notMeasuredTable(r: LabResults): Table {
  const rs = r.results.filter((s) => s.status !== 'ok');
  return {
    id: 'not-measured',
    title: 'Skipped, broken and failed runs',
    columns: [{ header: 'Scenario' }, { header: 'Target', max: 22, nowrap: true }, { header: 'Conns', align: 'right' }, { header: 'Status' }, { header: 'Reason', max: 60 }],
    rows: rs.map((s) => [
      s.scenario + (workOf(s) ? ` ${workOf(s)}` : ''),
      label(s.target),
      conns(s.idle?.connections ?? s.params.connections),
      s.status,
      s.reason ?? '',
    ]),
    empty: 'every scenario that ran was measured',
  };
}

export function machineTable(r: LabResults): Table {
  const m = r.machine;
  const io = m.ioUring.available
    ? `available${m.ioUring.features != null ? ` (features 0x${m.ioUring.features.toString(16)})` : ''}`
    : `not available${m.ioUring.reason ? `: ${m.ioUring.reason}` : ''}`;
  const rows: [string, string][] = [
    ['Kernel', `${m.kernel} (${m.arch})`],
    ['CPU', `${m.cpus} x ${m.cpuModel}`],
    ['Memory', bytes(m.memBytes)],
    ['Node / iolab', `${m.node} / ${m.iolab}`],
    ['io_uring', io],
    ['Open files (soft / hard)', `${conns(m.nofile.soft)} / ${conns(m.nofile.hard)}`],
    ['Pinning (server / load)', `${m.serverCpu ?? 'not pinned'} / ${m.clientCpu ?? 'not pinned'}`],
    ['Run', `${r.mode}, budget ${r.budgetS} s, ${r.startedAt} to ${r.finishedAt}`],
  ];
  return { id: 'machine', title: 'Machine', columns: [{ header: 'What' }, { header: 'Value', max: 90 }], rows };
}

/** The tables in report order. */
export function allTables(r: LabResults): Table[] {
  return [shinesTable(r), costTable(r), throughputTable(r), scalingTable(r, 'rps'), scalingTable(r, 'p99'), idleActiveTable(r), blockingTable(r), notMeasuredTable(r)];
}
