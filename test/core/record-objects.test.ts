import { describe, expect, it } from 'vitest';
import { fingerprintEvent } from '../../src/core/fingerprint.js';
import { countIds, hasId, rangesFromIds } from '../../src/core/id-ranges.js';
import { emptyLedger, isRecorded, type Ledger, parseObjectName } from '../../src/core/object-ledger.js';
import {
  type ObjectEntry,
  type RecordInput,
  readObjectEntries,
  recordObjects,
  stripLines,
  type TrackedObject,
} from '../../src/core/record-objects.js';
import { emptySeenState, MAX_QUARANTINE_FINGERPRINTS, type SeenState } from '../../src/core/seen-set.js';

const NOW = new Date('2024-03-10T12:00:00.000Z');
const fp = (n: number) => fingerprintEvent({ id: n, name: `event ${n}` });

function object(name: string, entries: ObjectEntry[]): TrackedObject {
  const parts = parseObjectName('', name);
  if (!parts) throw new Error(name);
  return { name, parts, entries };
}
const events = (unix: number, ids: number[], day = '05') =>
  object(
    `events/2024/03/${day}/events-${unix}.jsonl`,
    ids.map((id) => ({ id, fp: fp(id) })),
  );
const updates = (unix: number, entries: [number, string][]) =>
  object(
    `updates/2024/03/05/updates-${unix}.jsonl`,
    entries.map(([id, f]) => ({ id, fp: f })),
  );
const quarantine = (unix: number, fps: string[]) =>
  object(
    `quarantine/2024/03/05/quarantine-${unix}.jsonl`,
    fps.map((f) => ({ id: undefined, fp: f })),
  );

const base: SeenState & { ledger: Ledger } = {
  ...emptySeenState(),
  format: 'v3',
  stored: rangesFromIds([1, 2, 3]),
  retained: new Map([
    [3, fp(3)],
    [2, fp(2)],
  ]),
  quarantineFps: [fp(-9)],
  ledger: emptyLedger('2024/03/01'),
  newestEventUnix: 1000,
};

function input(objects: TrackedObject[], extra: Partial<RecordInput> = {}): RecordInput {
  return {
    objects,
    learnedFps: new Map(),
    protect: new Set(),
    maxSeenIds: 1000,
    newestEventUnix: undefined,
    now: NOW,
    listedAtMs: NOW.getTime(),
    ...extra,
  };
}

