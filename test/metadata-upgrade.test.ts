/**
 * A store without a ledger gets one before anything is written: a new store, the Python collector's
 * metadata, and polisen-collector/2 metadata with claims of runs that did not settle them.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeRanges, rangesFromIds } from '../src/core/id-ranges.js';
import { DEFAULT_COLLECT_OPTIONS, runCollect } from '../src/run/collect-run.js';
import { LocalStore } from '../src/store/local-store.js';
import { census, duplicates, localObjects } from './support/store-contents.js';
import { syntheticEvent } from './support/store-fixtures.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const NOW = Date.parse('2024-03-10T12:00:00Z');
const options = { ...DEFAULT_COLLECT_OPTIONS, dryRun: false, maxSeenIds: 1000, revisions: true, prefix: '' };

function store(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'polisen-upgrade-'));
  dirs.push(dir);
  for (const [name, body] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), body);
  }
  return dir;
}

const jsonl = (events: unknown[]) => events.map((e) => `${JSON.stringify(e)}\n`).join('');

function run(dir: string, feed: unknown[]) {
  return runCollect(
    {
      store: new LocalStore(dir),
      fetchFeed: async () => ({ events: feed, bodyBytes: 0 }) as never,
      logger: pino({ level: 'silent' }),
      now: () => new Date(NOW),
    },
    options,
  );
}

const e = (id: number, day: string) => syntheticEvent(id, `2024-03-${day} 10:00:00 +01:00`);

describe('a store gets its ledger first', () => {
  it('v2 metadata with a claim whose objects were half written: those that exist are recorded, once', async () => {
    const written = 'events/2024/03/09/events-1709980000.jsonl';
    const dir = store({
      'events/2024/03/08/events-1709900000.jsonl': jsonl([e(1, '08'), e(2, '08')]),
      // The claimed run wrote this object, then died before settling its claim.
      [written]: jsonl([e(3, '09'), e(4, '09')]),
      'metadata/last_seen.json': JSON.stringify({
        seen_ids: [2, 1],
        format: 'polisen-collector/2',
        stored_ids: encodeRanges(rangesFromIds([1, 2])),
        last_object_unix: 1709980000,
        pending: [
          {
            run: 'dead',
            host: 'h',
            pid: 1,
            claimedAt: '2024-03-09T10:00:00Z',
            deadline: '2024-03-09T10:15:00Z',
            objects: [
              { name: written, kind: 'events', ids: [3, 4], fps: ['', ''] },
              // Never written.
              { name: 'events/2024/03/10/events-1709980000.jsonl', kind: 'events', ids: [5], fps: [''] },
            ],
          },
        ],
      }),
    });
    const summary = await run(dir, [e(5, '10'), e(4, '09'), e(3, '09'), e(2, '08'), e(1, '08')]);
    expect(summary.counts).toMatchObject({ new: 1, alreadySeen: 4 });
    const c = census(localObjects(dir));
    expect(duplicates(c)).toEqual([]);
    expect([...c.events.keys()].sort()).toEqual([1, 2, 3, 4, 5]);
    expect(c.unrecorded).toEqual([]);
    expect(c.metadata).toMatchObject({ format: 'polisen-collector/3', total_tracked: 5 });
    expect(c.metadata?.pending).toBeUndefined();
  });

  it('Python metadata: the objects in the window are taken as recorded, unread and untouched', async () => {
    const files = {
      // The Python collector stored 6 twice: its duplicates are the audit's to report, not ours to edit.
      'events/2024/03/09/events-1709970000.jsonl': jsonl([e(6, '09')]),
      'events/2024/03/09/events-1709971800.jsonl': jsonl([e(6, '09'), e(7, '09')]),
      'metadata/last_seen.json': JSON.stringify({
        seen_ids: [7, 6],
        last_updated: '2024-03-09T10:00:00',
        total_tracked: 2,
      }),
    };
    const dir = store(files);
    const summary = await run(dir, [e(8, '10'), e(7, '09'), e(6, '09')]);
    expect(summary.counts).toMatchObject({ new: 1, alreadySeen: 2 });
    expect(summary.recoveredObjects).toBe(0);
    for (const name of Object.keys(files).filter((n) => n.startsWith('events/'))) {
      expect(readFileSync(path.join(dir, name), 'utf8')).toBe(files[name as keyof typeof files]);
    }
    const c = census(localObjects(dir));
    expect(c.unrecorded).toEqual([]);
    expect(c.events.get(8)).toBe(1);
    expect(c.metadata?.format).toBe('polisen-collector/3');
  });

  it('no metadata but objects: they are taken as recorded too, and nothing of them is rewritten', async () => {
    const body = jsonl([e(9, '09'), e(9, '09')]);
    const dir = store({ 'events/2024/03/09/events-1709970000.jsonl': body });
    await run(dir, [e(10, '10')]);
    expect(readFileSync(path.join(dir, 'events/2024/03/09/events-1709970000.jsonl'), 'utf8')).toBe(body);
    const c = census(localObjects(dir));
    expect(c.unrecorded).toEqual([]);
    expect(c.events.get(10)).toBe(1);
  });
});
