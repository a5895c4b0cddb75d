import { describe, expect, it } from 'vitest';
import { eventLine, validateFeed } from '../../src/core/event-validation.js';
import { fingerprintEvent, fingerprintFeedEvent } from '../../src/core/fingerprint.js';
import { loadReplay, REPLAY_SKIP_REASON, replayFileAvailable } from '../support/replay-file.js';

/** An element shaped like the API's, with Swedish text. */
function element(id: unknown, datetime: unknown = '2023-08-09 11:31:33 +02:00', name = 'Misshandel, grov') {
  return {
    id,
    datetime,
    name: `09 augusti 11.31, ${name}, Göteborg`,
    summary: 'En man har förts till sjukhus efter bråk på Järntorget; polisen söker vittnen.',
    url: '/aktuellt/handelser/2023/augusti/9/09-augusti-11.31-misshandel-grov-goteborg/',
    type: name,
    location: { name: 'Västra Götalands län', gps: '57.70887,11.97456' },
  };
}

describe('validateFeed: quarantine with a reason, nothing dropped', () => {
  it.each([
    ['null', null],
    ['a number', 42],
    ['a string', 'Misshandel'],
    ['a boolean', true],
    ['an array', [element(1)]],
  ])('an element that is %s is quarantined', (_label, bad) => {
    const result = validateFeed([element(101), bad, element(102)]);
    expect(result.events.map((e) => e.id)).toEqual([101, 102]);
    expect(result.quarantined).toHaveLength(1);
    const q = result.quarantined[0]!;
    expect(q.index).toBe(1);
    expect(q.line).toBe(JSON.stringify(bad));
    expect(q.reason).toMatch(/object/i);
  });

  it.each([
    ['missing', undefined],
    ['a string "123"', '123'],
    ['a float', 123.5],
    ['negative', -7],
    ['zero', 0],
    ['null', null],
    ['unsafe (above 2^53)', 2 ** 60],
  ])('an id that is %s is quarantined', (_label, id) => {
    const bad: Record<string, unknown> = element(id);
    if (id === undefined) delete bad.id;
    const result = validateFeed([bad]);
    expect(result.events).toEqual([]);
    expect(result.quarantined).toHaveLength(1);
    expect(result.quarantined[0]!.index).toBe(0);
    expect(result.quarantined[0]!.line).toBe(JSON.stringify(bad));
    expect(result.quarantined[0]!.reason).toMatch(/\bid\b/);
  });

  it.each([
    ['garbage', 'igår'],
    ['month 13', '2023-13-09 11:31:33 +02:00'],
    ['no offset', '2023-08-09 11:31:33'],
    ['missing', undefined],
    ['a number', 1691573493],
  ])('a datetime that is %s is quarantined, naming the event', (_label, datetime) => {
    const bad: Record<string, unknown> = element(555, datetime);
    // The helper's default fills in undefined; "missing" means no key at all.
    if (datetime === undefined) delete bad.datetime;
    const result = validateFeed([bad]);
    expect(result.events).toEqual([]);
    expect(result.quarantined).toHaveLength(1);
    expect(result.quarantined[0]!.reason).toMatch(/datetime/);
    expect(result.quarantined[0]!.reason).toContain('555');
  });

  it('every element is either an event, quarantined or counted as a verbatim repeat', () => {
    const elements: unknown[] = [
      element(3),
      null,
      element('4'),
      element(5, 'nope'),
      element(3),
      element(6),
      element(6, undefined, 'Mord/dråp'),
      [],
    ];
    const r = validateFeed(elements);
    expect(r.events.length + r.quarantined.length + r.repeatedInResponse).toBe(elements.length);
    expect(r.quarantined.map((q) => q.index)).toEqual([1, 2, 3, 6, 7]);
  });
});

describe('validateFeed: valid events', () => {
  it('keeps the feed order (ids are not in order in the real feed)', () => {
    const ids = [438_834, 438_901, 438_790, 438_835, 12, 999_999];
    const result = validateFeed(ids.map((id) => element(id)));
    expect(result.events.map((e) => e.id)).toEqual(ids);
    expect(result.quarantined).toEqual([]);
    expect(result.repeatedInResponse).toBe(0);
  });

  it('carries the raw element and its parsed time', () => {
    const raw = element(438_834, '2023-08-09 9:05:01 +02:00');
    const [event] = validateFeed([raw]).events;
    expect(event!.raw).toEqual(raw);
    expect(event!.time.datePath).toBe('2023/08/09');
    expect(event!.time.unixSeconds).toBe(Date.parse('2023-08-09T09:05:01+02:00') / 1000);
  });

  it('an element repeated verbatim in one response is kept once and counted', () => {
    const result = validateFeed([element(7), element(8), element(7), element(7)]);
    expect(result.events.map((e) => e.id)).toEqual([7, 8]);
    expect([...result.ids]).toEqual([7, 8]);
    expect(result.repeatedInResponse).toBe(2);
    expect(result.quarantined).toEqual([]);
  });

  it('the same id with different content is quarantined; the first sighting is kept', () => {
    const first = element(9, undefined, 'Misshandel, grov');
    const second = element(9, undefined, 'Mord/dråp');
    const result = validateFeed([first, second]);
    expect(result.events).toHaveLength(1);
    expect(result.events[0]!.raw).toEqual(first);
    expect([...result.ids]).toEqual([9]);
    expect(result.repeatedInResponse).toBe(0);
    expect(result.quarantined).toHaveLength(1);
    expect(result.quarantined[0]!.index).toBe(1);
    expect(result.quarantined[0]!.line).toBe(JSON.stringify(second));
    expect(result.quarantined[0]!.reason).toContain('9');
  });

  it('line is JSON.stringify of the element, with å ä ö as UTF-8 (not \\u escapes)', () => {
    const raw = element(438_834, undefined, 'Rån väpnat, Örebro');
    const [event] = validateFeed([raw]).events;
    const line = eventLine(event!);
    expect(line).toBe(JSON.stringify(raw));
    expect(line).toContain('Västra Götalands län');
    expect(line).toContain('Örebro');
    expect(line).toContain('förts');
    expect(line).not.toMatch(/\\u00[ce][0-9a-f]/i);
    expect(line).not.toContain('\n');
    expect(JSON.parse(line)).toEqual(raw);
    // å, ä, ö take two bytes each in UTF-8: the byte length exceeds the character count.
    expect(Buffer.byteLength(line, 'utf8')).toBeGreaterThan(line.length);
  });

  it('an empty response is empty', () => {
    expect(validateFeed([])).toEqual({ events: [], ids: new Set(), quarantined: [], repeatedInResponse: 0 });
  });
});

