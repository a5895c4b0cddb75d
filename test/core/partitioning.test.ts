import { describe, expect, it } from 'vitest';
import { validateFeed } from '../../src/core/event-validation.js';
import { datePathOfObject, objectName, partitionEvents, toJsonl } from '../../src/core/partitioning.js';

function ev(id: number, datetime: string, name = 'Trafikolycka') {
  return {
    id,
    datetime,
    name: `${name}, Malmö`,
    summary: 'Två bilar har kolliderat på Södra Förstadsgatan.',
  };
}

const UNIX = 1_709_294_400;

describe('partitionEvents', () => {
  // Ids and dates interleaved as in the real feed; one date boundary in Swedish time.
  const raws = [
    ev(10, '2024-01-01 00:00:00 +01:00'), // 2023-12-31T23:00Z, but partition 2024/01/01
    ev(11, '2023-12-31 23:59:59 +01:00'),
    ev(9, '2024-01-01 9:15:00 +01:00'),
    ev(12, '2023-12-31 8:01:02 +01:00'),
    ev(13, '2024-01-02 12:00:00 +01:00'),
    ev(8, '2024-01-01 14:30:00 +01:00'),
  ];
  const { events } = validateFeed(raws);

  it('groups by the event’s own date directory, in feed order within each', () => {
    const parts = partitionEvents(events, '', 'events', UNIX);
    const byDate = Object.fromEntries(parts.map((p) => [p.datePath, p.events.map((e) => e.id)]));
    expect(byDate).toEqual({
      '2023/12/31': [11, 12],
      '2024/01/01': [10, 9, 8],
      '2024/01/02': [13],
    });
    // Every event lands in exactly one partition.
    expect(parts.flatMap((p) => p.events.map((e) => e.id)).sort((a, b) => a - b)).toEqual([
      8, 9, 10, 11, 12, 13,
    ]);
  });

  it('names objects events/YYYY/MM/DD/events-<unix>.jsonl', () => {
    const names = partitionEvents(events, '', 'events', UNIX).map((p) => p.name);
    expect(names.sort()).toEqual([
      `events/2023/12/31/events-${UNIX}.jsonl`,
      `events/2024/01/01/events-${UNIX}.jsonl`,
      `events/2024/01/02/events-${UNIX}.jsonl`,
    ]);
  });

  it('puts the prefix in front, and names updates/ objects alike', () => {
    const names = partitionEvents(events.slice(0, 1), 'stockholm/', 'updates', UNIX).map((p) => p.name);
    expect(names).toEqual([`stockholm/updates/2024/01/01/updates-${UNIX}.jsonl`]);
  });

  it('the body is one raw event per line, in feed order, ending with exactly one newline', () => {
    const part = partitionEvents(events, '', 'events', UNIX).find((p) => p.datePath === '2024/01/01')!;
    expect(part.body.endsWith('\n')).toBe(true);
    expect(part.body.endsWith('\n\n')).toBe(false);
    const lines = part.body.slice(0, -1).split('\n');
    expect(lines.map((l) => JSON.parse(l))).toEqual([raws[0], raws[2], raws[5]]);
    expect(lines[0]).toBe(JSON.stringify(raws[0]));
    expect(part.body).toContain('Malmö');
  });

  it('no events, no partitions', () => {
    expect(partitionEvents([], '', 'events', UNIX)).toEqual([]);
  });
});

describe('toJsonl / objectName', () => {
  it('toJsonl joins with newlines and ends with one; empty is empty', () => {
    expect(toJsonl(['{"a":1}', '{"b":2}'])).toBe('{"a":1}\n{"b":2}\n');
    expect(toJsonl(['{}'])).toBe('{}\n');
    expect(toJsonl([])).toBe('');
  });

  it('objectName', () => {
    expect(objectName('', 'quarantine', '2024/03/01', 5)).toBe('quarantine/2024/03/01/quarantine-5.jsonl');
    expect(objectName('a/b/', 'events', '2023/08/09', UNIX)).toBe(
      `a/b/events/2023/08/09/events-${UNIX}.jsonl`,
    );
  });
});

describe('datePathOfObject', () => {
  it.each([
    ['events/2023/08/09/events-1691573493.jsonl', '2023/08/09'],
    ['updates/2024/01/01/updates-1704063600.jsonl', '2024/01/01'],
    ['quarantine/2024/03/01/quarantine-1709294400.jsonl', '2024/03/01'],
    ['stockholm/events/2023/12/31/events-1.jsonl', '2023/12/31'],
    ['a/b/events/2023/12/31/events-1.jsonl', '2023/12/31'],
  ])('%s → %s', (name, datePath) => {
    expect(datePathOfObject(name)).toBe(datePath);
  });

  it.each([
    'metadata/last_seen.json',
    'events/2023/08/events-1.jsonl',
    'events/2023/08/09',
    'other/2023/08/09/x.jsonl',
    'myevents/2023/08/09/events-1.jsonl',
    'events/2023/08/09/sub/events-1.jsonl',
  ])('%s → undefined', (name) => {
    expect(datePathOfObject(name)).toBeUndefined();
  });

  it('is the inverse of objectName for every kind and prefix', () => {
    for (const prefix of ['', 'p/', 'x/y/'])
      for (const kind of ['events', 'updates', 'quarantine'])
        expect(datePathOfObject(objectName(prefix, kind, '2023/03/26', UNIX))).toBe('2023/03/26');
  });
});