describe('recordObjects', () => {
  it('new ids become stored with their fingerprints; edits change fingerprints; quarantine adds fps', () => {
    const r = recordObjects(
      base,
      input(
        [
          events(1709640000, [10, 11]),
          updates(1709640000, [[2, fp(222)]]),
          quarantine(1709640000, [fp(-1), fp(-2)]),
        ],
        { newestEventUnix: 2000 },
      ),
    );
    expect(r.strips).toEqual([]);
    expect(r.recorded).toBe(3);
    expect(countIds(r.state.stored)).toBe(5);
    expect(r.state.retained.get(10)).toBe(fp(10));
    expect(r.state.retained.get(2)).toBe(fp(222));
    expect(r.state.quarantineFps).toEqual([fp(-9), fp(-1), fp(-2)]);
    expect(r.state.newestEventUnix).toBe(2000);
    expect(r.state.lastObjectUnix).toBe(1709640000);
    for (const o of ['events', 'updates', 'quarantine']) {
      expect(r.state.ledger.recorded.get(`${o}/2024/03/05`)).toEqual([1709640000]);
    }
    // The input is not changed.
    expect(countIds(base.stored)).toBe(3);
    expect(base.retained.get(2)).toBe(fp(2));
  });

  it('strips the lines whose id is stored already; an object of duplicates only goes whole', () => {
    const partly = events(1709640000, [3, 12, 2]);
    const wholly = events(1709640001, [1, 2]);
    const r = recordObjects(base, input([partly, wholly]));
    expect(r.strips).toEqual([
      { name: partly.name, remove: [0, 2], all: false },
      { name: wholly.name, remove: [0, 1], all: true },
    ]);
    expect(r.duplicateLines).toBe(4);
    expect(r.recorded).toBe(1);
    expect(hasId(r.state.stored, 12)).toBe(true);
    expect(isRecorded(r.state.ledger, partly.parts)).toBe(true);
    expect(isRecorded(r.state.ledger, wholly.parts)).toBe(false);
  });

  it('an edit already retained is a duplicate; another version is not', () => {
    const r = recordObjects(
      base,
      input([
        updates(1709640000, [
          [3, fp(3)],
          [2, fp(22)],
        ]),
      ]),
    );
    expect(r.strips).toEqual([
      { name: 'updates/2024/03/05/updates-1709640000.jsonl', remove: [0], all: false },
    ]);
    expect(r.state.retained.get(2)).toBe(fp(22));
  });

  it('a quarantined element already known is a duplicate', () => {
    const r = recordObjects(base, input([quarantine(1709640000, [fp(-9), fp(-3)])]));
    expect(r.strips[0]?.remove).toEqual([0]);
    expect(r.state.quarantineFps).toEqual([fp(-9), fp(-3)]);
  });

  it('two unrecorded objects with one id: the first is recorded, the second waits for the next commit', () => {
    // Another run may see only the second: stripping it now, against a line no commit holds yet, could
    // leave the event in neither object.
    const first = events(1709640000, [20, 21]);
    const second = events(1709640005, [21, 22]);
    const r = recordObjects(base, input([second, first]));
    expect(r.strips).toEqual([]);
    expect(r.deferred).toBe(1);
    expect(r.recorded).toBe(1);
    expect(hasId(r.state.stored, 21)).toBe(true);
    expect(hasId(r.state.stored, 22)).toBe(false);
    expect(isRecorded(r.state.ledger, second.parts)).toBe(false);
    // The window does not move while something in it is unrecorded.
    expect(r.state.ledger.from).toBe(base.ledger.from);
    // The next commit strips 21 from the second and records it.
    const next = recordObjects(r.state, input([second]));
    expect(next.strips).toEqual([{ name: second.name, remove: [0], all: false }]);
    expect(next.deferred).toBe(0);
    expect(hasId(next.state.stored, 22)).toBe(true);
  });

  it('also waits on repeated edits and quarantined elements across unrecorded objects', () => {
    const r = recordObjects(
      base,
      input([
        updates(1709640000, [[2, fp(22)]]),
        updates(1709640001, [[2, fp(22)]]),
        quarantine(1709640000, [fp(-4)]),
        quarantine(1709640001, [fp(-4)]),
      ]),
    );
    expect(r.deferred).toBe(2);
    expect(r.strips).toEqual([]);
  });

  it('learns fingerprints of stored events only where none is known, and never strips for them', () => {
    const r = recordObjects(
      { ...base, retained: new Map([[3, '']]) },
      input([updates(1709640000, [[3, fp(33)]])], {
        learnedFps: new Map([
          [3, fp(33)],
          [1, fp(1)],
          [99, fp(99)],
        ]),
      }),
    );
    expect(r.strips).toEqual([]);
    expect(r.state.retained.get(3)).toBe(fp(33));
    expect(r.state.retained.get(1)).toBe(fp(1));
    expect(r.state.retained.has(99)).toBe(false);
  });

  it('trims retained to max, protecting the feed ids; quarantine fingerprints are capped', () => {
    const ids = Array.from({ length: 30 }, (_, k) => 100 + k);
    const fps = Array.from({ length: MAX_QUARANTINE_FINGERPRINTS + 100 }, (_, k) => fp(-k - 100));
    const r = recordObjects(
      base,
      input([events(1709640000, ids), quarantine(1709640000, fps)], {
        protect: new Set([2, 3]),
        maxSeenIds: 10,
      }),
    );
    expect(r.state.retained.size).toBe(10);
    expect(r.state.retained.has(2)).toBe(true);
    expect(r.state.retained.has(129)).toBe(true);
    expect(r.state.retained.has(100)).toBe(false);
    expect(countIds(r.state.stored)).toBe(33);
    expect(r.state.quarantineFps).toEqual(fps.slice(-MAX_QUARANTINE_FINGERPRINTS));
  });

  it('moves the window after recording, and leaves out objects below it', () => {
    const r = recordObjects(
      { ...base, ledger: emptyLedger('2024/02/20') },
      input([
        object('events/2024/02/25/events-1709000000.jsonl', [{ id: 40, fp: fp(40) }]),
        events(1709640000, [41], '05'),
      ]),
    );
    expect(r.state.ledger.from).toBe('2024/03/01');
    expect([...r.state.ledger.recorded.keys()]).toEqual(['events/2024/03/05']);
    expect(hasId(r.state.stored, 40)).toBe(true);
  });
});

describe('readObjectEntries and stripLines', () => {
  const e = (id: number) => ({ id, datetime: '2024-03-05 10:00:00 +01:00', name: `event ${id}` });

  it('reads ids and fingerprints as the plan computes them; keeps lines that are not events', () => {
    const body = `${JSON.stringify(e(5))}\nnot json\n${JSON.stringify({ id: 'x' })}\n${JSON.stringify(e(6))}\n`;
    expect(readObjectEntries('events', body)).toEqual([
      { id: 5, fp: fingerprintEvent(e(5)) },
      { id: undefined, fp: '' },
      { id: undefined, fp: '' },
      { id: 6, fp: fingerprintEvent(e(6)) },
    ]);
    expect(readObjectEntries('events', body, false)[0]).toEqual({ id: 5, fp: '' });
  });

  it('fingerprints a quarantine line by its element, as it was fingerprinted when quarantined', () => {
    const element = { id: 'x', datetime: 'igår' };
    const line = `{"reason":"r","received_at":"t","index":3,"element":${JSON.stringify(element)}}`;
    expect(readObjectEntries('quarantine', `${line}\n`)).toEqual([
      { id: undefined, fp: fingerprintEvent(JSON.stringify(element)) },
    ]);
  });

  it('removes exactly the stripped lines', () => {
    expect(stripLines('a\nb\nc\n', [1])).toBe('a\nc\n');
    expect(stripLines('a\nb\n', [0, 1])).toBe('');
  });
});
