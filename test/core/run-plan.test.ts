import { describe, expect, it } from 'vitest';
import { type ValidatedFeed, validateFeed } from '../../src/core/event-validation.js';
import { countIds, hasId, rangesFromIds } from '../../src/core/id-ranges.js';
import {
  emptyLedger,
  isRecorded,
  type Ledger,
  parseObjectName,
  withDeclared,
} from '../../src/core/object-ledger.js';
import { recordObjects } from '../../src/core/record-objects.js';
import { assembleRunPlan, type PlanOptions, plannedEntries, type RunPlan } from '../../src/core/run-plan.js';
import {
  emptySeenState,
  parseSeenState,
  type SeenState,
  serializeSeenState,
} from '../../src/core/seen-set.js';

const OPTIONS: PlanOptions = {
  maxSeenIds: 1000,
  revisions: true,
  prefix: '',
  writeBudgetMs: 5 * 60_000,
  holder: 'run-1',
};
const NOW = new Date('2024-03-01T12:00:00.250Z');
const NOW_UNIX = Date.parse('2024-03-01T12:00:00Z') / 1000;

type Raw = Record<string, unknown>;

function ev(id: number, datetime: string, summary = 'En person har gripits.'): Raw {
  return {
    id,
    datetime,
    name: `Stöld, Västerås ${id}`,
    summary,
    url: `/aktuellt/handelser/${id}/`,
    type: 'Stöld',
    location: { name: 'Västerås', gps: '59.6099,16.5448' },
  };
}

/** The same content with the keys (also nested) in reverse order. */
function reordered(raw: Raw): Raw {
  const out: Raw = {};
  for (const key of Object.keys(raw).reverse()) {
    const value = raw[key];
    out[key] =
      value !== null && typeof value === 'object' && !Array.isArray(value) ? reordered(value as Raw) : value;
  }
  return out;
}

/** A window starting 10 days before NOW, as a new store's first run has it. */
const LEDGER = emptyLedger('2024/02/20');
type LedgerState = SeenState & { ledger: Ledger };
const withLedger = (state: SeenState): LedgerState => ({ ...state, ledger: state.ledger ?? LEDGER });

/**
 * The plan, and `next`: the state once its objects are written and recorded, as a run's commit leaves
 * it (record-objects.ts).
 */
function plan(
  state: SeenState,
  elements: unknown[],
  now = NOW,
  options: Partial<PlanOptions> = {},
): RunPlan & { next: LedgerState; feed: ValidatedFeed } {
  const base = withLedger(state);
  const feed = validateFeed(elements);
  const p = assembleRunPlan(base, feed, now, { ...OPTIONS, ...options });
  const objects = p.objects.map((o) => ({
    name: o.name,
    parts: parseObjectName(options.prefix ?? '', o.name)!,
    entries: plannedEntries(o),
  }));
  const next = recordObjects(base, {
    objects,
    learnedFps: p.learnedFps,
    protect: feed.ids,
    maxSeenIds: options.maxSeenIds ?? OPTIONS.maxSeenIds,
    newestEventUnix: p.newestNewUnix,
    now,
    listedAtMs: now.getTime(),
  }).state;
  return { ...p, next, feed };
}

const flatIds = (p: RunPlan, kind?: string) =>
  p.objects
    .filter((o) => kind === undefined || o.kind === kind)
    .flatMap((o) => o.ids)
    .sort((a, b) => a - b);

const A = ev(101, '2024-02-29 23:10:00 +01:00');
const B = ev(103, '2024-03-01 8:00:00 +01:00');
const C = ev(102, '2024-02-29 7:00:00 +01:00');
const FIRST = [A, B, C];

