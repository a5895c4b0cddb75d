import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { parseEventDatetime, utcDatePath } from '../../src/core/event-datetime.js';

const REPLAY_FILE = fileURLToPath(
  new URL('../../../shared/data/polisen-replay-2023.jsonl.gz', import.meta.url),
);
const replayAvailable = existsSync(REPLAY_FILE);
if (!replayAvailable)
  console.warn(`replay file not found at ${REPLAY_FILE}; replay-based datetime tests skipped`);

/**
 * The expected value, computed independently: rewrite the feed's form as ISO 8601 (two-digit hour,
 * `T`, offset kept) and let Date.parse do the arithmetic.
 */
function expectedUnix(feedValue: string): number {
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{1,2})(:\d{2}:\d{2}) ([+-]\d{2}:\d{2})$/.exec(feedValue);
  if (!m) throw new Error(`test helper cannot rewrite ${feedValue}`);
  const ms = Date.parse(`${m[1]}T${m[2]!.padStart(2, '0')}${m[3]}${m[4]}`);
  if (Number.isNaN(ms)) throw new Error(`Date.parse rejected the rewrite of ${feedValue}`);
  return ms / 1000;
}

function parsed(value: string) {
  const time = parseEventDatetime(value);
  if (time === undefined) throw new Error(`expected ${JSON.stringify(value)} to parse`);
  return time;
}

describe('parseEventDatetime: the two forms the API sends', () => {
  it.each([
    ['2023-08-09 9:05:01 +02:00', '2023/08/09'],
    ['2023-08-09 11:31:33 +02:00', '2023/08/09'],
    ['2023-01-15 0:00:00 +01:00', '2023/01/15'],
    ['2024-02-29 23:59:59 +01:00', '2024/02/29'],
  ])('%s', (value, datePath) => {
    const time = parsed(value);
    expect(time.unixSeconds).toBe(expectedUnix(value));
    expect(Number.isInteger(time.unixSeconds)).toBe(true);
    expect(time.datePath).toBe(datePath);
  });

  it('one-digit and two-digit hours of the same moment agree', () => {
    expect(parsed('2023-08-09 9:05:01 +02:00').unixSeconds).toBe(
      parsed('2023-08-09 09:05:01 +02:00').unixSeconds,
    );
    // 9:05:01 +02:00 is 07:05:01Z.
    expect(parsed('2023-08-09 9:05:01 +02:00').unixSeconds).toBe(Date.UTC(2023, 7, 9, 7, 5, 1) / 1000);
  });
});

describe('parseEventDatetime: the partition date is the local date the value carries', () => {
  it('the last second of 2023 in Swedish time stays in 2023/12/31 although it is 22:59:59Z', () => {
    const time = parsed('2023-12-31 23:59:59 +01:00');
    expect(time.datePath).toBe('2023/12/31');
    expect(time.unixSeconds).toBe(Date.UTC(2023, 11, 31, 22, 59, 59) / 1000);
  });

  it('midnight of 2024 in Swedish time is 2024/01/01 although it is 2023-12-31T23:00Z', () => {
    const time = parsed('2024-01-01 00:00:00 +01:00');
    expect(time.datePath).toBe('2024/01/01');
    expect(time.unixSeconds).toBe(Date.UTC(2023, 11, 31, 23, 0, 0) / 1000);
    expect(new Date(time.unixSeconds * 1000).toISOString()).toBe('2023-12-31T23:00:00.000Z');
  });

  it('spring forward (2023-03-26): 01:59:59 +01:00 and 03:00:00 +02:00 are one second apart, same date', () => {
    const before = parsed('2023-03-26 01:59:59 +01:00');
    const after = parsed('2023-03-26 03:00:00 +02:00');
    expect(after.unixSeconds - before.unixSeconds).toBe(1);
    expect(before.datePath).toBe('2023/03/26');
    expect(after.datePath).toBe('2023/03/26');
  });

  it('fall back (2023-10-29): 02:30:00 +02:00 and 02:30:00 +01:00 are 3600 s apart, same date', () => {
    const first = parsed('2023-10-29 02:30:00 +02:00');
    const second = parsed('2023-10-29 02:30:00 +01:00');
    expect(second.unixSeconds - first.unixSeconds).toBe(3600);
    expect(first.datePath).toBe('2023/10/29');
    expect(second.datePath).toBe('2023/10/29');
  });

  it('a negative offset moves the instant later, not the date', () => {
    const time = parsed('2023-06-01 22:00:00 -05:00');
    expect(time.datePath).toBe('2023/06/01');
    expect(time.unixSeconds).toBe(Date.UTC(2023, 5, 2, 3, 0, 0) / 1000);
  });
});

