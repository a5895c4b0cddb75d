/**
 * Which requests a run makes, and in how many sequential round trips: every request the three servers
 * receive is recorded with its arrival time, and with every answer delayed by D a request is one step
 * after another when it arrived after that one was answered (arrival + D). The longest such chain is
 * the number of round trips on the critical path.
 */
import type { Rig } from './rig.js';

export interface Arrival {
  at: number;
  label: string;
}

export interface Recorder {
  /** Forgets what was recorded (call before each run). */
  clear(): void;
  arrivals(): Arrival[];
}

const METADATA = 'metadata/last_seen.json';

function ociLabel(method: string, target: string): string {
  const url = new URL(target, 'http://x');
  const parts = url.pathname.split('/').slice(1);
  if (parts.length <= 2) return `store ${method} namespace`;
  if (parts.length === 5) return 'store list';
  const name = decodeURIComponent(parts.slice(5).join('/'));
  if (name.endsWith(METADATA)) return method === 'PUT' ? 'store put (metadata)' : 'store get';
  return method === 'PUT' ? 'store put (object)' : `store ${method.toLowerCase()} (object)`;
}

/** Hooks the servers' request logs; the test servers are not modified, only observed. */
export function recordArrivals(rig: Rig): Recorder {
  let arrivals: Arrival[] = [];
  const observe = <T>(list: T[], label: (item: T) => string) => {
    const push = list.push.bind(list);
    // The servers append each request on arrival; a wrapped push stamps it (Date.now, as the feed server).
    list.push = (...items: T[]) => {
      for (const item of items) arrivals.push({ at: Date.now(), label: label(item) });
      return push(...items);
    };
  };
  observe(rig.feed.requests, () => 'feed GET');
  observe(rig.vault.requests, (r) => (r.path.includes('/auth/approle/login') ? 'vault login' : 'vault read'));
  // The OCI server appends when it answers; its onRequest hook runs on arrival, before the delay.
  rig.oci.faults.onRequest = (r) => {
    arrivals.push({ at: Date.now(), label: ociLabel(r.method, r.path) });
  };
  return {
    clear() {
      arrivals = [];
    },
    arrivals: () => [...arrivals].sort((a, b) => a.at - b.at),
  };
}

export interface CriticalPath {
  /** Requests by step: steps[0] are those that waited for no answer. */
  steps: string[][];
  /**
   * e.g. `feed GET ‖ store get ‖ 3× store list @0 → 2× store put (object) @104 → store put (metadata) @209`:
   * the steps, each with the ms from the run's first request to its own first request.
   */
  text: string;
}

export function criticalPath(arrivals: readonly Arrival[], delayMs: number): CriticalPath {
  // Clock steps of 1 ms and the time to send a request after reading an answer are far below D.
  const answeredBy = (a: Arrival) => a.at + delayMs * 0.9;
  const depth: number[] = [];
  arrivals.forEach((a, i) => {
    let d = 1;
    for (let j = 0; j < i; j++) if (answeredBy(arrivals[j]!) <= a.at) d = Math.max(d, depth[j]! + 1);
    depth.push(d);
  });
  const steps: string[][] = [];
  const startedAt: number[] = [];
  arrivals.forEach((a, i) => {
    const step = depth[i]! - 1;
    steps[step] ??= [];
    steps[step].push(a.label);
    startedAt[step] = Math.min(startedAt[step] ?? a.at, a.at);
  });
  const first = arrivals[0]?.at ?? 0;
  const describe = (labels: string[], step: number) => {
    const counts = new Map<string, number>();
    for (const l of labels) counts.set(l, (counts.get(l) ?? 0) + 1);
    const what = [...counts].map(([l, n]) => (n > 1 ? `${n}× ${l}` : l)).join(' ‖ ');
    return `${what} @${startedAt[step]! - first}`;
  };
  return { steps, text: steps.map(describe).join(' → ') };
}
