/**
 * The seed (old Python) collector's algorithm, for tests and the replay script's comparison. Not product code.
 *
 * seen-set = the 1,000 highest ids stored so far, in `metadata/last_seen.json` as
 * `{"seen_ids":[…],"last_updated":…,"total_tracked":N}`; an event whose id is not in it is written to
 * `events/YYYY/MM/DD/events-<unix>.jsonl` (date = the date the event's `datetime` text names); the metadata
 * is rewritten only when a run wrote new events. Edits are never stored. The files go to a local directory.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const SEED_MAX_SEEN_IDS = 1000;

export interface SeedRunResult {
  /** Ids written by this run, in feed order. */
  written: number[];
  /** Object names written (relative to dir). */
  objects: string[];
  /** Elements the seed could not place (no integer id or no date in `datetime`); it skipped them. */
  skipped: number;
}

interface PythonMetadata {
  seen_ids: number[];
  last_updated: string;
  total_tracked: number;
}

const METADATA = 'metadata/last_seen.json';

function readSeenIds(dir: string): number[] {
  try {
    const doc = JSON.parse(readFileSync(path.join(dir, METADATA), 'utf8')) as Partial<PythonMetadata>;
    return Array.isArray(doc.seen_ids) ? doc.seen_ids : [];
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

function writeFile(dir: string, name: string, text: string): void {
  const file = path.join(dir, ...name.split('/'));
  mkdirSync(path.dirname(file), { recursive: true });
  // Whole-file replace, as the Python collector's put_object did (a name reused in the same second is overwritten).
  const temp = `${file}.tmp`;
  writeFileSync(temp, text);
  renameSync(temp, file);
}

/** `YYYY/MM/DD` from the text of `datetime` (`2023-08-09 9:05:01 +02:00` → `2023/08/09`). */
function datePathOf(datetime: unknown): string | undefined {
  if (typeof datetime !== 'string') return undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T]/.exec(datetime.trim());
  return m ? `${m[1]}/${m[2]}/${m[3]}` : undefined;
}

/** One seed run over one feed response (already parsed), writing into `dir`. */
export function seedCollect(dir: string, events: unknown[], nowUnix: number): SeedRunResult {
  const seen = new Set(readSeenIds(dir));
  const byDate = new Map<string, string[]>();
  const written: number[] = [];
  let skipped = 0;
  for (const element of events) {
    const event = element as { id?: unknown; datetime?: unknown } | null;
    const id = event?.id;
    const datePath = datePathOf(event?.datetime);
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || datePath === undefined) {
      skipped++;
      continue;
    }
    if (seen.has(id)) continue;
    seen.add(id); // also keeps an id repeated within one response from being written twice
    written.push(id);
    const lines = byDate.get(datePath) ?? [];
    lines.push(JSON.stringify(element));
    byDate.set(datePath, lines);
  }
  const objects: string[] = [];
  if (written.length === 0) return { written, objects, skipped };
  for (const [datePath, lines] of [...byDate].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const name = `events/${datePath}/events-${nowUnix}.jsonl`;
    writeFile(dir, name, `${lines.join('\n')}\n`);
    objects.push(name);
  }
  const seenIds = [...seen].sort((a, b) => b - a).slice(0, SEED_MAX_SEEN_IDS);
  const metadata: PythonMetadata = {
    seen_ids: seenIds,
    last_updated: new Date(nowUnix * 1000).toISOString(),
    total_tracked: seenIds.length,
  };
  writeFile(dir, METADATA, JSON.stringify(metadata));
  return { written, objects, skipped };
}