describe('assembleRunPlan on an empty state', () => {
  const p = plan(emptySeenState(), FIRST);

  it('every valid event is new', () => {
    expect(p.counts).toMatchObject({ fetched: 3, valid: 3, new: 3, alreadySeen: 0, updated: 0 });
    expect(p.counts.quarantined).toBe(0);
  });

  it('one events object per date, named with the run second, lines in feed order', () => {
    const byName = Object.fromEntries(p.objects.map((o) => [o.name, o]));
    expect(Object.keys(byName).sort()).toEqual([
      `events/2024/02/29/events-${NOW_UNIX}.jsonl`,
      `events/2024/03/01/events-${NOW_UNIX}.jsonl`,
    ]);
    const feb = byName[`events/2024/02/29/events-${NOW_UNIX}.jsonl`]!;
    expect(feb.kind).toBe('events');
    expect(feb.datePath).toBe('2024/02/29');
    expect(feb.ids).toEqual([101, 102]);
    expect(feb.body).toBe(`${JSON.stringify(A)}\n${JSON.stringify(C)}\n`);
    expect(feb.fps).toHaveLength(2);
    expect(feb.fps.every((f) => typeof f === 'string' && f.length > 0)).toBe(true);
    expect(feb.fps[0]).not.toBe(feb.fps[1]);
  });

  it('once recorded, exactly those ids are stored and the objects are in the ledger', () => {
    expect(p.unix).toBe(NOW_UNIX);
    expect(p.toDeclare).toEqual([]);
    expect(p.newestNewUnix).toBe(Date.parse('2024-03-01T08:00:00+01:00') / 1000);
    expect(countIds(p.next.stored)).toBe(3);
    for (const id of [101, 102, 103]) expect(hasId(p.next.stored, id)).toBe(true);
    for (const o of p.objects) expect(isRecorded(p.next.ledger, parseObjectName('', o.name)!)).toBe(true);
    expect(p.next.lastObjectUnix).toBe(NOW_UNIX);
    expect(p.next.newestEventUnix).toBe(p.newestNewUnix);
    // A new store: its first metadata is written even before any object is.
    expect(p.metadataChanged).toBe(true);
    expect(p.gap).toBeUndefined();
    expect([...p.feed.ids].sort((a, b) => a - b)).toEqual([101, 102, 103]);
  });

  it('with a prefix every object name starts with it', () => {
    const q = plan(emptySeenState(), [...FIRST, null], NOW, { prefix: 'stockholm/' });
    expect(q.objects).toHaveLength(3);
    for (const o of q.objects) expect(o.name.startsWith(`stockholm/${o.kind}/`)).toBe(true);
  });

  it('an element repeated verbatim counts as fetched but once as valid', () => {
    const q = plan(emptySeenState(), [A, A, B]);
    expect(q.counts).toMatchObject({ fetched: 3, valid: 2, new: 2, repeatedInResponse: 1 });
  });
});

