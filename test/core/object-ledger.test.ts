import { describe, expect, it } from 'vitest';
import {
  advanced,
  advanceIsDue,
  datePathDaysFrom,
  emptyLedger,
  initialWindowFrom,
  isRecorded,
  isUnrecorded,
  isWritable,
  type Ledger,
  LedgerFormatError,
  listingCovers,
  listingFor,
  parseLedger,
  parseObjectName,
  released,
  serializeLedger,
  unrecordedObjects,
  WINDOW_MARGIN_DAYS,
  WRITE_WINDOW_DAYS,
  withDeclared,
  withRecorded,
} from '../../src/core/object-ledger.js';

const NOW = new Date('2024-03-10T12:00:00.000Z');
const BUDGET = 5 * 60_000;

function parts(name: string) {
  const p = parseObjectName('', name);
  if (!p) throw new Error(name);
  return p;
}

describe('parseObjectName', () => {
  it('reads the collector layout below the store prefix', () => {
    expect(parseObjectName('sthlm/', 'sthlm/events/2024/03/01/events-1709251200.jsonl')).toEqual({
      kind: 'events',
      partition: 'events/2024/03/01',
      datePath: '2024/03/01',
      unix: 1709251200,
    });
    expect(parseObjectName('', 'quarantine/2024/03/01/quarantine-5.jsonl')?.kind).toBe('quarantine');
  });

  it.each([
    ['another prefix', 'other/events/2024/03/01/events-1.jsonl'],
    ['kind and file name disagree', 'events/2024/03/01/updates-1.jsonl'],
    ['not a date directory', 'events/2024/3/01/events-1.jsonl'],
    ['another file', 'events/2024/03/01/notes.txt'],
    ['metadata', 'metadata/last_seen.json'],
  ])('%s → undefined', (_label, name) => {
    expect(parseObjectName(name.startsWith('other/') ? 'sthlm/' : '', name)).toBeUndefined();
  });
});

describe('the window', () => {
  const ledger = emptyLedger(datePathDaysFrom(NOW, -(WRITE_WINDOW_DAYS + WINDOW_MARGIN_DAYS)));

  it('starts where a commit leaves it, a day earlier, for a run with nothing known yet', () => {
    expect(initialWindowFrom(NOW)).toBe('2024/02/29');
    expect(ledger.from).toBe('2024/03/01');
  });

  it('lets a run write without declaring into the last WRITE_WINDOW_DAYS days, and later ones', () => {
    expect(isWritable(ledger, 'events', '2024/03/03', NOW, BUDGET, 'me')).toBe(true);
    expect(isWritable(ledger, 'events', '2024/03/11', NOW, BUDGET, 'me')).toBe(true);
    expect(isWritable(ledger, 'updates', '2024/03/20', NOW, BUDGET, 'me')).toBe(true);
    // Inside the window but older than the write window: a concurrent commit may move the window past it.
    expect(isWritable(ledger, 'events', '2024/03/02', NOW, BUDGET, 'me')).toBe(false);
    expect(isWritable(ledger, 'events', '2023/05/01', NOW, BUDGET, 'me')).toBe(false);
  });

  it('a declared partition is writable by its holders, while the declaration outlasts the write budget', () => {
    const until = NOW.getTime() + 15 * 60_000;
    const declared = withDeclared(ledger, ['events/2023/05/01'], until, [], 'me');
    // Another run must add itself first, so that the partition is not dropped under its writes.
    expect(isWritable(declared, 'events', '2023/05/01', NOW, BUDGET, 'other')).toBe(false);
    expect(isWritable(declared, 'events', '2023/05/01', NOW, BUDGET, 'me')).toBe(true);
    expect(isWritable(declared, 'updates', '2023/05/01', NOW, BUDGET, 'me')).toBe(false);
    const late = new Date(until - BUDGET + 1);
    expect(isWritable(declared, 'events', '2023/05/01', late, BUDGET, 'me')).toBe(false);
  });

  it('is listed from its start, and declared partitions below it one by one', () => {
    const declared = withDeclared(
      ledger,
      ['events/2023/05/01', 'updates/2024/03/05'],
      NOW.getTime(),
      [],
      'me',
    );
    expect(listingFor(declared)).toEqual({ from: '2024/03/01', partitions: ['events/2023/05/01'] });
    expect(listingCovers({ from: '2024/02/29', partitions: [] }, listingFor(ledger))).toBe(true);
    expect(listingCovers({ from: '2024/03/02', partitions: [] }, listingFor(ledger))).toBe(false);
    expect(listingCovers({ from: '2024/02/29', partitions: [] }, listingFor(declared))).toBe(false);
    expect(
      listingCovers({ from: '2024/02/29', partitions: ['events/2023/05/01'] }, listingFor(declared)),
    ).toBe(true);
  });
});

