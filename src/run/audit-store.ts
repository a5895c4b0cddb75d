/**
 * Reads a whole store (or the part a name filter selects) and audits it with the pure accumulator of
 * src/core/audit-report.ts. Read-only: it lists and gets, it never writes.
 */
import { type AuditReport, createAuditAccumulator } from '../core/audit-report.js';
import { CollectorError } from '../errors.js';
import type { ObjectStore } from '../store/object-store.js';
import { metadataName } from './collect-run.js';

export const AUDITED_KINDS = ['events/', 'updates/', 'quarantine/'] as const;

export interface AuditStoreOptions {
  /** The store prefix ('' or e.g. 'stockholm/'). */
  prefix: string;
  /** Only objects whose name (after the store prefix) starts with this, e.g. `events/2024/`. */
  only?: string;
  /** Objects read at once (default 16). */
  concurrency?: number;
  /** Called with every object read, in list order (e.g. for the replay script's own comparisons). */
  onObject?: (name: string, body: string) => void;
}

/**
 * The list prefixes (store prefix included) a name filter selects: `events/2024/` selects one, `''` all three.
 * Throws E_CONFIG when the filter can select nothing the collector writes.
 */
export function auditListPrefixes(prefix: string, only: string | undefined): string[] {
  const filter = only ?? '';
  const selected = AUDITED_KINDS.flatMap((kind) => {
    if (filter.startsWith(kind)) return [`${prefix}${filter}`];
    if (kind.startsWith(filter)) return [`${prefix}${kind}`];
    return [];
  });
  if (selected.length === 0) {
    throw new CollectorError(
      'E_CONFIG',
      `--prefix ${JSON.stringify(filter)} selects nothing: it must start with events/, updates/ or quarantine/ (the store prefix is set apart, with --store-prefix)`,
    );
  }
  return selected;
}

export async function auditStore(store: ObjectStore, options: AuditStoreOptions): Promise<AuditReport> {
  const { prefix } = options;
  const concurrency = Math.max(1, options.concurrency ?? 16);
  const listPrefixes = auditListPrefixes(prefix, options.only);
  const accumulator = createAuditAccumulator({
    prefix,
    wholeStore: (options.only ?? '') === '',
  });

  const [metadata, lists] = await Promise.all([
    store.get(metadataName(prefix)),
    Promise.all(listPrefixes.map((p) => store.list(p))),
  ]);
  accumulator.addMetadata(metadata?.body.toString('utf8'));
  const names = lists.flat();

  // Reads run ahead of processing (at most `concurrency` in flight) but are fed in list order, so the
  // report does not depend on which read finished first.
  const inFlight: Promise<{ name: string; body: string | undefined }>[] = [];
  let next = 0;
  const start = (): void => {
    const name = names[next++]!;
    const read = store.get(name).then((object) => ({ name, body: object?.body.toString('utf8') }));
    // Awaited in order below; this keeps a later read's failure from being an unhandled rejection meanwhile.
    read.catch(() => {});
    inFlight.push(read);
  };
  while (next < names.length && inFlight.length < concurrency) start();
  while (inFlight.length > 0) {
    const { name, body } = await inFlight.shift()!;
    if (next < names.length) start();
    // Listed but gone by the time it was read: nothing to audit in it.
    if (body === undefined) continue;
    accumulator.addObject(name, body);
    options.onObject?.(name, body);
  }
  return accumulator.report();
}
