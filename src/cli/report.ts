/**
 * `iolab report <results.json>`: render a results file again (the claims judged afresh by the current
 * rules) in the terminal, as report.md and report.html. `iolab compare <a.json> <b.json>`: what changed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { judgeClaims, readResults, renderCompare, renderHtml, renderMarkdown, renderTerminal, writeReports } from '../report/index.js';

export interface ReportFlags {
  out?: string;
  format: 'terminal' | 'md' | 'html' | 'all';
}

export function report(path: string, flags: ReportFlags): void {
  const r = readResults(path);
  const out = flags.out ?? dirname(path);
  const claimed = { ...r, claims: judgeClaims(r) };
  const write = (name: string, text: string): string => {
    mkdirSync(out, { recursive: true });
    const p = resolve(join(out, name));
    writeFileSync(p, text);
    return p;
  };
  switch (flags.format) {
    case 'terminal':
      process.stdout.write(renderTerminal(claimed));
      return;
    case 'md':
      process.stdout.write(`wrote ${write('report.md', renderMarkdown(claimed))}\n`);
      return;
    case 'html':
      process.stdout.write(`wrote ${write('report.html', renderHtml(claimed))}\n`);
      return;
    case 'all': {
      process.stdout.write(renderTerminal(claimed));
      const p = writeReports(r, out);
      process.stdout.write(`\nwrote ${p.json}\n      ${p.md}\n      ${p.html}\n`);
      return;
    }
  }
}

export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description('render a results.json again: tables and claim verdicts in the terminal, report.md, report.html')
    .argument('<results>', 'a results.json written by `iolab bench`')
    .option('-o, --out <dir>', 'directory for report.md / report.html / results.json (default: the results file\'s directory)')
    .addOption(new Option('-f, --format <format>', 'what to produce').choices(['terminal', 'md', 'html', 'all']).default('all'))
    .addHelpText(
      'after',
      '\nThe claims are judged again by the current rules. With --format all, results.json in the output directory is\n' +
        'rewritten with those verdicts (the measurements are unchanged).\n\n' +
        'Examples:\n  iolab report runs/results.json --format terminal\n  iolab report runs/results.json --out /tmp/report\n',
    )
    .action((path: string, flags: ReportFlags) => report(path, flags));
}

export function registerCompareCommand(program: Command): void {
  program
    .command('compare')
    .description('what changed between two results files: req/s, p99, CPU and syscalls per request, memory per connection, verdicts')
    .argument('<a>', 'the earlier results.json (A)')
    .argument('<b>', 'the later results.json (B), shown as its figure and B/A')
    .action((a: string, b: string) => {
      process.stdout.write(renderCompare(readResults(a), readResults(b)));
    });
}