describe('eventLine: exactly JSON.stringify of the element, whatever its shape', () => {
  const base = element(438_834);
  const { location: _location, ...noLocation } = base;
  it.each<[string, Record<string, unknown>]>([
    ['the API shape', base],
    ['a quote', { ...base, summary: 'Han sa "stopp" och sprang.' }],
    ['a backslash', { ...base, name: 'C:\\väg' }],
    ['a newline and a tab', { ...base, summary: 'rad ett\nrad två\tslut' }],
    ['other control characters', { ...base, type: 'a\u0001b\u001fc\u0000' }],
    ['DEL, U+2028 and U+2029 (not escaped)', { ...base, summary: 'a\u007fb\u2028c\u2029d' }],
    ['an emoji (a surrogate pair)', { ...base, summary: 'Brand 🔥 i bostad' }],
    ['a lone high surrogate', { ...base, summary: 'x\ud83dy' }],
    ['a lone low surrogate in the location', { ...base, location: { name: 'x\ude00', gps: '1,2' } }],
    [
      'reordered keys',
      {
        location: base.location,
        id: base.id,
        datetime: base.datetime,
        name: base.name,
        summary: base.summary,
        url: base.url,
        type: base.type,
      },
    ],
    ['an extra key', { ...base, extra: 'x' }],
    ['no location', noLocation],
    ['a null location', { ...base, location: null }],
    ['an array location', { ...base, location: ['a', 'b'] }],
    ['an extra location key', { ...base, location: { ...base.location, x: 1 } }],
    ['location keys reordered', { ...base, location: { gps: base.location.gps, name: base.location.name } }],
    ['a number where a string is expected', { ...base, type: 7 }],
    ['a null summary', { ...base, summary: null }],
    ['an undefined summary (left out)', { ...base, summary: undefined }],
    ['a nested object', { ...base, name: { sv: 'Rån' } }],
    ['a large id', { ...base, id: 2 ** 53 - 1 }],
    ['empty strings', { ...base, name: '', summary: '', type: '' }],
  ])('%s', (_label, raw) => {
    const [event] = validateFeed([raw]).events;
    expect(event!.verbatim).toBeUndefined();
    expect(eventLine(event!)).toBe(JSON.stringify(raw));
    // Once fingerprinted (as the plan does), the line comes from what the fingerprint noted.
    expect(fingerprintFeedEvent(event!, false)).toBe(fingerprintEvent(raw));
    expect(event!.verbatim).toBeUndefined();
    expect(fingerprintFeedEvent(event!, true)).toBe(fingerprintEvent(raw));
    expect(typeof event!.verbatim).toBe('boolean');
    expect(eventLine(event!)).toBe(JSON.stringify(raw));
  });

  it('the fingerprint notes the template is usable only for plain strings in the API shape', () => {
    const verbatim = (raw: Record<string, unknown>) => {
      const [event] = validateFeed([raw]).events;
      fingerprintFeedEvent(event!, true);
      return event!.verbatim;
    };
    expect(verbatim(base)).toBe(true);
    expect(verbatim({ ...base, summary: 'ett "citat"' })).toBe(false);
    expect(verbatim({ ...base, name: 'C:\\väg' })).toBe(false);
    expect(verbatim({ ...base, type: 'rad\nrad' })).toBe(false);
    expect(verbatim({ ...base, summary: 'Brand 🔥' })).toBe(false);
    expect(verbatim({ ...base, location: { name: 'a\u001f', gps: '1,2' } })).toBe(false);
    expect(verbatim({ ...base, type: 7 })).toBe(false);
    expect(verbatim({ ...base, summary: null })).toBe(false);
    expect(verbatim({ ...base, extra: 'x' })).toBe(false);
    expect(verbatim({ ...base, location: { gps: '1,2', name: 'a' } })).toBe(false);
  });

  it.skipIf(!replayFileAvailable())(
    'every event version of the recorded year, fingerprinted or not',
    async () => {
      const replay = await loadReplay();
      for (const raw of replay.versions) {
        const [event] = validateFeed([raw]).events;
        expect(eventLine(event!)).toBe(JSON.stringify(raw));
        fingerprintFeedEvent(event!, true);
        expect(eventLine(event!)).toBe(JSON.stringify(raw));
      }
    },
  );
  if (!replayFileAvailable()) console.warn(REPLAY_SKIP_REASON);
});
