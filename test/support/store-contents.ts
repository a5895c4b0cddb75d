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
  const result: StoreCensus = {
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
  return result;
}

export function duplicates(c: StoreCensus): number[] {
  return [...c.events].filter(([, n]) => n > 1).map(([id]) => id);
}
