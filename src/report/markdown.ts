/** report.md: the terminal report as markdown tables, plus the machine and the rule behind each verdict. */
import type { LabResults } from '../lab/results.js';
import { RULES, judgeClaims } from './claims.js';
import { markdownTable } from './format.js';
import { allTables, machineTable } from './tables.js';
import { traceTable } from './traces.js';

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderMarkdown(r: LabResults): string {
  const claims = judgeClaims(r);
  const out: string[] = [
    '# iolab report',
    '',
    `A ${r.mode} run from ${r.startedAt} to ${r.finishedAt}. Every figure below was measured on this machine; ` +
      'each claim of the article is judged from those figures by the rule listed at the end.',
    '',
    markdownTable(machineTable(r)),
    '',
    '## Claims',
    '',
    '| Claim | The article says | Verdict | Measured |',
    '|---|---|---|---|',
    ...claims.map((c) => `| ${c.id} | ${cell(c.claim)} | **${c.verdict}** | ${c.evidence.map(cell).join('<br>') || '-'} |`),
    '',
    '## Measurements',
    '',
  ];
  for (const t of allTables(r)) out.push(markdownTable(t), '');
  if (Array.isArray(r.traces) && r.traces.length) out.push(markdownTable(traceTable(r.traces)), '');
  if (r.notes.length) out.push('## Notes', '', ...r.notes.map((n) => `- ${n}`), '');
  out.push('## How each verdict is decided', '', ...RULES.map((rule) => `- **${rule.id}**: ${rule.rule}.`), '');
  return out.join('\n');
}
