/** Reads what a store holds, independently of the collector's own code, for assertions. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** Every object of a local store directory: name → body (temp and lock files skipped). */
export function localObjects(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (relative: string) => {
    const full = path.join(dir, relative);
    let entries: string[];
    try {
      entries = readdirSync(full);
    } catch {
      return;
    }
    for (const entry of entries) {
      if (entry.startsWith('.')) continue;
      const name = relative === '' ? entry : `${relative}/${entry}`;
      if (statSync(path.join(dir, name)).isDirectory()) walk(name);
      else out.set(name, readFileSync(path.join(dir, name)));
    }
  };
  walk('');
  return out;
}

export interface StoreCensus {
  /**
   * Collector objects in the metadata's window that its `window.objects` does not list: objects a run
   * wrote but did not record (read here without the collector's own code).
   */
  unrecorded: string[];
  /** id → number of lines in events/ */
  events: Map<number, number>;
  /** id → lines (raw) in updates/ */
  updates: Map<number, string[]>;
  quarantineLines: number;
  /** events lines whose date directory differs from their datetime's date */
  misplaced: number;
  metadata: Record<string, unknown> | undefined;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2}) /;

export function census(objects: Map<string, Buffer>, prefix = ''): StoreCensus {
  const collectorNames: string[] = [];
  const result: StoreCensus = {
    unrecorded: [],
    events: new Map(),
    updates: new Map(),
    quarantineLines: 0,
    misplaced: 0,
    metadata: undefined,
  };
  for (const [name, body] of objects) {
    if (!name.startsWith(prefix)) continue;
    const rel = name.slice(prefix.length);
    if (rel === 'metadata/last_seen.json') {
      result.metadata = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      continue;
    }
    if (!rel.startsWith('metadata/')) collectorNames.push(rel);
    const lines = body
      .toString('utf8')
      .split('\n')
      .filter((l) => l !== '');
    if (rel.startsWith('quarantine/')) {
      result.quarantineLines += lines.length;
      continue;
    }
    for (const line of lines) {
      const event = JSON.parse(line) as { id: number; datetime: string };
      const m = DATE.exec(event.datetime);
      const dir = m ? `${m[1]}/${m[2]}/${m[3]}` : '?';
      if (!rel.includes(`/${dir}/`)) result.misplaced++;
      if (rel.startsWith('events/')) result.events.set(event.id, (result.events.get(event.id) ?? 0) + 1);
      else if (rel.startsWith('updates/'))
        result.updates.set(event.id, [...(result.updates.get(event.id) ?? []), line]);
    }
  }
  result.unrecorded = unrecordedIn(result.metadata, collectorNames);
  return result;
}

/** Names in the window (dated `from` or later, or declared) that `window.objects` does not list. */
function unrecordedIn(metadata: Record<string, unknown> | undefined, names: readonly string[]): string[] {
  const window = metadata?.window as
    | { from: string; objects: Record<string, number[]>; declared: Record<string, string> }
    | undefined;
  if (!window) return [];
  const recorded = new Set<string>();
  for (const [partition, deltas] of Object.entries(window.objects)) {
    const kind = partition.split('/')[0];
    let unix = 0;
    for (const d of deltas) {
      unix += d;
      recorded.add(`${partition}/${kind}-${unix}.jsonl`);
    }
  }
  return names.filter((rel) => {
    const m = /^((?:events|updates|quarantine)\/(\d{4}\/\d{2}\/\d{2}))\//.exec(rel);
    if (!m) return false;
    const inWindow = m[2]! >= window.from || m[1]! in window.declared;
    return inWindow && !recorded.has(rel);
  });
}

export function duplicates(c: StoreCensus): number[] {
  return [...c.events].filter(([, n]) => n > 1).map(([id]) => id);
}
