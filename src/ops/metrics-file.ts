/**
 * Run metrics for the node_exporter textfile collector (`--collector.textfile.directory`, reads `*.prom`).
 *
 * Counters (`*_total`) must keep growing across runs, but each run is a new process: the caller reads the
 * previous file's counters with `readCounters` / `readCountersFromFile` and passes them to `renderMetrics`,
 * which adds this run's numbers. A missing or unreadable previous file restarts the counters at zero, which
 * Prometheus treats as an ordinary counter reset. The file is replaced atomically (temp name not ending in
 * `.prom`), so node_exporter never scrapes a half-written file. Read-add-write is not locked: call it under
 * the run lock so two runs do not carry over from the same previous file.
 */

import { CollectorError } from '../errors.js';
import { readFileIfExists, writeFileAtomic } from './atomic-file.js';

export const RUN_PHASES = ['fetch', 'read_metadata', 'write_objects', 'write_metadata', 'total'] as const;
export type RunPhase = (typeof RUN_PHASES)[number];

/** Where an error happened: the run phases without `total`, plus the steps around them. */
export const ERROR_PHASES = [
  'secrets',
  'pacing',
  'fetch',
  'read_metadata',
  'write_objects',
  'write_metadata',
  'other',
] as const;
export type ErrorPhase = (typeof ERROR_PHASES)[number];

export const EVENT_RESULTS = ['fetched', 'new', 'updated', 'quarantined', 'already_seen'] as const;
export type EventResult = (typeof EVENT_RESULTS)[number];

/** What one run contributes; fill it from the run summary. Times are ms since the epoch, durations ms. */
export interface RunMetrics {
  /** When the run finished (→ `last_run_timestamp_seconds`). */
  finishedAtMs: number;
  success: boolean;
  /** The last successful run's finish time: this run's when it succeeded, else the run status's lastSuccessAt. */
  lastSuccessAtMs?: number;
  /** Duration of each phase this run went through; a phase not reached is left out. */
  durationsMs: Partial<Record<RunPhase, number>>;
  /** Events of this run by result; added to `events_total`. */
  events: Partial<Record<EventResult, number>>;
  /** Errors of this run by phase (usually 0 or 1); added to `errors_total`. */
  errors: Partial<Record<ErrorPhase, number>>;
  /** Gaps detected in this run (missed events between two runs); added to `gaps_total`. */
  gaps?: number;
  /** Ids in the seen-set after the run (gauge). */
  seenIds?: number;
  /** Ids in the stored index after the run (gauge). */
  storedIds?: number;
  /** Size of this run's API response body (gauge). */
  responseBytes?: number;
}

const P = 'polisen_collector';

/**
 * The textfile for `m`, counters continued from `previousCounters` (keys as returned by readCounters).
 * Pure. Every known label value of a counter is written, zero included, so rate() sees every series.
 */
