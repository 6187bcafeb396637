/**
 * Number formatting and a plain-text table layout shared by every report.
 * Figures are rounded to three significant digits: run-to-run spread on a shared 2-core VM is a few
 * percent, so a fourth digit would be noise dressed as precision.
 */

/** Round to `digits` significant digits (0 stays 0). */
export function sig(n: number, digits = 3): number {
  if (n === 0 || !Number.isFinite(n)) return n;
  const p = Math.pow(10, digits - Math.ceil(Math.log10(Math.abs(n))));
  return Math.round(n * p) / p;
}

/** 41213 -> "41,200"; 987.6 -> "988"; 12.34 -> "12.3"; 0.0312 -> "0.0312". */
export function num(n: number | null | undefined, digits = 3): string {
  if (n == null || !Number.isFinite(n)) return '-';
  const v = sig(n, digits);
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return String(v);
}

export function int(n: number | null | undefined): string {
  if (n == null || !Number.isFinite(n)) return '-';
  return Math.round(n).toLocaleString('en-US');
}

/** Connection counts: 10000 -> "10,000" (exact: counts are inputs, not measurements). */
export const conns = int;

/** Microseconds to a readable duration: 850 -> "850 µs", 1234 -> "1.23 ms", 2.5e6 -> "2.5 s". */
export function us(v: number | null | undefined): string {
  if (v == null || !Number.isFinite(v)) return '-';
  if (Math.abs(v) < 1000) return `${num(v)} µs`;
  if (Math.abs(v) < 1e6) return `${num(v / 1000)} ms`;
  return `${num(v / 1e6)} s`;
}

/** Bytes, binary multiples (the kernel's and the article's "KB"/"MB"). */
export function bytes(b: number | null | undefined): string {
  if (b == null || !Number.isFinite(b)) return '-';
  const a = Math.abs(b);
  if (a < 1024) return `${num(b)} B`;
  if (a < 1024 ** 2) return `${num(b / 1024)} KB`;
  if (a < 1024 ** 3) return `${num(b / 1024 ** 2)} MB`;
  return `${num(b / 1024 ** 3)} GB`;
}

/** 0.8512 -> "0.85x"; 12.3 -> "12x"; 140 -> "140x". */
export function ratio(x: number | null | undefined): string {
  if (x == null || !Number.isFinite(x)) return '-';
  if (Math.abs(x) >= 10) return `${num(Math.round(x), 3)}x`;
  return `${x.toFixed(2)}x`;
}

export function pct(x: number | null | undefined): string {
  if (x == null || !Number.isFinite(x)) return '-';
  return `${num(x)}%`;
}

/** a/b, or null when either is missing or b is 0. */
export function div(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a == null || b == null || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return a / b;
}

// ---------------------------------------------------------------------------------------------
// Tables: one model, rendered as text (terminal), markdown and HTML.

export interface Column {
  header: string;
  align?: 'left' | 'right';
  /** Widest this column may be in text output; longer cells wrap at spaces. */
  max?: number;
  /** HTML: never wrap (names like "apache2-prefork"). */
  nowrap?: boolean;
}