describe('recorded and unrecorded objects', () => {
  const base = emptyLedger('2024/03/01');
  const a = 'events/2024/03/05/events-1709640000.jsonl';
  const b = 'events/2024/03/05/events-1709641800.jsonl';
  const old = 'events/2024/02/01/events-1706788800.jsonl';
  const ledger = withRecorded(base, [parts(a), parts(old)]);

  it('records objects in the window only (nobody lists outside it)', () => {
    expect(isRecorded(ledger, parts(a))).toBe(true);
    expect(isRecorded(ledger, parts(b))).toBe(false);
    expect(isRecorded(ledger, parts(old))).toBe(false);
    expect(withRecorded(ledger, [parts(a)])).toBe(ledger);
  });

  it('names the listed objects it answers for and has not recorded', () => {
    const listed = [a, b, old, 'events/2024/03/05/notes.txt', 'metadata/last_seen.json'];
    expect(unrecordedObjects(ledger, '', listed).map((o) => o.name)).toEqual([b]);
  });

  it('an object is unrecorded when the ledger answers for its partition and does not list it', () => {
    expect(isUnrecorded(ledger, parts(b))).toBe(true);
    expect(isUnrecorded(ledger, parts(a))).toBe(false);
    // Below the window: nobody answers for it, unless its partition is declared.
    expect(isUnrecorded(ledger, parts(old))).toBe(false);
    const declared = withDeclared(ledger, ['events/2024/02/01'], NOW.getTime(), [], 'me');
    expect(isUnrecorded(declared, parts(old))).toBe(true);
  });

  it('keeps unix times sorted whatever order they come in', () => {
    const times = [1709650000, 1709640000, 1709660000, 1709645000];
    const many = withRecorded(
      base,
      times.map((t) => parts(`updates/2024/03/05/updates-${t}.jsonl`)),
    );
    expect(many.recorded.get('updates/2024/03/05')).toEqual([...times].sort((x, y) => x - y));
  });

  it('a declaration takes what is listed there as recorded, outside the window only', () => {
    const inside = 'events/2024/03/02/events-1709400000.jsonl';
    const outside = 'events/2023/05/01/events-1683000000.jsonl';
    const declared = withDeclared(
      ledger,
      ['events/2024/03/02', 'events/2023/05/01'],
      NOW.getTime(),
      [parts(inside), parts(outside)],
      'me',
    );
    // Below the window, every object there was recorded by some commit before.
    expect(isRecorded(declared, parts(outside))).toBe(true);
    // Inside it, an object the ledger does not know is unrecorded: a declaration must not hide it.
    expect(isRecorded(declared, parts(inside))).toBe(false);
  });
});

