import { describe, expect, it } from 'vitest';
import { fingerprintEvent } from '../../src/core/fingerprint.js';
import { countIds, encodeRanges, hasId, rangesFromIds } from '../../src/core/id-ranges.js';
import { emptyLedger, type Ledger, parseObjectName } from '../../src/core/object-ledger.js';
import { type ObjectEntry, recordObjects, type TrackedObject } from '../../src/core/record-objects.js';
import {
  emptySeenState,
  METADATA_FORMAT,
  METADATA_FORMAT_V2,
  MetadataFormatError,
  parseSeenState,
  type SeenState,
  serializeSeenState,
  trimRetained,
} from '../../src/core/seen-set.js';
import { prng } from '../support/prng.js';

const NOW = new Date('2024-03-01T12:00:00.000Z');
const NO_PROTECT: ReadonlySet<number> = new Set();
const LEDGER = emptyLedger('2024/02/20');

/** The state as a run works with it: with a ledger (a new store or old metadata gets an empty one). */
function withLedger(state: SeenState, ledger: Ledger = LEDGER): SeenState & { ledger: Ledger } {
  return { ...state, ledger: state.ledger ?? ledger };
}

function object(name: string, entries: ObjectEntry[]): TrackedObject {
  const parts = parseObjectName('', name);
  if (!parts) throw new Error(`bad name ${name}`);
  return { name, parts, entries };
}

const events = (name: string, ids: number[]) =>
  object(
    name,
    ids.map((id) => ({ id, fp: fp(id) })),
  );

/** Records objects as a run's commit does (nothing learned, nothing protected). */
function recorded(state: SeenState, objects: TrackedObject[], max = 1000, protect = NO_PROTECT) {
  return recordObjects(withLedger(state), {
    objects,
    learnedFps: new Map(),
    protect,
    maxSeenIds: max,
    newestEventUnix: undefined,
    now: NOW,
    listedAtMs: NOW.getTime(),
  }).state;
}

const fp = (n: number) => fingerprintEvent({ id: n, name: `event ${n}` });

/** What the Python collector reads from the file: only `seen_ids`, a list of ints. */
function pythonReader(body: string): number[] {
  const doc = JSON.parse(body) as { seen_ids: unknown };
  if (!Array.isArray(doc.seen_ids) || !doc.seen_ids.every((x) => Number.isInteger(x))) {
    throw new Error('the Python collector could not read seen_ids');
  }
  return doc.seen_ids as number[];
}

/** What the Python collector writes back: seen_ids highest first, capped, and nothing else of ours. */
function pythonWriter(seenIds: number[], max: number): string {
  const ids = [...new Set(seenIds)].sort((a, b) => b - a).slice(0, max);
  return JSON.stringify({
    seen_ids: ids,
    last_updated: '2024-03-02T10:00:00.123456',
    total_tracked: ids.length,
  });
}

