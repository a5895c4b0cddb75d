/**
 * The pure part of `backfill`: which days a range holds, which of them are done, and when a day must be
 * fetched hour by hour. No I/O, no clock: "today" is passed in.
 *
 * The API answers `?DateTime=YYYY-MM-DD` with at most 500 events (its cap for every query), so a day that
 * returns 500 may be cut short; it is then fetched again as 24 queries `?DateTime=YYYY-MM-DD HH`.
 * Units are done in order: the days of the range, and within a split day its hours.
 */

/** The most events the API returns for one query. */
export const API_EVENT_CAP = 500;
export const HOURS_PER_DAY = 24;
/** Dates are Swedish calendar dates: the API's DateTime filter and the events' datetimes are local time. */
export const API_TIME_ZONE = 'Europe/Stockholm';

/** One query: a whole day, or one hour of it. */
export interface BackfillUnit {
  /** YYYY-MM-DD */
  day: string;
  /** 0–23; undefined for the whole day. */
  hour?: number;
}

/** What is done, as saved in the state directory. Days in range order, hours ascending. */
export interface BackfillProgress {
  /** Days whose events are all stored (in a closed day: it will get no new events). */
  doneDays: string[];
  /** Days that returned the API's cap and are being fetched hour by hour: the hours done so far. */
  splitDays: Record<string, number[]>;
}

const ISO_DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
const DAY_MS = 86_400_000;

/** Whether `value` is a real calendar date written YYYY-MM-DD (2024-02-30 is not). */
export function isCalendarDay(value: string): boolean {
  const m = ISO_DAY.exec(value);
  if (!m) return false;
  const date = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return date.toISOString().slice(0, 10) === value;
}

/** The calendar date of `now` in `timeZone`, as YYYY-MM-DD. */
export function dayInTimeZone(now: Date, timeZone: string = API_TIME_ZONE): string {
  // sv-SE formats dates as YYYY-MM-DD.
  return new Intl.DateTimeFormat('sv-SE', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(now);
}

/**
 * Problems with a requested range, one line each (empty when it is fine). `today` is YYYY-MM-DD.
 * A day after today cannot be backfilled: the API has nothing for it yet.
 */
export function validateRange(from: string, to: string, today: string): string[] {
  const problems: string[] = [];
  if (!isCalendarDay(from)) problems.push(`--from ${from} is not a calendar date (YYYY-MM-DD)`);
  if (!isCalendarDay(to)) problems.push(`--to ${to} is not a calendar date (YYYY-MM-DD)`);
  if (problems.length > 0) return problems;
  const future = (flag: string, day: string) =>
    `--${flag} ${day} is in the future (today is ${today} in Sweden); the API has no events for it yet`;
  if (from > today) problems.push(future('from', from));
  else if (to > today) problems.push(future('to', to));
  else if (from > to) problems.push(`--from ${from} is after --to ${to}; give the earlier day first`);
  return problems;
}

/** Every day from `from` to `to`, both included, in order. Both must be calendar days with from ≤ to. */
export function daysInRange(from: string, to: string): string[] {
  const start = Date.parse(`${from}T00:00:00Z`);
  const end = Date.parse(`${to}T00:00:00Z`);
  const days: string[] = [];
  for (let t = start; t <= end; t += DAY_MS) days.push(new Date(t).toISOString().slice(0, 10));
  return days;
}

/** The API's DateTime value for a unit: `YYYY-MM-DD` or `YYYY-MM-DD HH`. */
export function unitQuery(unit: BackfillUnit): string {
  return unit.hour === undefined ? unit.day : `${unit.day} ${String(unit.hour).padStart(2, '0')}`;
}

/** Whether a response of `eventCount` events may be cut short by the API's cap. */
export function isTruncated(eventCount: number): boolean {
  return eventCount >= API_EVENT_CAP;
}

/** A day before today is closed: no more events will be published for it, so "done" is final. */
export function isClosedDay(day: string, today: string): boolean {
  return day < today;
}

export function emptyProgress(): BackfillProgress {
  return { doneDays: [], splitDays: {} };
}

export function isDayDone(progress: BackfillProgress, day: string): boolean {
  return progress.doneDays.includes(day);
}

export function isDaySplit(progress: BackfillProgress, day: string): boolean {
  return progress.splitDays[day] !== undefined;
}

/** The hours of a split day still to fetch, in order. */
export function hoursToDo(progress: BackfillProgress, day: string): number[] {
  const done = new Set(progress.splitDays[day] ?? []);
  return Array.from({ length: HOURS_PER_DAY }, (_, h) => h).filter((h) => !done.has(h));
}

/**
 * The progress after a whole-day query of `day` returned `eventCount` events: split into hours when the
 * answer hit the cap; done when it did not and the day is closed; unchanged otherwise (today stays open).
 */
export function afterDayFetched(
  progress: BackfillProgress,
  day: string,
  eventCount: number,
  today: string,
): BackfillProgress {
  if (isTruncated(eventCount)) return { ...progress, splitDays: { ...progress.splitDays, [day]: [] } };
  return isClosedDay(day, today) ? markDayDone(progress, day) : progress;
}

/**
 * The progress after an hour of a split day was stored. Hours of an open day are not recorded (more
 * events may come); when the last hour of a closed day is recorded the day becomes done.
 */
export function afterHourFetched(
  progress: BackfillProgress,
  day: string,
  hour: number,
  today: string,
): BackfillProgress {
  if (!isClosedDay(day, today)) return progress;
  const hours = [...new Set([...(progress.splitDays[day] ?? []), hour])].sort((a, b) => a - b);
  if (hours.length >= HOURS_PER_DAY) return markDayDone(progress, day);
  return { ...progress, splitDays: { ...progress.splitDays, [day]: hours } };
}

function markDayDone(progress: BackfillProgress, day: string): BackfillProgress {
  const { [day]: _finished, ...splitDays } = progress.splitDays;
  const doneDays = progress.doneDays.includes(day) ? progress.doneDays : [...progress.doneDays, day].sort();
  return { doneDays, splitDays };
}

/** Days of `days` that are done. */
export function countDone(progress: BackfillProgress, days: readonly string[]): number {
  const done = new Set(progress.doneDays);
  return days.filter((d) => done.has(d)).length;
}
