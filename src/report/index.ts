/**
 * The report step: judge the claims, write results.json + report.md + report.html, and read a
 * results file back with a schema check that says what is wrong and what to do.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { RESULTS_SCHEMA, type LabResults } from '../lab/results.js';
import { judgeClaims } from './claims.js';
import { renderHtml } from './html.js';
import { renderMarkdown } from './markdown.js';

export { judgeClaims, RULES, THRESHOLDS } from './claims.js';
export { renderTerminal } from './terminal.js';
export { renderMarkdown } from './markdown.js';
export { renderHtml } from './html.js';
export { renderCompare } from './compare.js';

/** A results file that cannot be read: not JSON, not iolab's, another schema version, or malformed. */
export class ResultsFileError extends Error {
  readonly code = 'IOLAB_RESULTS_FILE';
  constructor(readonly path: string, message: string) {
    super(`${path}: ${message}`);
    this.name = 'ResultsFileError';
  }
}

/** Write results.json (claims judged afresh), report.md and report.html into `dir`; returns their paths. */
export function writeReports(r: LabResults, dir: string): { json: string; md: string; html: string } {
  mkdirSync(dir, { recursive: true });
  const withClaims: LabResults = { ...r, claims: judgeClaims(r) };
  const paths = { json: resolve(join(dir, 'results.json')), md: resolve(join(dir, 'report.md')), html: resolve(join(dir, 'report.html')) };
  writeFileSync(paths.json, JSON.stringify(withClaims, null, 2) + '\n');
  writeFileSync(paths.md, renderMarkdown(withClaims));
  writeFileSync(paths.html, renderHtml(withClaims));
  return paths;
}

const SCENARIOS = new Set(['throughput', 'scaling', 'idle', 'idle-active', 'blocking-handler', 'breaking-point']);
const STATUSES = new Set(['ok', 'skipped', 'broke', 'failed']);

type Check = [path: string, ok: boolean, expected: string];

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNum = (v: unknown): boolean => typeof v === 'number';
const isNumOrNull = (v: unknown): boolean => v === null || typeof v === 'number';
const isStr = (v: unknown): boolean => typeof v === 'string';

/** The fields the report reads, checked; returns "where: expected" for each problem. */
function problems(v: Record<string, unknown>): string[] {
  const out: string[] = [];
  const check = (cs: Check[]): void => {
    for (const [p, ok, exp] of cs) if (!ok) out.push(`${p}: expected ${exp}`);
  };
  const m = v.machine;
  check([
    ['startedAt', isStr(v.startedAt), 'a string'],
    ['finishedAt', isStr(v.finishedAt), 'a string'],
    ['mode', isStr(v.mode), 'a string'],
    ['machine', isObj(m), 'an object'],
    ['results', Array.isArray(v.results), 'an array'],
    ['notes', v.notes === undefined || Array.isArray(v.notes), 'an array'],
  ]);
  if (isObj(m)) {
    check([
      ['machine.kernel', isStr(m.kernel), 'a string'],
      ['machine.cpus', isNum(m.cpus), 'a number'],
      ['machine.memBytes', isNum(m.memBytes), 'a number'],
      ['machine.ioUring', isObj(m.ioUring) && typeof m.ioUring.available === 'boolean', '{ available: boolean }'],
      ['machine.nofile', isObj(m.nofile) && isNum(m.nofile.soft) && isNum(m.nofile.hard), '{ soft, hard }'],
    ]);
  }
  if (Array.isArray(v.results)) {
    v.results.forEach((s: unknown, i: number) => {
      const at = `results[${i}]`;
      if (!isObj(s)) return void out.push(`${at}: expected an object`);
      const t = s.target;
      const med = s.median;
      check([
        [`${at}.scenario`, isStr(s.scenario) && SCENARIOS.has(s.scenario as string), [...SCENARIOS].join(' | ')],
        [`${at}.target`, isObj(t) && isStr(t.name) && isStr(t.ran) && isStr(t.model) && isStr(t.kind), '{ kind, name, ran, model }'],
        [`${at}.protocol`, isStr(s.protocol), 'a string'],
        [`${at}.params.connections`, isObj(s.params) && isNum(s.params.connections), 'a number'],
        [`${at}.status`, isStr(s.status) && STATUSES.has(s.status as string), [...STATUSES].join(' | ')],
        [`${at}.samples`, Array.isArray(s.samples), 'an array'],
        [`${at}.median`, med === null || (isObj(med) && isNum(med.rps)), 'null or a sample with rps'],
        [`${at}.idle`, s.idle === undefined || (isObj(s.idle) && isNum(s.idle.held) && isNum(s.idle.rssPerConnBytes)), '{ held, rssPerConnBytes, ... }'],
        [
          `${at}.breaking`,
          s.breaking === undefined || (isObj(s.breaking) && isNumOrNull(s.breaking.maxOk) && isNumOrNull(s.breaking.brokeAt) && Array.isArray(s.breaking.steps)),
          '{ maxOk, brokeAt, why, steps[] }',
        ],
      ]);
    });
  }
  return out;
}

/** Check a parsed value is LabResults this iolab can read; `where` names it in errors. */
export function checkResults(v: unknown, where = 'results'): LabResults {
  if (!isObj(v)) throw new ResultsFileError(where, 'not an iolab results file (expected a JSON object)');
  const schema = v.schema;
  if (typeof schema !== 'string') {
    throw new ResultsFileError(where, `not an iolab results file (no "schema": "${RESULTS_SCHEMA}"); results.json is written by \`iolab bench\``);
  }
  if (schema !== RESULTS_SCHEMA) {
    if (schema.startsWith('iolab.results/')) {
      throw new ResultsFileError(where, `results schema ${schema}, but this iolab reads ${RESULTS_SCHEMA}; re-run \`iolab bench\`, or report with the iolab version that wrote it`);
    }
    throw new ResultsFileError(where, `not an iolab results file (schema ${JSON.stringify(schema)}, expected ${RESULTS_SCHEMA})`);
  }
  const ps = problems(v);
  if (ps.length) {
    const more = ps.length > 5 ? ` (and ${ps.length - 5} more)` : '';
    throw new ResultsFileError(where, `malformed ${RESULTS_SCHEMA} file: ${ps.slice(0, 5).join('; ')}${more}`);
  }
  const r = v as unknown as LabResults;
  if (!r.notes) r.notes = [];
  return r;
}

/** Read and check a results file. Throws ResultsFileError with what is wrong and what to do. */
export function readResults(path: string): LabResults {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ResultsFileError(path, code === 'ENOENT' ? 'no such file (run `iolab bench` to make one)' : `cannot read: ${(e as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ResultsFileError(path, `not JSON (${(e as Error).message}); expected a results.json written by \`iolab bench\``);
  }
  return checkResults(v, path);
}