describe('assembleRunPlan on a state with stored events', () => {
  const stored = plan(emptySeenState(), FIRST).next;
  const LATER = new Date('2024-03-01T12:30:00Z');
  const LATER_UNIX = Date.parse('2024-03-01T12:30:00Z') / 1000;

  it('the recorded first run stored its ids', () => {
    for (const id of [101, 102, 103]) expect(hasId(stored.stored, id)).toBe(true);
    expect(stored.format).toBe('new');
  });

  it('counts already seen events and plans only the new ones', () => {
    const D = ev(104, '2024-03-01 11:00:00 +01:00');
    const E = ev(105, '2024-03-01 11:05:00 +01:00');
    const p = plan(stored, [E, D, ...FIRST], LATER);
    expect(p.counts).toMatchObject({ valid: 5, new: 2, alreadySeen: 3, updated: 0 });
    expect(flatIds(p)).toEqual([104, 105]);
    expect(p.objects.map((o) => o.name)).toEqual([`events/2024/03/01/events-${LATER_UNIX}.jsonl`]);
    expect(p.objects[0]!.ids).toEqual([105, 104]);
    expect(p.gap).toBeUndefined();
  });

  it('nothing new and nothing learned: no objects, metadata unchanged', () => {
    const p = plan({ ...stored, format: 'v3' }, FIRST, LATER);
    expect(p.objects).toEqual([]);
    expect(p.metadataChanged).toBe(false);
    expect(p.learnedFps.size).toBe(0);
    expect(p.counts.alreadySeen).toBe(3);
  });

  it('a stored, retained event with changed content goes to updates/', () => {
    const edited = { ...C, type: 'Mord/dråp', summary: 'Händelsen utreds nu som mord.' };
    const oldFp = stored.retained.get(102);
    expect(oldFp).toBeTruthy();
    const p = plan(stored, [A, B, edited], LATER);
    expect(p.counts).toMatchObject({ new: 0, updated: 1, alreadySeen: 3 });
    expect(p.objects).toHaveLength(1);
    const update = p.objects[0]!;
    expect(update.kind).toBe('updates');
    expect(update.name).toBe(`updates/2024/02/29/updates-${LATER_UNIX}.jsonl`);
    expect(update.ids).toEqual([102]);
    expect(update.body).toBe(`${JSON.stringify(edited)}\n`);
    expect(update.fps[0]).not.toBe(oldFp);

    const after = p.next;
    expect(after.retained.get(102)).toBe(update.fps[0]);
    expect(countIds(after.stored)).toBe(3); // an update is not a new stored id
    // The edit is recorded once: the next run sees nothing to do.
    const again = plan(after, [A, B, edited], new Date('2024-03-01T13:00:00Z'));
    expect(again.counts.updated).toBe(0);
    expect(again.objects).toEqual([]);
  });

  it('the same content with keys in another order is not an update', () => {
    const p = plan({ ...stored, format: 'v3' }, FIRST.map(reordered), LATER);
    expect(JSON.stringify(reordered(C))).not.toBe(JSON.stringify(C));
    expect(p.counts.updated).toBe(0);
    expect(p.objects).toEqual([]);
    expect(p.metadataChanged).toBe(false);
  });

  it('with revisions off, changed content never makes an update', () => {
    const edited = { ...C, summary: 'Ny text.' };
    const p = plan(stored, [A, B, edited], LATER, { revisions: false });
    expect(p.counts.updated).toBe(0);
    expect(p.objects.filter((o) => o.kind === 'updates')).toEqual([]);
    // Nor in a following run, with revisions still off.
    const q = plan(p.next, [A, B, { ...C, summary: 'Tredje texten.' }], new Date('2024-03-01T13:00:00Z'), {
      revisions: false,
    });
    expect(q.counts.updated).toBe(0);
    expect(q.objects).toEqual([]);
  });

  it('with revisions off new events are still stored', () => {
    const p = plan(emptySeenState(), FIRST, NOW, { revisions: false });
    expect(flatIds(p, 'events')).toEqual([101, 102, 103]);
  });

  it('two plans in the same second never reuse an object name', () => {
    const first = plan(emptySeenState(), [A]);
    const second = plan(first.next, [A, B], NOW);
    expect(second.objects.map((o) => o.name)).toEqual([`events/2024/03/01/events-${NOW_UNIX + 1}.jsonl`]);
    expect(second.next.lastObjectUnix).toBe(NOW_UNIX + 1);
    const third = plan(second.next, [A, B, C], NOW);
    expect(third.objects.map((o) => o.name)).toEqual([`events/2024/02/29/events-${NOW_UNIX + 2}.jsonl`]);
  });

  it('a clock that went back still gets a fresh name', () => {
    const state: SeenState = { ...emptySeenState(), lastObjectUnix: NOW_UNIX + 3600 };
    const p = plan(state, [A]);
    expect(p.objects[0]!.name).toBe(`events/2024/02/29/events-${NOW_UNIX + 3601}.jsonl`);
  });
});

describe('assembleRunPlan: stored events whose content is not known', () => {
  it.each([
    ['outside the retained window', new Map<number, string>()],
    ['retained with an unknown fingerprint', new Map([[500, '']])],
  ])('%s: no update invented, the fingerprint is learned', (_label, retained) => {
    const X = ev(500, '2024-02-20 10:00:00 +01:00');
    const state: SeenState = { ...emptySeenState(), format: 'v3', stored: rangesFromIds([500]), retained };
    const p = plan(state, [X]);
    expect(p.counts).toMatchObject({ new: 0, updated: 0, alreadySeen: 1 });
    expect(p.objects).toEqual([]);
    expect(p.metadataChanged).toBe(true);
    expect(p.next.retained.get(500)).toBeTruthy();

    // Learned means: the same content is quiet next time, a real change is an update.
    const later = new Date('2024-03-01T13:00:00Z');
    const same = plan(p.next, [X], later);
    expect(same.metadataChanged).toBe(false);
    expect(same.counts.updated).toBe(0);
    const changed = plan(p.next, [{ ...X, summary: 'Ändrad.' }], later);
    expect(changed.counts.updated).toBe(1);
    expect(flatIds(changed, 'updates')).toEqual([500]);
  });
});

