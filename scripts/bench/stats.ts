/**
 * Medians and the result table of `npm run bench`: one row per figure, printed for the terminal and
 * as Markdown rows for BENCHMARKS.md.
 */

export interface Row {
  /** Which of the measurements (1–5) the row belongs to. */
  group: string;
  figure: string;
  value: number;
  unit: string;
  /** The figure must be at most this (undefined: informational). */
  max?: number;
  /** How the value was made: the medians behind a ratio, run counts, the critical path. */
  detail: string;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Rounds for display: 3 significant digits, at most 2 decimals. */
export function fmt(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : 2;
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

export function verdict(row: Row): string {
  if (row.max === undefined) return '';
  return row.value <= row.max ? 'pass' : 'FAIL';
}

function target(row: Row): string {
  return row.max === undefined ? '' : `≤ ${fmt(row.max)}`;
}

/** An aligned plain-text table for the terminal. */
export function renderTable(rows: readonly Row[]): string {
  const cells = rows.map((r) => [r.group, r.figure, `${fmt(r.value)} ${r.unit}`, target(r), verdict(r)]);
  const header = ['#', 'figure', 'value', 'target', ''];
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) =>
    c
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

/** The same rows as a Markdown table, details included, ready for BENCHMARKS.md. */
export function renderMarkdown(rows: readonly Row[]): string {
  const cell = (s: string) => s.replaceAll('|', '\\|');
  return [
    '| # | figure | value | target | | how it was made |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${r.group} | ${cell(r.figure)} | ${fmt(r.value)} ${r.unit} | ${target(r)} | ${verdict(r)} | ${cell(r.detail)} |`,
    ),
  ].join('\n');
}

export function ms(value: number): string {
  return `${fmt(value)} ms`;
}

export function mb(kilobytes: number): string {
  return `${fmt(kilobytes / 1024)} MB`;
}
