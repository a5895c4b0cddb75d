/**
 * The runs the benchmark times, built from one real response of the recorded file: `full` (500 events)
 * and `base`, the same response without a few events of its two newest dates. A store that has
 * collected `base` gets, from `full`, new events in exactly two date partitions.
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

function responseEvents(replay: Replay, versions: readonly number[]): unknown[] {
  return versions.map((v) => replay.versions[v]);
}

export function buildScenario(replay: Replay): Scenario {
  // The last full-size response: the feed as it usually is.
  const response = replay.responses.findLast((r) => r.versions?.length === 500);
  if (response?.versions === undefined) throw new Error('the replay file holds no 500-event response');
  const full = responseEvents(replay, response.versions);
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