describe('assembleRunPlan: the write window', () => {
  const OLD = ev(300, '2023-05-01 10:00:00 +02:00');
  const NEWER = ev(301, '2024-03-01 10:00:00 +01:00');

  it('objects dated before the write window are to declare first; recent ones are not', () => {
    const p = plan(emptySeenState(), [OLD, NEWER]);
    expect(p.objects.map((o) => o.name).sort()).toEqual([
      `events/2023/05/01/events-${NOW_UNIX}.jsonl`,
      `events/2024/03/01/events-${NOW_UNIX}.jsonl`,
    ]);
    expect(p.toDeclare).toEqual(['events/2023/05/01']);
  });

  it('a partition this run declared needs no new declaration while it outlasts the write budget', () => {
    const declare = (untilMs: number, holder: string) => ({
      ...emptySeenState(),
      ledger: withDeclared(LEDGER, ['events/2023/05/01'], untilMs, [], holder),
    });
    expect(plan(declare(NOW.getTime() + 600_000, 'run-1'), [OLD]).toDeclare).toEqual([]);
    expect(plan(declare(NOW.getTime() + 60_000, 'run-1'), [OLD]).toDeclare).toEqual(['events/2023/05/01']);
    // Declared by another run: this one joins it first.
    expect(plan(declare(NOW.getTime() + 600_000, 'run-0'), [OLD]).toDeclare).toEqual(['events/2023/05/01']);
  });

  it('an edit of an old event goes to its old partition, to declare as well', () => {
    const stored = plan(emptySeenState(), [OLD]).next;
    const p = plan(stored, [{ ...OLD, summary: 'Ändrad.' }], new Date('2024-03-01T12:30:00Z'));
    expect(p.objects.map((o) => o.kind)).toEqual(['updates']);
    expect(p.toDeclare).toEqual(['updates/2023/05/01']);
  });
});

describe('assembleRunPlan: gap detection', () => {
  const newest = Date.parse('2024-02-20T10:00:00Z') / 1000;
  const state: SeenState = {
    ...emptySeenState(),
    format: 'v2',
    stored: rangesFromIds([1, 2, 3, 4, 5]),
    newestEventUnix: newest,
  };
  // Ids out of datetime order, as in the real feed: the oldest event is not the first nor the lowest id.
  const feed = [
    ev(9001, '2024-02-28 10:00:00 +01:00'),
    ev(9000, '2024-02-27 6:30:00 +01:00'),
    ev(9002, '2024-02-26 23:45:10 +01:00'),
    ev(9003, '2024-02-29 1:00:00 +01:00'),
  ];
  const oldest = Date.parse('2024-02-26T23:45:10+01:00') / 1000;

  it('stored ids and no shared id: a gap from the newest stored event to the oldest in the response', () => {
    const p = plan(state, feed);
    expect(p.gap).toEqual({ fromUnix: newest, toUnix: oldest });
    // The events are still stored.
    expect(flatIds(p, 'events')).toEqual([9000, 9001, 9002, 9003]);
  });

  it('detectGaps false: no gap', () => {
    expect(plan(state, feed, NOW, { detectGaps: false }).gap).toBeUndefined();
  });

  it('one shared id: no gap', () => {
    expect(plan(state, [...feed, ev(5, '2024-02-20 11:00:00 +01:00')]).gap).toBeUndefined();
  });

  it('an empty store: no gap', () => {
    expect(plan(emptySeenState(), feed).gap).toBeUndefined();
  });

  it('Python metadata: the gap start is unknown', () => {
    const p = plan(parseSeenState('{"seen_ids":[3,2,1]}'), feed);
    expect(p.gap).toEqual({ fromUnix: undefined, toUnix: oldest });
  });
});