export function renderMetrics(m: RunMetrics, previousCounters: Record<string, number>): string {
  const out: string[] = [];
  const family = (name: string, type: 'gauge' | 'counter', help: string) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  };
  const sample = (name: string, labels: Record<string, string>, value: number) => {
    out.push(`${seriesKey(name, labels)} ${formatValue(value)}`);
  };
  const counter = (name: string, labels: Record<string, string>, add: number) => {
    sample(name, labels, (previousCounters[seriesKey(name, labels)] ?? 0) + add);
  };

  if (m.lastSuccessAtMs !== undefined) {
    family(`${P}_last_success_timestamp_seconds`, 'gauge', 'Unix time the last successful run finished.');
    sample(`${P}_last_success_timestamp_seconds`, {}, m.lastSuccessAtMs / 1000);
  }
  family(`${P}_last_run_timestamp_seconds`, 'gauge', 'Unix time the last run finished, successful or not.');
  sample(`${P}_last_run_timestamp_seconds`, {}, m.finishedAtMs / 1000);
  family(`${P}_last_run_success`, 'gauge', '1 if the last run succeeded, else 0.');
  sample(`${P}_last_run_success`, {}, m.success ? 1 : 0);

  const phases = RUN_PHASES.filter((phase) => m.durationsMs[phase] !== undefined);
  if (phases.length > 0) {
    family(`${P}_run_duration_seconds`, 'gauge', 'Duration of each phase of the last run.');
    for (const phase of phases)
      sample(`${P}_run_duration_seconds`, { phase }, (m.durationsMs[phase] ?? 0) / 1000);
  }

  family(`${P}_events_total`, 'counter', 'Events handled, by result.');
  for (const result of EVENT_RESULTS) counter(`${P}_events_total`, { result }, m.events[result] ?? 0);
  family(`${P}_errors_total`, 'counter', 'Errors, by the phase they happened in.');
  for (const phase of ERROR_PHASES) counter(`${P}_errors_total`, { phase }, m.errors[phase] ?? 0);
  family(`${P}_runs_total`, 'counter', 'Runs, by outcome.');
  counter(`${P}_runs_total`, { outcome: 'success' }, m.success ? 1 : 0);
  counter(`${P}_runs_total`, { outcome: 'failed' }, m.success ? 0 : 1);
  family(`${P}_gaps_total`, 'counter', 'Gaps detected: events that may have been missed between two runs.');
  counter(`${P}_gaps_total`, {}, m.gaps ?? 0);

  const gauges: [string, number | undefined, string][] = [
    ['seen_ids', m.seenIds, 'Event ids in the seen-set after the last run.'],
    ['stored_ids', m.storedIds, 'Event ids stored after the last run.'],
    ['response_bytes', m.responseBytes, 'Size of the last API response body.'],
  ];
  for (const [name, value, help] of gauges) {
    if (value === undefined) continue;
    family(`${P}_${name}`, 'gauge', help);
    sample(`${P}_${name}`, {}, value);
  }
  return `${out.join('\n')}\n`;
}

/**
 * The `*_total` samples of a textfile, keyed `name{label="value",…}` with labels sorted by name.
 * Comments, other samples, non-finite values and unparsable lines are skipped.
 */
export function readCounters(text: string): Record<string, number> {
  const counters: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const sample = parseSample(line);
    if (sample === undefined || !sample.name.endsWith('_total') || !Number.isFinite(sample.value)) continue;
    counters[seriesKey(sample.name, sample.labels)] = sample.value;
  }
  return counters;
}

/** readCounters of the file at `path`; {} when it does not exist. */
export async function readCountersFromFile(path: string): Promise<Record<string, number>> {
  const text = await readFileIfExists(path);
  return text === undefined ? {} : readCounters(text);
}

/**
 * Replaces the file at `path` with `text` atomically, mode 0644 (node_exporter may run as another user).
 * The directory must exist. Throws CollectorError E_CONFIG when it cannot be written.
 */
export async function writeMetricsFile(path: string, text: string): Promise<void> {
  try {
    await writeFileAtomic(path, text, { mode: 0o644 });
  } catch (error) {
    throw new CollectorError(
      'E_CONFIG',
      `cannot write the metrics file ${path}: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error, hint: 'check the metrics file setting: its directory must exist and be writable' },
    );
  }
}

/** One parsed sample line: `name{a="x",b="y"} value [timestamp]`. */
export function parseSample(
  line: string,
): { name: string; labels: Record<string, string>; value: number } | undefined {
  const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?\s*$/.exec(line.trim());
  if (match === null) return undefined;
  const [, name = '', labelText = '', valueText = ''] = match;
  const labels: Record<string, string> = {};
  const labelPattern = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/gy;
  let consumed = 0;
  for (let m = labelPattern.exec(labelText); m !== null; m = labelPattern.exec(labelText)) {
    labels[m[1] ?? ''] = (m[2] ?? '').replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    consumed = labelPattern.lastIndex;
  }
  if (consumed !== labelText.length) return undefined;
  const value = parseValue(valueText);
  return value === undefined ? undefined : { name, labels, value };
}

function seriesKey(name: string, labels: Record<string, string>): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return name;
  const body = keys.map((k) => `${k}="${escapeLabel(labels[k] ?? '')}"`).join(',');
  return `${name}{${body}}`;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

function parseValue(text: string): number | undefined {
  if (text === 'NaN') return Number.NaN;
  if (text === '+Inf' || text === 'Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  const value = Number(text);
  return text !== '' && !Number.isNaN(value) ? value : undefined;
}