export interface Table {
  /** Stable id (used for HTML anchors and tests). */
  id: string;
  title: string;
  columns: Column[];
  rows: string[][];
  /** Shown under the table: what a column means, where a figure comes from. */
  notes?: string[];
  /** When there are no rows: why (a scenario skipped, nothing measured). */
  empty?: string;
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

export function visibleLength(s: string): number {
  return [...s.replace(ANSI, '')].length;
}

/** Pad a string (which may carry ANSI colour) to a visible width. */
export function pad(s: string, width: number, align: 'left' | 'right' = 'left'): string {
  const fill = ' '.repeat(Math.max(0, width - visibleLength(s)));
  return align === 'right' ? fill + s : s + fill;
}

/** Wrap plain text to lines of at most `width` columns, breaking at spaces (hard-breaking long words). */
export function wrap(text: string, width: number): string[] {
  if (width <= 0) return [text];
  const out: string[] = [];
  for (const para of text.split('\n')) {
    let line = '';
    for (const word of para.split(' ')) {
      let w = word;
      while ([...w].length > width) {
        if (line) {
          out.push(line);
          line = '';
        }
        // Break after a hyphen when there is one ("Thread-per-" / "connection"), else hard.
        const head = [...w].slice(0, width).join('');
        const cut = head.lastIndexOf('-') + 1 || width;
        out.push([...w].slice(0, cut).join(''));
        w = [...w].slice(cut).join('');
      }
      if (!line) line = w;
      else if ([...line].length + 1 + [...w].length <= width) line += ' ' + w;
      else {
        out.push(line);
        line = w;
      }
    }
    out.push(line);
  }
  return out;
}

const GAP = '  ';

/** Lay a table out in at most `width` columns: cells wrap inside their column. */
export function textTable(t: Table, width = 120): string {
  const lines: string[] = [t.title, '='.repeat(Math.min(width, visibleLength(t.title)))];
  if (t.rows.length === 0) {
    lines.push(`(${t.empty ?? 'nothing measured'})`);
  } else {
    const n = t.columns.length;
    const natural = t.columns.map((c, i) =>
      Math.max(visibleLength(c.header), ...t.rows.map((r) => visibleLength(r[i] ?? ''))),
    );
    const widths = natural.map((w, i) => Math.min(w, t.columns[i]!.max ?? w));
    // Shrink the widest columns until the row fits (never below 6 columns or the header's longest word).
    const total = (): number => widths.reduce((a, b) => a + b, 0) + GAP.length * (n - 1);
    const floor = t.columns.map((c) => Math.max(6, ...c.header.split(' ').map((w) => w.length)));
    while (total() > width) {
      let widest = -1;
      for (let i = 0; i < n; i++) if (widths[i]! > floor[i]! && (widest < 0 || widths[i]! > widths[widest]!)) widest = i;
      if (widest < 0) break;
      widths[widest]!--;
    }
    const emit = (cells: string[]): void => {
      const wrapped = cells.map((c, i) => (visibleLength(c) <= widths[i]! ? [c] : wrap(c.replace(ANSI, ''), widths[i]!)));
      const height = Math.max(...wrapped.map((w) => w.length));
      for (let k = 0; k < height; k++) {
        lines.push(
          wrapped
            .map((w, i) => pad(w[k] ?? '', widths[i]!, t.columns[i]!.align ?? 'left'))
            .join(GAP)
            .trimEnd(),
        );
      }
    };
    emit(t.columns.map((c) => c.header));
    lines.push(widths.map((w) => '-'.repeat(w)).join(GAP));
    for (const r of t.rows) emit(r);
  }
  for (const note of t.notes ?? []) lines.push(...wrap(note, width));
  return lines.join('\n');
}

/** Markdown: pipes escaped, line breaks as <br>. */
export function markdownTable(t: Table): string {
  const cell = (s: string): string => s.replace(ANSI, '').replace(/\|/g, '\\|').replace(/\n/g, '<br>');
  const out: string[] = [`### ${t.title}`, ''];
  if (t.rows.length === 0) {
    out.push(`_${t.empty ?? 'nothing measured'}_`);
  } else {
    out.push(`| ${t.columns.map((c) => cell(c.header)).join(' | ')} |`);
    out.push(`|${t.columns.map((c) => (c.align === 'right' ? '---:' : '---')).join('|')}|`);
    for (const r of t.rows) out.push(`| ${t.columns.map((_, i) => cell(r[i] ?? '')).join(' | ')} |`);
  }
  if (t.notes?.length) out.push('', ...t.notes.map((n) => `_${n}_`));
  return out.join('\n');
}

export function escapeHtml(s: string): string {
  return s.replace(ANSI, '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function htmlTable(t: Table): string {
  const out: string[] = [`<section class="table" id="${escapeHtml(t.id)}"><h2>${escapeHtml(t.title)}</h2>`];
  if (t.rows.length === 0) {
    out.push(`<p class="empty">${escapeHtml(t.empty ?? 'nothing measured')}</p>`);
  } else {
    const cls = (c: Column): string => (c.align === 'right' ? ' class="num"' : c.nowrap ? ' class="nw"' : '');
    out.push('<table><thead><tr>');
    for (const c of t.columns) out.push(`<th${cls(c)}>${escapeHtml(c.header)}</th>`);
    out.push('</tr></thead><tbody>');
    for (const r of t.rows) {
      out.push('<tr>');
      t.columns.forEach((c, i) => out.push(`<td${cls(c)}>${escapeHtml(r[i] ?? '').replace(/\n/g, '<br>')}</td>`));
      out.push('</tr>');
    }
    out.push('</tbody></table>');
  }
  for (const n of t.notes ?? []) out.push(`<p class="note">${escapeHtml(n)}</p>`);
  out.push('</section>');
  return out.join('');
}