describe('parseSeenState: the Python collector file', () => {
  const body = '{"seen_ids":[5,4,3],"last_updated":"2024-02-29T23:00:01.5","total_tracked":3}';

  it('is format python; stored = its ids; retained with unknown fingerprints', () => {
    const state = parseSeenState(body);
    expect(state.format).toBe('python');
    expect(countIds(state.stored)).toBe(3);
    for (const id of [3, 4, 5]) expect(hasId(state.stored, id)).toBe(true);
    for (const id of [2, 6]) expect(hasId(state.stored, id)).toBe(false);
    expect([...state.retained.keys()].sort()).toEqual([3, 4, 5]);
    expect([...state.retained.values()]).toEqual(['', '', '']);
    expect(state.lastUpdated).toBe('2024-02-29T23:00:01.5');
    expect(state.ledger).toBeUndefined();
    expect(state.legacyClaims).toEqual([]);
    expect(state.quarantineFps).toEqual([]);
    expect(state.lastObjectUnix).toBe(0);
    expect(state.newestEventUnix).toBeUndefined();
  });

  it('no file: an empty, new state', () => {
    const state = parseSeenState(undefined);
    expect(state.format).toBe('new');
    expect(countIds(state.stored)).toBe(0);
    expect(state.retained.size).toBe(0);
  });

  it.each([
    ['invalid JSON', '{"seen_ids":[1,2'],
    ['not an object', '[1,2,3]'],
    ['null', 'null'],
    ['missing seen_ids', '{"last_updated":"x","total_tracked":0}'],
    ['seen_ids not a list', '{"seen_ids":"1,2,3"}'],
    ['a float id', '{"seen_ids":[3,2.5,1]}'],
    ['a string id', '{"seen_ids":[3,"2",1]}'],
    ['a negative id', '{"seen_ids":[3,-2]}'],
    ['a null id', '{"seen_ids":[3,null]}'],
    [
      'corrupt stored_ids',
      `{"seen_ids":[1],"format":"${METADATA_FORMAT}","stored_ids":"bm90IGRlZmxhdGU=","window":{"from":"2024/01/01"}}`,
    ],
    ['v3 without a window', `{"seen_ids":[1],"format":"${METADATA_FORMAT}"}`],
    [
      'a window with a bad date',
      `{"seen_ids":[1],"format":"${METADATA_FORMAT}","window":{"from":"2024-01-01"}}`,
    ],
    [
      'a window with unsorted object times',
      `{"seen_ids":[1],"format":"${METADATA_FORMAT}","window":{"from":"2024/01/01","objects":{"events/2024/01/02":[100,0]}}}`,
    ],
    [
      'a window with a bad declaration',
      `{"seen_ids":[1],"format":"${METADATA_FORMAT}","window":{"from":"2024/01/01","declared":{"events/2023/01/02":"soon"}}}`,
    ],
    [
      'an invalid pending claim (v2)',
      `{"seen_ids":[1],"format":"${METADATA_FORMAT_V2}","pending":[{"run":"r"}]}`,
    ],
  ])('%s → MetadataFormatError', (_label, text) => {
    expect(() => parseSeenState(text)).toThrow(MetadataFormatError);
  });
});

describe('serializeSeenState: the Python collector can still read it', () => {
  it('seen_ids is a list of ints, highest first; the Python fields come first', () => {
    const state: SeenState = {
      ...emptySeenState(),
      stored: rangesFromIds([10, 30, 20, 40]),
      retained: new Map([
        [20, fp(20)],
        [40, fp(40)],
        [10, ''],
        [30, fp(30)],
      ]),
    };
    const body = serializeSeenState(withLedger(state), NOW);
    expect(body.endsWith('\n')).toBe(true);
    expect(pythonReader(body)).toEqual([40, 30, 20, 10]);
    const doc = JSON.parse(body) as Record<string, unknown>;
    expect(Object.keys(doc).slice(0, 3)).toEqual(['seen_ids', 'last_updated', 'total_tracked']);
    expect(doc.last_updated).toBe(NOW.toISOString());
    expect(Number.isInteger(doc.total_tracked)).toBe(true);
    expect(doc.format).toBe(METADATA_FORMAT);
  });

  it.each([
    ['nearly in order (parsed, then a few new ones)', (i: number) => (i < 995 ? 600_000 - i : 700_000 + i)],
    ['in no order', (i: number) => 1 + Math.floor(prng(7 + i)() * 10_000_000)],
  ])('seen_ids is highest first whatever order the ids were retained in: %s', (_label, idAt) => {
    const ids = [...new Set(Array.from({ length: 1000 }, (_, i) => idAt(i)))];
    const state: SeenState = { ...emptySeenState(), retained: new Map(ids.map((id) => [id, fp(id)])) };
    expect(pythonReader(serializeSeenState(withLedger(state), NOW))).toEqual([...ids].sort((a, b) => b - a));
  });

  it('Python file → ours → Python reader → Python writer → ours: ids survive both ways', () => {
    const python = parseSeenState(pythonWriter([7, 9, 8, 12], 1000));
    // Our run stores two more events, then writes.
    const ours = recorded(python, [events('events/2024/03/01/events-1.jsonl', [13, 14])]);
    const ourBody = serializeSeenState(ours, NOW);
    const readByPython = pythonReader(ourBody);
    expect(readByPython).toEqual([14, 13, 12, 9, 8, 7]);
    // The Python collector runs once (stores 15) and rewrites the file its way.
    const back = parseSeenState(pythonWriter([...readByPython, 15], 1000));
    expect(back.format).toBe('python');
    for (const id of [7, 8, 9, 12, 13, 14, 15]) expect(hasId(back.stored, id)).toBe(true);
    expect(hasId(back.stored, 10)).toBe(false);
  });

  it('a Python file longer than MAX_SEEN_IDS is cut to the highest ids once applied', () => {
    const ids = Array.from({ length: 1500 }, (_, k) => 100_000 + 3 * k);
    const state = recorded(parseSeenState(pythonWriter(ids, 5000)), []);
    const written = pythonReader(serializeSeenState(state, NOW));
    expect(written).toHaveLength(1000);
    const expected = [...ids].sort((a, b) => b - a).slice(0, 1000);
    expect(written).toEqual(expected);
    // Trimming the retained window never forgets what is stored.
    expect(countIds(state.stored)).toBe(1500);
  });

  it('unknown top-level fields are kept, from a Python file and from one of ours', () => {
    const fromPython = parseSeenState(
      '{"seen_ids":[2,1],"operator":"ops@example.org","schedule":{"every":"30m"}}',
    );
    const once = serializeSeenState(withLedger(fromPython), NOW);
    expect(JSON.parse(once)).toMatchObject({ operator: 'ops@example.org', schedule: { every: '30m' } });
    const twice = JSON.parse(serializeSeenState(withLedger(parseSeenState(once)), NOW));
    expect(twice).toMatchObject({ operator: 'ops@example.org', schedule: { every: '30m' } });
  });
});