describe('advanced: the window after a commit', () => {
  it('moves its start up to today − window − margin and forgets what is below', () => {
    const ledger = withRecorded(emptyLedger('2024/02/20'), [
      parts('events/2024/02/25/events-1708850000.jsonl'),
      parts('events/2024/03/05/events-1709640000.jsonl'),
    ]);
    const next = advanced(ledger, NOW, NOW.getTime());
    expect(next.from).toBe('2024/03/01');
    expect([...next.recorded.keys()]).toEqual(['events/2024/03/05']);
  });

  it('never moves it back', () => {
    const ledger = emptyLedger('2024/03/05');
    expect(advanced(ledger, NOW, NOW.getTime())).toBe(ledger);
  });

  it('drops a declaration that ended before the run listed it, with what it recorded', () => {
    const until = NOW.getTime() - 1000;
    const declared = withDeclared(
      emptyLedger('2024/03/01'),
      ['events/2023/05/01'],
      until,
      [parts('events/2023/05/01/events-1683000000.jsonl')],
      'dead-run',
    );
    // Listed before the end: kept.
    expect(advanced(declared, NOW, until - 1).declared.size).toBe(1);
    const next = advanced(declared, NOW, NOW.getTime());
    expect(next.declared.size).toBe(0);
    expect(next.recorded.size).toBe(0);
  });

  it('is due when the window would no longer be covered by a first listing, or a declaration ended', () => {
    expect(advanceIsDue(emptyLedger(initialWindowFrom(NOW)), NOW, NOW.getTime())).toBe(false);
    expect(advanceIsDue(emptyLedger(datePathDaysFrom(NOW, -11)), NOW, NOW.getTime())).toBe(true);
    const ended = withDeclared(emptyLedger('2024/03/01'), ['events/2023/05/01'], NOW.getTime() - 1, [], 'x');
    expect(advanceIsDue(ended, NOW, NOW.getTime())).toBe(true);
  });
});

describe('released: a run leaves its declarations once its objects are recorded', () => {
  const until = NOW.getTime() + 15 * 60_000;
  const old = parts('events/2023/05/01/events-1683000000.jsonl');
  const both = withDeclared(
    withDeclared(emptyLedger('2024/03/01'), ['events/2023/05/01'], until, [old], 'a'),
    ['events/2023/05/01', 'updates/2023/05/01'],
    until,
    [],
    'b',
  );

  it('a partition stays declared while another holder writes there', () => {
    const withoutA = released(both, 'a');
    expect(withoutA.declared.get('events/2023/05/01')?.holders).toEqual(['b']);
    expect(isRecorded(withoutA, old)).toBe(true);
  });

  it('with no holder left it leaves the window at once, with what it recorded', () => {
    const none = released(released(both, 'a'), 'b');
    expect(none.declared.size).toBe(0);
    expect(none.recorded.size).toBe(0);
    expect(released(none, 'c')).toBe(none);
  });
});

describe('serializeLedger / parseLedger', () => {
  it('round-trips, with unix times as deltas', () => {
    const ledger: Ledger = {
      from: '2024/03/01',
      recorded: new Map([
        ['events/2024/03/05', [1709640000, 1709641800, 1709641801]],
        ['quarantine/2024/03/05', [1709640000]],
      ]),
      declared: new Map([
        ['updates/2023/05/01', { untilMs: Date.parse('2024-03-10T12:15:00.000Z'), holders: ['r1', 'r2'] }],
      ]),
    };
    const doc = serializeLedger(ledger);
    expect(doc).toEqual({
      from: '2024/03/01',
      objects: { 'events/2024/03/05': [1709640000, 1800, 1], 'quarantine/2024/03/05': [1709640000] },
      declared: { 'updates/2023/05/01': { until: '2024-03-10T12:15:00.000Z', by: ['r1', 'r2'] } },
    });
    expect(parseLedger(JSON.parse(JSON.stringify(doc)))).toEqual(ledger);
  });

  it.each([
    ['not an object', []],
    ['no from', { objects: {} }],
    ['a bad partition', { from: '2024/03/01', objects: { 'logs/2024/03/01': [1] } }],
    ['an empty list', { from: '2024/03/01', objects: { 'events/2024/03/01': [] } }],
    ['a repeated time', { from: '2024/03/01', objects: { 'events/2024/03/01': [5, 0] } }],
    ['a float', { from: '2024/03/01', objects: { 'events/2024/03/01': [5.5] } }],
    ['a bad until', { from: '2024/03/01', declared: { 'events/2023/03/01': { until: 12, by: ['r'] } } }],
    [
      'no holders',
      { from: '2024/03/01', declared: { 'events/2023/03/01': { until: '2024-03-01T00:00:00Z', by: [] } } },
    ],
  ])('%s → LedgerFormatError', (_label, value) => {
    expect(() => parseLedger(value)).toThrow(LedgerFormatError);
  });
});
