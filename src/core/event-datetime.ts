/**
 * Parses the feed's `datetime`, e.g. `2023-08-09 11:31:33 +02:00` and, as the API also sends,
 * `2023-08-09 9:05:01 +02:00` (one-digit hour). The partition date is the calendar date in the
 * offset the value carries (Swedish local time), so it is taken from the text, not from UTC.
 */

export interface EventTime {
  /** Seconds since the Unix epoch. */
  unixSeconds: number;
  /** `YYYY/MM/DD` in the offset the value carries: the partition directory. */
  datePath: string;
}

const DATETIME = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{1,2}):(\d{2}):(\d{2})(?:\.\d+)? ?([+-])(\d{2}):?(\d{2})$/;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  if (month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)) return 29;
  return DAYS_IN_MONTH[month - 1]!;
}

/** Digits at text[from, from+count) as a number, or -1. Hand-rolled: this runs on every event of every response. */
function digits(text: string, from: number, count: number): number {
  let n = 0;
  for (let i = from; i < from + count; i++) {
    const c = text.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}

/** The fast path for the API's own form, `YYYY-MM-DD H:MM:SS +HH:MM` (one- or two-digit hour). */
function parseApiForm(text: string): EventTime | undefined {
  if (text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45 || text.charCodeAt(10) !== 32) return undefined;
  const hourDigits = text.charCodeAt(12) === 58 ? 1 : 2;
  const t = 11 + hourDigits; // index of the ':' after the hour
  if (text.length !== t + 13 || text.charCodeAt(t) !== 58 || text.charCodeAt(t + 3) !== 58) return undefined;
  if (text.charCodeAt(t + 6) !== 32 || text.charCodeAt(t + 10) !== 58) return undefined;
  const sign = text.charCodeAt(t + 7);
  if (sign !== 43 && sign !== 45) return undefined;
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 2);
  const day = digits(text, 8, 2);
  const hour = digits(text, 11, hourDigits);
  const minute = digits(text, t + 1, 2);
  const second = digits(text, t + 4, 2);
  const offsetHours = digits(text, t + 8, 2);
  const offsetMins = digits(text, t + 11, 2);
  if ((year | month | day | hour | minute | second | offsetHours | offsetMins) < 0) return undefined;
  return build(
    year,
    month,
    day,
    hour,
    minute,
    second,
    (sign === 45 ? -1 : 1) * (offsetHours * 60 + offsetMins),
  );
}

/**
 * Days from 1970-01-01 to a proleptic Gregorian date, year 0 or later (H. Hinnant's days_from_civil):
 * integer arithmetic, where Date.UTC is a call into the runtime for every event of every response.
 * The year is shifted by one 400-year era so that every quotient is positive (truncation = floor).
 */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = (month <= 2 ? year - 1 : year) + 400;
  const era = (y / 400) | 0;
  const yearOfEra = y - era * 400;
  const dayOfYear = (((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) | 0) + day - 1;
  const dayOfEra = yearOfEra * 365 + ((yearOfEra / 4) | 0) - ((yearOfEra / 100) | 0) + dayOfYear;
  return (era - 1) * 146_097 + dayOfEra - 719_468;
}

/** Two decimal digits' character codes, for building the date path in one allocation. */
const tens = (n: number) => 48 + ((n / 10) | 0);
const ones = (n: number) => 48 + (n % 10);

function build(
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
  offsetMinutes: number,
): EventTime | undefined {
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59 || Math.abs(offsetMinutes) > 14 * 60) return undefined;
  // As Date.UTC, which this replaced, reads years 0-99 as 1900-1999 (the values stored so far).
  const days = daysFromCivil(year <= 99 ? 1900 + year : year, month, day);
  const century = Math.floor(year / 100);
  return {
    unixSeconds: days * 86_400 + hour * 3600 + minute * 60 + second - offsetMinutes * 60,
    // The digits as the value carries them (YYYY/MM/DD).
    datePath: String.fromCharCode(
      tens(century),
      ones(century),
      tens(year % 100),
      ones(year % 100),
      47,
      tens(month),
      ones(month),
      47,
      tens(day),
      ones(day),
    ),
  };
}

export function parseEventDatetime(value: unknown): EventTime | undefined {
  if (typeof value !== 'string') return undefined;
  const fast = parseApiForm(value);
  if (fast) return fast;
  // Other ISO-like forms (a 'T', fractional seconds, +0100): rare, so a regular expression will do.
  const text = value.trim();
  const m = DATETIME.exec(text);
  if (!m) return undefined;
  const [, , mos, ds, hs, mis, ss, sign, ohs, oms] = m as unknown as string[];
  const offset = (sign === '-' ? -1 : 1) * (Number(ohs) * 60 + Number(oms));
  return build(Number(m[1]), Number(mos), Number(ds), Number(hs), Number(mis), Number(ss), offset);
}

/** `YYYY/MM/DD` of a moment in UTC (used for the run date of quarantine objects). */
export function utcDatePath(date: Date): string {
  return date.toISOString().slice(0, 10).replaceAll('-', '/');
}