describe('parseSeenState: files it must not misread', () => {
  it('refuses a format written by another version instead of reading it as the Python file', () => {
    expect(() => parseSeenState(JSON.stringify({ seen_ids: [3, 2], format: 'polisen-collector/4' }))).toThrow(
      MetadataFormatError,
    );
  });

  it('reads a v2 file (claims, no window): no ledger, and the claimed objects to recover', () => {
    const state = parseSeenState(
      JSON.stringify({
        seen_ids: [9, 8],
        format: METADATA_FORMAT_V2,
        stored_ids: encodeRanges(rangesFromIds([7, 8, 9])),
        last_object_unix: 1_709_294_400,
        pending: [
          {
            run: 'r1',
            host: 'h',
            pid: 1,
            claimedAt: '2024-03-01T11:00:00.000Z',
            deadline: '2024-03-01T11:15:00.000Z',
            objects: [
              { name: 'events/2024/03/01/events-1709294400.jsonl', kind: 'events', ids: [10], fps: ['x'] },
              {
                name: 'quarantine/2024/03/01/quarantine-1709294400.jsonl',
                kind: 'quarantine',
                ids: [],
                fps: [],
              },
            ],
          },
        ],
      }),
    );
    expect(state.format).toBe('v2');
    expect(state.ledger).toBeUndefined();
    expect(state.lastObjectUnix).toBe(1_709_294_400);
    expect(countIds(state.stored)).toBe(3);
    expect(state.legacyClaims).toEqual([
      { name: 'events/2024/03/01/events-1709294400.jsonl', kind: 'events' },
      { name: 'quarantine/2024/03/01/quarantine-1709294400.jsonl', kind: 'quarantine' },
    ]);
    // Written back in this format: no claims, a window.
    const doc = JSON.parse(serializeSeenState(withLedger(state), NOW)) as Record<string, unknown>;
    expect(doc.format).toBe(METADATA_FORMAT);
    expect(doc.pending).toBeUndefined();
    expect(doc.window).toEqual({ from: '2024/02/20', objects: {}, declared: {} });
  });

  it('distrusts fingerprints once another writer changed seen_ids but kept our fields', () => {
    const ours = recorded(parseSeenState(undefined), [events('events/2024/03/01/events-1.jsonl', [21, 22])]);
    const doc = JSON.parse(serializeSeenState(ours, NOW)) as { seen_ids: number[] };
    expect(parseSeenState(JSON.stringify(doc)).retained.get(22)).toBe(fp(22));
    // A writer that edits seen_ids in place (drops 22, adds 23) and keeps the rest of the file.
    doc.seen_ids = [23, 21];
    const reread = parseSeenState(JSON.stringify(doc));
    expect(reread.retained.get(21)).toBe('');
    expect(reread.retained.get(23)).toBe('');
  });
});

