/**
 * `polisen-collector audit`: a read-only check of a store, printed as a table for a human or as one JSON
 * object (`--json`, nothing else on stdout). Exit 0 consistent, 1 problems found or the store failed,
 * 2 configuration error.
 */
import { openStore } from '../composition-root.js';
import type { Config } from '../config.js';
import type { AuditReport } from '../core/audit-report.js';
import { describeError, EXIT_FAILED, EXIT_OK } from '../errors.js';
import { createLogger } from '../log.js';
import { auditListPrefixes, auditStore } from '../run/audit-store.js';

export interface AuditFlags {
  /** Only objects whose name (after the store prefix) starts with this. */
  only?: string;
  json: boolean;
}

/** Example rows shown per problem in the human report (the JSON report carries up to 50). */
const ROWS = 5;

export async function auditCommand(config: Config, flags: AuditFlags): Promise<number> {
  try {
    // A filter that selects nothing is a usage error: say so before any credentials are resolved.
    auditListPrefixes(config.prefix, flags.only);
  } catch (error) {
    return fail(error, flags.json);
  }
  // With --json, stdout carries the report alone.
  const logger = await createLogger({ level: flags.json ? 'silent' : config.logLevel });
  const store = openStore(config, logger);
  let report: AuditReport;
  try {
    report = await auditStore(store, { prefix: config.prefix, only: flags.only });
  } catch (error) {
    return fail(error, flags.json, store.description);
  }
  const scope = { store: store.description, storePrefix: config.prefix, only: flags.only ?? '' };
  process.stdout.write(
    flags.json ? `${JSON.stringify({ ...scope, ...report })}\n` : formatReport(report, scope),
  );
  return report.ok ? EXIT_OK : EXIT_FAILED;
}

function fail(error: unknown, json: boolean, where?: string): number {
  const described = describeError(error);
  const line = where === undefined ? described.line : `${where}: ${described.line}`;
  process.stderr.write(`polisen-collector: audit failed: ${line}\n`);
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ ok: false, error: { code: described.code, message: line } })}\n`,
    );
  }
  return described.exitCode;
}

const n = (value: number): string => value.toLocaleString('en-US');

function bytes(value: number): string {
  if (value < 1024) return `${value} B`;
  if (value < 1024 * 1024) return `${(value / 1024).toFixed(1)} KB`;
  return `${(value / 1024 / 1024).toFixed(1)} MB`;
}

/** Rows with aligned columns, each line indented. */
function table(rows: string[][], indent = '    '): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows
    .map(
      (row) =>
        `${indent}${row.map((cell, i) => (i < row.length - 1 ? cell.padEnd(widths[i]!) : cell)).join('  ')}`,
    )
    .join('\n');
}

function more(shown: number, count: number): string {
  return count > shown ? `\n    … and ${n(count - shown)} more (--json lists up to 50)` : '';
}

function ids(list: { count: number; examples: number[] }): string {
  const shown = list.examples.slice(0, 20);
  return `    ${shown.join(', ')}${list.count > shown.length ? `, … (${n(list.count)} in all)` : ''}`;
}

export function formatReport(
  r: AuditReport,
  scope: { store: string; storePrefix: string; only: string },
): string {
  const out: string[] = [];
  const where = [
    scope.storePrefix ? `store prefix ${scope.storePrefix}` : '',
    scope.only ? `only ${scope.only}` : '',
  ].filter(Boolean);
  out.push(`audit of ${scope.store}${where.length ? ` (${where.join(', ')})` : ''}`, '');
  const meta = r.metadata;
  const metaLine =
    meta.format === 'missing'
      ? 'missing'
      : meta.format === 'unreadable'
        ? `unreadable (${meta.error ?? ''})`
        : `${meta.format === 'python' ? 'Python format' : meta.format === 'v2' ? 'previous format (v2)' : 'v3'}, ${bytes(meta.bytes)}, ${n(meta.storedIds)} ids recorded, ${n(meta.seenIds)} seen_ids${meta.lastUpdated ? `, updated ${meta.lastUpdated}` : ''}`;
  out.push(
    table(
      [
        [
          'objects read',
          `events ${n(r.objects.events)}, updates ${n(r.objects.updates)}, quarantine ${n(r.objects.quarantine)} (${bytes(r.objects.bytes)})`,
        ],
        ['events lines', n(r.events.lines)],
        ['distinct ids', n(r.events.distinctIds)],
        ['update lines', `${n(r.updates.lines)} (${n(r.updates.distinctIds)} ids)`],
        ['quarantine lines', n(r.quarantine.lines)],
        ['metadata', metaLine],
        ['unrecorded objects', n(meta.unrecordedObjects.count)],
      ],
      '  ',
    ),
  );

  if (r.problems.length > 0) {
    out.push('', 'problems');
    for (const problem of r.problems) out.push(`  - ${problem}`);
  }
  const d = r.duplicates;
  if (d.count > 0) {
    const rows = d.examples.slice(0, ROWS).map((e) => {
      const shown = e.objects.slice(0, 3).join(', ');
      return [String(e.id), String(e.copies), e.copies > 3 ? `${shown}, …` : shown];
    });
    out.push('', '  duplicates', table([['id', 'copies', 'objects'], ...rows]) + more(rows.length, d.count));
  }
  if (r.misplaced.count > 0) {
    const rows = r.misplaced.examples.slice(0, ROWS).map((e) => [String(e.id), e.object, e.expected]);
    out.push(
      '',
      '  misplaced lines',
      table([['id', 'object', 'belongs in'], ...rows]) + more(rows.length, r.misplaced.count),
    );
  }
  if (r.unparseable.count > 0) {
    const rows = r.unparseable.examples.slice(0, ROWS).map((e) => [e.object, String(e.line), e.reason]);
    out.push(
      '',
      '  unreadable lines',
      table([['object', 'line', 'reason'], ...rows]) + more(rows.length, r.unparseable.count),
    );
  }
  if (r.updates.withoutEvent && r.updates.withoutEvent.count > 0) {
    out.push('', '  ids in updates/ without a line in events/', ids(r.updates.withoutEvent));
  }
  if (meta.notRecorded.count > 0) {
    out.push('', '  ids in events/ not recorded in the metadata', ids(meta.notRecorded));
  }
  if (meta.notFound && meta.notFound.count > 0) {
    out.push('', '  ids recorded in the metadata but in no events/ object', ids(meta.notFound));
  }
  if (meta.unrecordedObjects.count > 0) {
    const rows = meta.unrecordedObjects.examples.slice(0, ROWS).map((name) => [name]);
    out.push(
      '',
      '  objects not recorded in the metadata yet',
      table(rows) + more(rows.length, meta.unrecordedObjects.count),
    );
  }
  if (r.unexpectedNames.count > 0) {
    out.push(
      '',
      '  objects named outside the layout',
      table(r.unexpectedNames.examples.slice(0, ROWS).map((name) => [name])) +
        more(Math.min(ROWS, r.unexpectedNames.examples.length), r.unexpectedNames.count),
    );
  }
  if (r.notes.length > 0) {
    out.push('', 'notes');
    for (const note of r.notes) out.push(`  - ${note}`);
  }
  out.push(
    '',
    r.ok
      ? 'result: consistent (exit 0)'
      : `result: ${r.problems.length} ${r.problems.length === 1 ? 'kind of problem' : 'kinds of problem'} found (exit 1)`,
    '',
  );
  return out.join('\n');
}
