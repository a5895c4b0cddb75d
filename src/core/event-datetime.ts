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

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

export function parseEventDatetime(value: unknown): EventTime | undefined {
  if (typeof value !== 'string') return undefined;
  const m = DATETIME.exec(value.trim());
  if (!m) return undefined;
  const [, ys, mos, ds, hs, mis, ss, sign, ohs, oms] = m as unknown as string[];
  const year = Number(ys);
  const month = Number(mos);
  const day = Number(ds);
  const hour = Number(hs);
  const minute = Number(mis);
  const second = Number(ss);
  const offsetMinutes = (sign === '-' ? -1 : 1) * (Number(ohs) * 60 + Number(oms));
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59 || Math.abs(offsetMinutes) > 14 * 60) return undefined;
  const utcMs = Date.UTC(year, month - 1, day, hour, minute, second) - offsetMinutes * 60_000;
  return { unixSeconds: Math.floor(utcMs / 1000), datePath: `${ys}/${mos}/${ds}` };
}

/** `YYYY/MM/DD` of a moment in UTC (used for the run date of quarantine objects). */
export function utcDatePath(date: Date): string {
  return date.toISOString().slice(0, 10).replaceAll('-', '/');
}