describe('round trip: parse(serialize(state))', () => {
  it('keeps stored ranges, retained ids and fingerprints, quarantine fps, the ledger, lastObjectUnix', () => {
    const storedIds = [100, 101, 102, 105, 200, 201, 438_834];
    const ledger: Ledger = {
      from: '2024/02/21',
      recorded: new Map([
        ['events/2024/02/28', [1_709_100_000, 1_709_101_800, 1_709_101_801]],
        ['updates/2024/03/01', [1_709_294_401]],
      ]),
      declared: new Map([
        ['events/2023/05/01', { untilMs: Date.parse('2024-03-01T12:15:00.000Z'), holders: ['run-a'] }],
      ]),
    };
    const state: SeenState & { ledger: Ledger } = {
      format: 'v3',
      stored: rangesFromIds(storedIds),
      retained: new Map([
        [438_834, fp(438_834)],
        [201, fp(201)],
        [200, ''],
        [105, fp(105)],
      ]),
      quarantineFps: [fp(-2), fp(-3)],
      ledger,
      legacyClaims: [],
      lastObjectUnix: 1_709_294_401,
      newestEventUnix: 1_709_290_000,
      lastUpdated: undefined,
      extra: { note: 'kept as is', nested: [1, { a: 'å' }] },
    };
    const back = parseSeenState(serializeSeenState(state, NOW));
    expect(back.format).toBe('v3');
    expect([...back.stored]).toEqual([...state.stored]);
    expect(back.retained).toEqual(state.retained);
    expect(back.quarantineFps).toEqual(state.quarantineFps);
    expect(back.ledger).toEqual(ledger);
    expect(back.lastObjectUnix).toBe(state.lastObjectUnix);
    expect(back.newestEventUnix).toBe(state.newestEventUnix);
    expect(back.lastUpdated).toBe(NOW.toISOString());
    expect(back.extra).toEqual(state.extra);
  });

  it('an unknown newest event time stays unknown', () => {
    const state: SeenState = { ...emptySeenState(), format: 'v3', stored: rangesFromIds([1]) };
    expect(parseSeenState(serializeSeenState(withLedger(state), NOW)).newestEventUnix).toBeUndefined();
  });

  it('seen_ids are stored even when stored_ids omits them (an older writer)', () => {
    const body = JSON.stringify({
      seen_ids: [50, 40],
      format: METADATA_FORMAT,
      stored_ids: encodeRanges(rangesFromIds([1, 2, 3])),
      window: { from: '2024/01/01' },
    });
    const state = parseSeenState(body);
    for (const id of [1, 2, 3, 40, 50]) expect(hasId(state.stored, id)).toBe(true);
    expect(countIds(state.stored)).toBe(5);
  });
});

describe('trimRetained', () => {
  const retained = new Map(Array.from({ length: 20 }, (_, k) => [k + 1, fp(k + 1)] as [number, string]));

  it('keeps the highest ids, and protected ids even when they are the lowest', () => {
    const trimmed = trimRetained(retained, new Set([1, 2]), 5);
    expect([...trimmed.keys()].sort((a, b) => a - b)).toEqual([1, 2, 18, 19, 20]);
    for (const [id, value] of trimmed) expect(value).toBe(fp(id));
  });

  it('without protection keeps the max highest', () => {
    expect([...trimRetained(retained, NO_PROTECT, 3).keys()].sort((a, b) => a - b)).toEqual([18, 19, 20]);
  });

  it('returns the same map when nothing needs trimming', () => {
    expect(trimRetained(retained, NO_PROTECT, 20)).toBe(retained);
    expect(trimRetained(retained, NO_PROTECT, 1000)).toBe(retained);
  });
});

