/**
 * The runs the benchmark times, built from one real response of the recorded file: `full` (500 events)
 * and `base`, the same response without a few events of its two newest dates. A store that has
 * collected `base` gets, from `full`, new events in exactly two date partitions.
 *
 * The response is served as if it were live today: every event's date moves forward by the whole days
 * between its recording and now (time of day and offset kept). A collector writes today's events
 * without declaring their partitions; dated 2024, they would all be old events outside its window.
 */
import { parseEventDatetime } from '../../src/core/event-datetime.js';
import type { Replay } from '../../test/support/replay-file.js';

/** Events taken out of each of the two newest dates: a typical half-hour's worth in all. */
const REMOVED_PER_DATE = 3;

export interface Scenario {
  /** Index of the response in the recorded file. */
  responseIndex: number;
  full: unknown[];
  base: unknown[];
  /** The ids `full` adds to a store that holds `base`. */
  newIds: number[];
  /** The two partition dates (YYYY/MM/DD) the new events fall in. */
  dates: string[];
}

const DAY_MS = 86_400_000;

/** `YYYY-MM-DD rest` with the date moved by `days`. */
function shiftDatetime(datetime: string, days: number): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})(.*)$/s.exec(datetime);
  if (!m) return datetime;
  const date = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) + days * DAY_MS);
  return `${date.toISOString().slice(0, 10)}${m[4]}`;
}

function responseEvents(replay: Replay, versions: readonly number[], days: number): unknown[] {
  return versions.map((v) => {
    const event = replay.versions[v] as Record<string, unknown>;
    return typeof event.datetime === 'string'
      ? { ...event, datetime: shiftDatetime(event.datetime, days) }
      : event;
  });
}

export function buildScenario(replay: Replay): Scenario {
  // The last full-size response: the feed as it usually is.
  const response = replay.responses.findLast((r) => r.versions?.length === 500);
  if (response?.versions === undefined) throw new Error('the replay file holds no 500-event response');
  const days = Math.floor((Date.now() - Date.parse(response.at)) / DAY_MS);
  const full = responseEvents(replay, response.versions, days);
  const byDate = new Map<string, { id: number; index: number }[]>();
  full.forEach((event, index) => {
    const e = event as { id: number; datetime: unknown };
    const time = parseEventDatetime(e.datetime);
    if (!time) throw new Error(`response ${response.i}: event ${e.id} has an unparseable datetime`);
    const list = byDate.get(time.datePath) ?? [];
    list.push({ id: e.id, index });
    byDate.set(time.datePath, list);
  });
  const dates = [...byDate.keys()].sort().reverse().slice(0, 2);
  if (dates.length < 2) throw new Error(`response ${response.i} spans fewer than two dates`);
  const removed = new Set<number>();
  for (const date of dates) {
    const newest = [...byDate.get(date)!].sort((a, b) => b.id - a.id).slice(0, REMOVED_PER_DATE);
    for (const { index } of newest) removed.add(index);
  }
  return {
    responseIndex: response.i,
    full,
    base: full.filter((_, index) => !removed.has(index)),
    newIds: [...removed].map((index) => (full[index] as { id: number }).id),
    dates,
  };
}