describe('parseEventDatetime: the arithmetic agrees with Date.UTC', () => {
  const pad = (n: number, width: number) => String(n).padStart(width, '0');
  /** What the parser computed before it did the arithmetic itself: Date.UTC, less the offset. */
  const viaDateUtc = (y: number, mo: number, d: number, h: number, mi: number, s: number, off: number) =>
    Math.floor((Date.UTC(y, mo - 1, d, h, mi, s) - off * 60_000) / 1000);

  it('every day from 1900 to 2100, at varying times and offsets', () => {
    let checked = 0;
    for (let ms = Date.UTC(1900, 0, 1); ms <= Date.UTC(2100, 11, 31); ms += 86_400_000) {
      const date = new Date(ms);
      const [y, mo, d] = [date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate()];
      const h = checked % 24;
      const mi = (checked * 7) % 60;
      const s = (checked * 13) % 60;
      const off = [60, 120, -300, 0, 840, -840][checked % 6]!;
      const sign = off < 0 ? '-' : '+';
      const value = `${pad(y, 4)}-${pad(mo, 2)}-${pad(d, 2)} ${h}:${pad(mi, 2)}:${pad(s, 2)} ${sign}${pad(Math.floor(Math.abs(off) / 60), 2)}:${pad(Math.abs(off) % 60, 2)}`;
      const time = parsed(value);
      if (
        time.unixSeconds !== viaDateUtc(y, mo, d, h, mi, s, off) ||
        time.datePath !== value.slice(0, 10).replaceAll('-', '/')
      )
        throw new Error(`${value}: ${JSON.stringify(time)}`);
      checked++;
    }
    expect(checked).toBe(73_414);
  });

  it.each([
    ['0000-01-01 00:00:00 +00:00', 0, 1, 1],
    ['0023-08-09 11:31:33 +02:00', 23, 8, 9],
    ['0099-12-31 23:59:59 +01:00', 99, 12, 31],
    ['0100-03-01 0:00:00 +01:00', 100, 3, 1],
    ['0400-02-29 12:00:00 +01:00', 400, 2, 29],
    ['1600-02-29 12:00:00 +01:00', 1600, 2, 29],
    ['9999-12-31 23:59:59 -14:00', 9999, 12, 31],
    ['2023-08-09T11:31:33.250+0200', 2023, 8, 9],
  ])('%s, as Date.UTC reads it (years 0-99 as 1900-1999)', (value, y, mo, d) => {
    const m = /(\d{1,2}):(\d{2}):(\d{2})(?:\.\d+)? ?([+-])(\d{2}):?(\d{2})$/.exec(value)!;
    const off = (m[4] === '-' ? -1 : 1) * (Number(m[5]) * 60 + Number(m[6]));
    const time = parsed(value);
    expect(time.unixSeconds).toBe(viaDateUtc(y, mo, d, Number(m[1]), Number(m[2]), Number(m[3]), off));
    expect(time.datePath).toBe(`${pad(y, 4)}/${pad(mo, 2)}/${pad(d, 2)}`);
  });
});

describe('parseEventDatetime: invalid values give undefined', () => {
  it.each([
    ['month 13', '2023-13-01 10:00:00 +01:00'],
    ['month 0', '2023-00-01 10:00:00 +01:00'],
    ['Feb 30', '2023-02-30 10:00:00 +01:00'],
    ['Feb 29 in a common year', '2023-02-29 10:00:00 +01:00'],
    ['April 31', '2023-04-31 10:00:00 +02:00'],
    ['day 0', '2023-04-00 10:00:00 +02:00'],
    ['24:00:00', '2023-08-09 24:00:00 +02:00'],
    ['minute 60', '2023-08-09 10:60:00 +02:00'],
    ['second 60', '2023-08-09 10:00:60 +02:00'],
    ['missing offset', '2023-08-09 11:31:33'],
    ['missing time', '2023-08-09 +02:00'],
    ['three-digit hour', '2023-08-09 111:31:33 +02:00'],
    ['garbage', 'yesterday afternoon'],
    ['empty string', ''],
    ['trailing text', '2023-08-09 11:31:33 +02:00 CEST'],
  ])('%s: %s', (_label, value) => {
    expect(parseEventDatetime(value)).toBeUndefined();
  });

  it.each([
    ['number', 1691573493],
    ['null', null],
    ['undefined', undefined],
    ['Date', new Date('2023-08-09T09:31:33Z')],
    ['object', { datetime: '2023-08-09 11:31:33 +02:00' }],
    ['array', ['2023-08-09 11:31:33 +02:00']],
  ])('non-string %s', (_label, value) => {
    expect(parseEventDatetime(value)).toBeUndefined();
  });
});

describe('utcDatePath', () => {
  it('is the UTC date, whatever the local time zone', () => {
    expect(utcDatePath(new Date('2023-12-31T23:30:00Z'))).toBe('2023/12/31');
    expect(utcDatePath(new Date('2024-01-01T00:00:00Z'))).toBe('2024/01/01');
    expect(utcDatePath(new Date('2024-01-01T00:30:00+01:00'))).toBe('2023/12/31');
  });
});

describe('parseEventDatetime on the recorded feed', () => {
  it.skipIf(!replayAvailable)(
    'parses every datetime of every version; about 35 % have a one-digit hour',
    () => {
      const text = gunzipSync(readFileSync(REPLAY_FILE)).toString('utf8');
      let versions = 0;
      let oneDigitHour = 0;
      const unparsed: string[] = [];
      const mismatched: string[] = [];
      for (const line of text.split('\n')) {
        if (!line.startsWith('{"kind":"version"')) continue;
        const { event } = JSON.parse(line) as { event: { datetime: string } };
        versions++;
        const value = event.datetime;
        const time = parseEventDatetime(value);
        if (time === undefined) {
          unparsed.push(value);
          continue;
        }
        if (/^\d{4}-\d{2}-\d{2} \d:/.test(value)) oneDigitHour++;
        if (
          time.unixSeconds !== expectedUnix(value) ||
          time.datePath !== value.slice(0, 10).replaceAll('-', '/')
        )
          mismatched.push(value);
      }
      // The README's count of distinct versions; guards against reading the file wrongly.
      expect(versions).toBe(26_928);
      expect(unparsed.slice(0, 5)).toEqual([]);
      expect(mismatched.slice(0, 5)).toEqual([]);
      const share = oneDigitHour / versions;
      expect(share).toBeGreaterThan(0.3);
      expect(share).toBeLessThan(0.4);
    },
  );
});
