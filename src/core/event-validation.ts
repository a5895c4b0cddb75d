/**
 * Validates the elements of one feed response. Nothing is dropped silently: an element that
 * cannot be stored under its id and date goes to quarantine with the reason.
 */
import { type EventTime, parseEventDatetime } from './event-datetime.js';
import { canonicalJson, EVENT_KEYS, keysAre, LOCATION_KEYS } from './fingerprint.js';

export interface FeedEvent {
  id: number;
  /** The element as the API sent it (parsed). */
  raw: Record<string, unknown>;
  time: EventTime;
  /**
   * Whether `raw` is in the API's shape with every string one JSON writes as it is (see eventLine),
   * when known: fingerprintFeedEvent notes it for events that are written; undefined until then.
   */
  verbatim: boolean | undefined;
}

/**
 * A string JSON.stringify writes as is, between quotes: no quote, backslash, control character or
 * surrogate (a lone surrogate is escaped; a pair would not be, but is rare enough to leave to it).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it excludes.
const VERBATIM = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

function verbatim(value: unknown): value is string {
  return typeof value === 'string' && VERBATIM.test(value);
}

/** Whether an event that was not fingerprinted can be written from the template (see eventLine). */
function isVerbatim(e: Record<string, unknown>): boolean {
  const { id, datetime, name, summary, url, type, location } = e;
  if (typeof id !== 'number' || location === null || typeof location !== 'object' || Array.isArray(location))
    return false;
  const l = location as Record<string, unknown>;
  return (
    verbatim(datetime) &&
    verbatim(name) &&
    verbatim(summary) &&
    verbatim(url) &&
    verbatim(type) &&
    verbatim(l.name) &&
    verbatim(l.gps) &&
    keysAre(e, EVENT_KEYS) &&
    keysAre(l, LOCATION_KEYS)
  );
}

/**
 * The event as one JSONL line: the object as sent, UTF-8, nothing escaped that JSON does not require.
 * Computed only for events that are written (most of a response is already stored).
 *
 * An event in the API's own shape whose strings need no escaping (nearly all) is written from a
 * template, which yields the same text as JSON.stringify at about a third of its cost; any other is left
 * to JSON.stringify.
 */
export function eventLine(event: FeedEvent): string {
  const e = event.raw;
  if (!(event.verbatim ?? isVerbatim(e))) return JSON.stringify(e);
  const l = e.location as Record<string, unknown>;
  return `{"id":${e.id},"datetime":"${e.datetime}","name":"${e.name}","summary":"${e.summary}","url":"${e.url}","type":"${e.type}","location":{"name":"${l.name}","gps":"${l.gps}"}}`;
}

export interface QuarantinedElement {
  /** Position in the response. */
  index: number;
  line: string;
  reason: string;
}

export interface ValidatedFeed {
  events: FeedEvent[];
  /** The ids of `events`: ids still in the feed are never trimmed from seen_ids. */
  ids: ReadonlySet<number>;
  quarantined: QuarantinedElement[];
  /** Elements repeated verbatim within one response (kept once). */
  repeatedInResponse: number;
}

export function validateFeed(elements: readonly unknown[]): ValidatedFeed {
  const events: FeedEvent[] = [];
  const quarantined: QuarantinedElement[] = [];
  const byId = new Map<number, FeedEvent>();
  let repeatedInResponse = 0;
  for (let index = 0; index < elements.length; index++) {
    const element = elements[index];
    let reason: string | undefined;
    if (element === null || typeof element !== 'object' || Array.isArray(element)) {
      reason = 'element is not a JSON object';
    } else {
      const raw = element as Record<string, unknown>;
      const id = raw.id;
      const time =
        typeof id === 'number' && Number.isSafeInteger(id) && id > 0
          ? parseEventDatetime(raw.datetime)
          : undefined;
      if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0)
        reason = 'missing or non-integer "id"';
      else if (!time) reason = `unparseable "datetime" in event ${id}`;
      else {
        const earlier = byId.get(id);
        if (!earlier) {
          const event: FeedEvent = { id, raw, time, verbatim: undefined };
          byId.set(id, event);
          events.push(event);
          continue;
        }
        // Same content (key order aside) is a repeat; different content under one id cannot be stored as one event.
        if (canonicalJson(earlier.raw) === canonicalJson(raw)) {
          repeatedInResponse++;
          continue;
        }
        reason = `event ${id} appears twice in one response with different content`;
      }
    }
    quarantined.push({ index, line: JSON.stringify(element) ?? 'null', reason });
  }
  return { events, ids: new Set(byId.keys()), quarantined, repeatedInResponse };
}