describe('assembleRunPlan: quarantine', () => {
  const badId = { ...ev(0, '2024-03-01 9:00:00 +01:00'), id: '777' };
  const badDate = ev(778, 'i går');
  const feed = [A, badId, badDate];

  it('writes malformed elements to quarantine/<UTC run date>/ with reason, index, time and the element', () => {
    const p = plan(emptySeenState(), feed);
    expect(p.counts).toMatchObject({ fetched: 3, valid: 1, new: 1, quarantined: 2, quarantineRepeated: 0 });
    const q = p.objects.filter((o) => o.kind === 'quarantine');
    expect(q).toHaveLength(1);
    expect(q[0]!.name).toBe(`quarantine/2024/03/01/quarantine-${NOW_UNIX}.jsonl`);
    expect(q[0]!.ids).toEqual([]);
    expect(q[0]!.fps).toHaveLength(2);
    const lines = q[0]!.body
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.element)).toEqual([badId, badDate]);
    expect(lines.map((l) => l.index)).toEqual([1, 2]);
    for (const l of lines) {
      expect(l.received_at).toBe(NOW.toISOString());
      expect(typeof l.reason).toBe('string');
    }
    expect(q[0]!.body.endsWith('\n')).toBe(true);
  });

  it('the run date is the UTC date, not the Swedish one', () => {
    const lateEvening = new Date('2024-03-01T23:30:00Z'); // 00:30 on 2 March in Sweden
    const p = plan(emptySeenState(), [null], lateEvening);
    expect(p.objects.map((o) => o.name)).toEqual([
      `quarantine/2024/03/01/quarantine-${Date.parse('2024-03-01T23:30:00Z') / 1000}.jsonl`,
    ]);
  });

  it('the same malformed element in two successive runs is quarantined once', () => {
    const first = plan(emptySeenState(), feed);
    const settled = { ...first.next, format: 'v3' as const };
    const second = plan(settled, feed, new Date('2024-03-01T12:30:00Z'));
    expect(second.counts).toMatchObject({ quarantined: 0, quarantineRepeated: 2, new: 0, alreadySeen: 1 });
    expect(second.objects).toEqual([]);
    expect(second.metadataChanged).toBe(false);

    // A different malformed element still goes to quarantine.
    const third = plan(settled, [...feed, { id: 779 }], new Date('2024-03-01T12:30:00Z'));
    expect(third.counts).toMatchObject({ quarantined: 1, quarantineRepeated: 2 });
    const lines = third.objects
      .find((o) => o.kind === 'quarantine')!
      .body.trimEnd()
      .split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { element: unknown }).element)).toEqual([{ id: 779 }]);
  });
});

describe('assembleRunPlan on Python metadata', () => {
  const python = parseSeenState(
    '{"seen_ids":[103,102,101],"last_updated":"2024-02-29T10:00:00","total_tracked":3}',
  );

  it('metadata changes (upgrade) although nothing is new; no update is invented', () => {
    const p = plan(python, FIRST);
    expect(p.metadataChanged).toBe(true);
    expect(p.objects).toEqual([]);
    expect(p.counts).toMatchObject({ new: 0, updated: 0, alreadySeen: 3 });
    for (const id of [101, 102, 103]) expect(p.next.retained.get(id)).toBeTruthy();
    // Written back, it is the new format and quiet on the next identical run.
    const upgraded = parseSeenState(serializeSeenState(p.next, NOW));
    expect(upgraded.format).toBe('v3');
    const again = plan(upgraded, FIRST, new Date('2024-03-01T12:30:00Z'));
    expect(again.metadataChanged).toBe(false);
  });

  it('metadata changes (upgrade) even when no fingerprint is learned', () => {
    // An empty response, and revisions off (nothing to learn): only the format makes it change.
    expect(plan(python, []).metadataChanged).toBe(true);
    expect(plan(python, FIRST, NOW, { revisions: false }).metadataChanged).toBe(true);
    // The same on the new format is quiet.
    const upgraded = parseSeenState(
      serializeSeenState(plan(python, FIRST, NOW, { revisions: false }).next, NOW),
    );
    expect(plan(upgraded, [], NOW).metadataChanged).toBe(false);
    expect(plan(upgraded, FIRST, NOW, { revisions: false }).metadataChanged).toBe(false);
  });

  it('a Python file over MAX_SEEN_IDS is trimmed, keeping the ids still in the feed', () => {
    const ids = Array.from({ length: 1200 }, (_, k) => 1200 - k);
    const big = parseSeenState(JSON.stringify({ seen_ids: ids }));
    const p = plan(big, [ev(1, '2024-02-01 10:00:00 +01:00'), ev(2, '2024-02-01 10:01:00 +01:00')]);
    expect(p.next.retained.size).toBe(1000);
    expect(p.next.retained.has(1)).toBe(true);
    expect(p.next.retained.has(2)).toBe(true);
    expect(p.next.retained.has(1200)).toBe(true);
    expect(p.next.retained.has(3)).toBe(false);
    expect(countIds(p.next.stored)).toBe(1200);
  });
});
