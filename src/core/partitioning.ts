/**
 * Groups events into date-partitioned JSONL objects, the Python collector's layout:
 * `events/YYYY/MM/DD/events-<unix seconds>.jsonl`, one raw event object per line.
 */
import { eventLine, type FeedEvent } from './event-validation.js';

export interface Partition {
  name: string;
  datePath: string;
  events: FeedEvent[];
  body: string;
}

export function objectName(prefix: string, kind: string, datePath: string, unix: number): string {
  return `${prefix}${kind}/${datePath}/${kind}-${unix}.jsonl`;
}

export function toJsonl(lines: readonly string[]): string {
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/** One partition per calendar date of the events' own datetime, in feed order within each. */
export function partitionEvents(
  events: readonly FeedEvent[],
  prefix: string,
  kind: 'events' | 'updates',
  unix: number,
): Partition[] {
  const groups = new Map<string, FeedEvent[]>();
  for (const event of events) {
    const group = groups.get(event.time.datePath);
    if (group) group.push(event);
    else groups.set(event.time.datePath, [event]);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([datePath, group]) => ({
      name: objectName(prefix, kind, datePath, unix),
      datePath,
      events: group,
      body: toJsonl(group.map(eventLine)),
    }));
}

/** The date directory an object name belongs to (`YYYY/MM/DD`), or undefined for other names. */
export function datePathOfObject(name: string): string | undefined {
  const m = /(?:^|\/)(?:events|updates|quarantine)\/(\d{4}\/\d{2}\/\d{2})\/[^/]+$/.exec(name);
  return m?.[1];
}