/** Id gaps shaped like the real feed's (2023: 80 % consecutive, a long tail up to ~1000). */
function realisticGap(random: () => number): number {
  const r = random();
  if (r < 0.8) return 1;
  if (r < 0.884) return 2;
  if (r < 0.917) return 3;
  if (r < 0.936) return 4;
  return 4 + Math.round(1000 ** (random() ** 2));
}

describe('metadata size over years', () => {
  it('after a simulated 5 years (26k ids a year, MAX_SEEN_IDS 1000) the file stays under 64 KB', () => {
    const random = prng(5);
    const max = 1000;
    const idsPerYear = 26_000;
    const runsPerYear = 52; // one batch a week keeps the test fast; the ranges do not depend on batching
    let state = parseSeenState(undefined);
    let id = 400_000;
    const feed: number[] = []; // the latest 500 ids: what the API still shows
    let total = 0;
    const firstYearSize = { ids: 0, encoded: 0 };
    for (let year = 0; year < 5; year++) {
      for (let run = 0; run < runsPerYear; run++) {
        const ids: number[] = [];
        for (let k = 0; k < idsPerYear / runsPerYear; k++) {
          id += realisticGap(random);
          ids.push(id);
        }
        total += ids.length;
        feed.push(...ids);
        feed.splice(0, Math.max(0, feed.length - 500));
        const edited = feed.slice(0, 5); // a few edits of older events still in the feed
        const unix = 1_700_000_000 + year * 10_000 + run;
        const objects: TrackedObject[] = [
          events(`events/2024/03/01/events-${unix}.jsonl`, ids),
          object(
            `updates/2024/03/01/updates-${unix}.jsonl`,
            edited.map((e) => ({ id: e, fp: fp(-e - run) })),
          ),
        ];
        if (run % 4 === 0) {
          objects.push(
            object(`quarantine/2024/03/01/quarantine-${unix}.jsonl`, [
              { id: undefined, fp: fp(-run - year * 100) },
            ]),
          );
        }
        state = recorded(state, objects, max, new Set(feed));
      }
      if (year === 0) {
        firstYearSize.ids = countIds(state.stored);
        firstYearSize.encoded = encodeRanges(state.stored).length;
      }
    }
    // A busy window: 11 days × 48 runs × 1.2 objects recorded (the real feed's objects per run).
    const recordedNow = new Map<string, number[]>();
    for (let day = 0; day < 11; day++) {
      const times = Array.from({ length: 58 }, (_, k) => 1_830_000_000 + day * 86_400 + k * 1800);
      recordedNow.set(`events/2028/01/${String(day + 1).padStart(2, '0')}`, times);
    }
    state = { ...state, ledger: { from: '2028/01/01', recorded: recordedNow, declared: new Map() } };
    const body = serializeSeenState(withLedger(state), NOW);
    const bytes = Buffer.byteLength(body, 'utf8');
    console.info(
      `simulated 5 years: ${total} ids, ${state.stored.length / 2} ranges; first year ${firstYearSize.encoded} B of ranges; metadata ${bytes} B`,
    );
    // The simulation is shaped like the real year (real: 7.5 KB of ranges for 26,415 ids).
    expect(firstYearSize.ids).toBe(idsPerYear);
    expect(firstYearSize.encoded).toBeGreaterThan(4000);
    expect(firstYearSize.encoded).toBeLessThan(12_000);

    expect(countIds(state.stored)).toBe(total);
    const seen = pythonReader(body);
    expect(seen.length).toBeLessThanOrEqual(max);
    expect(bytes).toBeLessThan(64 * 1024);
    // And it reads back whole.
    const back = parseSeenState(body);
    expect(countIds(back.stored)).toBe(total);
    expect(back.retained).toEqual(state.retained);
  });
});
