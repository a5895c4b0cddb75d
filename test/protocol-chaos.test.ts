/**
 * The commit protocol under chaos, in process: up to three runs of `runCollect` at once on one real
 * local store, each dying at a random store operation (the operation fails and so does every later
 * one, while those already sent complete, as a killed process's requests do), with random delays that
 * reorder the runs' operations. The feed evolves like the real one: new events, edits, old events
 * coming back with old dates (partitions declared first), malformed elements. After the chaos one
 * clean run sees every event; then, read without the collector's code: every id once in events/,
 * nothing unrecorded, no revision twice, and the newest version of every event is its current content.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { fingerprintEvent } from '../src/core/fingerprint.js';
import { DEFAULT_COLLECT_OPTIONS, runCollect } from '../src/run/collect-run.js';
import { LocalStore } from '../src/store/local-store.js';
import type { ObjectStore } from '../src/store/object-store.js';
import { prng } from './support/prng.js';
import { census, duplicates, localObjects } from './support/store-contents.js';
import { syntheticEvent } from './support/store-fixtures.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

class Died extends Error {}

const options = { ...DEFAULT_COLLECT_OPTIONS, dryRun: false, maxSeenIds: 1000, revisions: true, prefix: '' };
const logger = pino({ level: 'silent' });

function freshStore(prefix: string): { dir: string; store: LocalStore } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(dir);
  return { dir, store: new LocalStore(dir) };
}

/** The store as one run sees it: delayed at random, and dead from its `dieAt`-th operation on. */
function chaoticStore(store: ObjectStore, random: () => number, dieAt: number): ObjectStore {
  let count = 0;
  const step = async <T>(fn: () => Promise<T>): Promise<T> => {
    count++;
    if (count >= dieAt) throw new Died(`died at operation ${count}`);
    await new Promise((r) => setTimeout(r, Math.floor(random() * 4)));
    return fn();
  };
  return {
    description: store.description,
    get: (name, options) => step(() => store.get(name, options)),
    put: (name, body, options) => step(() => store.put(name, body, options)),
    list: (prefix, options) => step(() => store.list(prefix, options)),
    delete: (name, options) => step(() => store.delete(name, options)),
  };
}

const HOUR = 3_600_000;

/** `YYYY-MM-DD H:MM:SS +01:00` for a moment (as the API writes it, Swedish winter time). */
function apiDatetime(ms: number): string {
  const local = new Date(ms + HOUR);
  const [date, time] = local.toISOString().split('T') as [string, string];
  return `${date} ${Number(time.slice(0, 2))}:${time.slice(3, 8)} +01:00`;
}

interface World {
  events: Map<number, Record<string, unknown>>;
  nextId: number;
}

function evolve(world: World, random: () => number, nowMs: number): void {
  const fresh = Math.floor(random() * 4);
  for (let k = 0; k < fresh; k++) {
    const id = world.nextId++;
    world.events.set(id, syntheticEvent(id, apiDatetime(nowMs - Math.floor(random() * 20 * HOUR))));
  }
  if (random() < 0.25 && world.events.size > 0) {
    // An edit of a recent event.
    const ids = [...world.events.keys()].slice(-30);
    const id = ids[Math.floor(random() * ids.length)]!;
    world.events.set(id, { ...world.events.get(id)!, summary: `Uppdaterad ${Math.floor(random() * 1e6)}.` });
  }
  if (random() < 0.08) {
    // An event first seen long after its date, under an old id: outside the write window.
    const id = 1_000 + Math.floor(random() * 400);
    if (!world.events.has(id))
      world.events.set(id, syntheticEvent(id, apiDatetime(nowMs - (40 + random() * 200) * 24 * HOUR)));
  }
}

/** What the API would answer now: the newest events, sometimes an old one, sometimes a bad element. */
function feedOf(world: World, random: () => number): unknown[] {
  const all = [...world.events.values()];
  const recent = all.filter((e) => (e.id as number) >= 10_000).slice(-60);
  const old = all.filter((e) => (e.id as number) < 10_000 && random() < 0.5);
  const feed: unknown[] = [...recent, ...old].sort(
    (a, b) => (b as { id: number }).id - (a as { id: number }).id,
  );
  if (random() < 0.1) feed.push({ id: 'x', datetime: 'i går', n: Math.floor(random() * 3) });
  return feed;
}

async function chaos(seed: number, rounds: number): Promise<void> {
  const random = prng(seed);
  const { dir, store } = freshStore('polisen-chaos-');
  const world: World = { events: new Map(), nextId: 10_000 };
  let clock = Date.parse('2024-03-01T08:00:00Z');
  const counts = { runs: 0, died: 0, recovered: 0, duplicatesRemoved: 0 };

  for (let round = 0; round < rounds; round++) {
    clock += Math.floor(random() * 40 * 60_000);
    evolve(world, random, clock);
    const runs = 1 + Math.floor(random() * 3);
    const results = await Promise.allSettled(
      Array.from({ length: runs }, () => {
        const feed = feedOf(world, random);
        // Runs of a round start within the same few seconds: object names collide now and then.
        const at = clock + Math.floor(random() * 3) * 1000;
        const dieAt = random() < 0.5 ? 1 + Math.floor(random() * 14) : Number.POSITIVE_INFINITY;
        return runCollect(
          {
            store: chaoticStore(store, random, dieAt),
            fetchFeed: async () => ({ events: feed, bodyBytes: 0 }) as never,
            logger,
            now: () => new Date(at),
          },
          options,
        );
      }),
    );
    for (const r of results) {
      counts.runs++;
      if (r.status === 'fulfilled') {
        counts.recovered += r.value.recoveredObjects;
        counts.duplicatesRemoved += r.value.duplicatesRemoved;
      } else if (r.reason instanceof Died || (r.reason as Error).cause instanceof Died) {
        counts.died++;
      } else {
        throw r.reason;
      }
    }
  }

  // One clean run that sees every event as it is now.
  clock += 30 * 60_000;
  const everything = [...world.events.values()];
  await runCollect(
    {
      store,
      fetchFeed: async () => ({ events: everything, bodyBytes: 0 }) as never,
      logger,
      now: () => new Date(clock),
    },
    options,
  );

  const objects = localObjects(dir);
  const c = census(objects);
  expect(duplicates(c), `seed ${seed}`).toEqual([]);
  expect(
    [...c.events.keys()].sort((a, b) => a - b),
    `seed ${seed}`,
  ).toEqual([...world.events.keys()].sort((a, b) => a - b));
  expect(c.unrecorded, `seed ${seed}`).toEqual([]);
  expect(c.misplaced, `seed ${seed}`).toBe(0);
  expect(c.metadata?.total_tracked, `seed ${seed}`).toBe(world.events.size);
  // Revisions: none twice in a row for an id, and the newest version is the current content.
  const versions = new Map<number, { unix: number; fp: string }[]>();
  for (const [name, body] of objects) {
    const m = /^(events|updates)\/.*-(\d+)\.jsonl$/.exec(name);
    if (!m) continue;
    for (const line of body.toString('utf8').split('\n')) {
      if (line === '') continue;
      const event = JSON.parse(line) as { id: number };
      const list = versions.get(event.id) ?? [];
      list.push({ unix: Number(m[2]) + (m[1] === 'updates' ? 0.5 : 0), fp: fingerprintEvent(event) });
      versions.set(event.id, list);
    }
  }
  for (const [id, list] of versions) {
    list.sort((a, b) => a.unix - b.unix);
    for (let k = 1; k < list.length; k++) {
      expect(list[k]!.fp, `seed ${seed}: event ${id} has the same version twice in a row`).not.toBe(
        list[k - 1]!.fp,
      );
    }
    expect(list.at(-1)!.fp, `seed ${seed}: the newest version of event ${id}`).toBe(
      fingerprintEvent(world.events.get(id)),
    );
  }
  // The chaos really happened.
  expect(counts.died).toBeGreaterThan(rounds / 6);
  expect(counts.recovered).toBeGreaterThan(0);
}

describe('the commit protocol under chaos (in process, local store)', () => {
  it.each([1, 2, 3, 4])(
    'seed %i: 120 rounds of up to three runs, half of them dying',
    async (seed) => {
      await chaos(seed, 120);
    },
    120_000,
  );
});

/** A store that holds a run at chosen operations until the test lets it go. */
function gatedStore(
  store: ObjectStore,
  gate: (op: { method: string; name: string }) => Promise<void> | undefined,
  dieAt = Number.POSITIVE_INFINITY,
): ObjectStore {
  let count = 0;
  const step = async <T>(method: string, name: string, fn: () => Promise<T>): Promise<T> => {
    if (++count >= dieAt) throw new Died(`died at operation ${count}`);
    await gate({ method, name });
    return fn();
  };
  return {
    description: store.description,
    get: (name, options) => step('get', name, () => store.get(name, options)),
    put: (name, body, options) => step('put', name, () => store.put(name, body, options)),
    list: (prefix, options) => step('list', prefix, () => store.list(prefix, options)),
    delete: (name, options) => step('delete', name, () => store.delete(name, options)),
  };
}

function latch(): { wait: Promise<void>; open: () => void; reached: Promise<void>; arrive: () => void } {
  let open!: () => void;
  let arrive!: () => void;
  const wait = new Promise<void>((r) => {
    open = r;
  });
  const reached = new Promise<void>((r) => {
    arrive = r;
  });
  return { wait, open, reached, arrive };
}

/** Holds a run at its metadata write (its compare-and-swap) until the latch opens. */
function heldAtCommit(
  op: { method: string; name: string },
  at: ReturnType<typeof latch>,
): Promise<void> | undefined {
  if (op.method !== 'put' || op.name !== 'metadata/last_seen.json') return undefined;
  at.arrive();
  return at.wait;
}

describe('the commit protocol: a schedule where a line may only be stripped once a commit holds it', () => {
  it('two runs write one event, one dies, a third finds both while the other commits: the event is kept once', async () => {
    const { dir, store } = freshStore('polisen-schedule-');
    const t0 = Date.parse('2024-03-01T08:00:00Z');
    const old = syntheticEvent(10_000, apiDatetime(t0 - HOUR));
    const x = syntheticEvent(10_001, apiDatetime(t0 - 10 * 60_000));
    const run = (s: ObjectStore, feed: unknown[], at: number) =>
      runCollect(
        {
          store: s,
          fetchFeed: async () => ({ events: feed, bodyBytes: 0 }) as never,
          logger,
          now: () => new Date(at),
        },
        options,
      );
    await run(store, [old], t0 - 30 * 60_000);

    // B lists first, and is held before writing its object, then before recording it.
    const bObject = latch();
    const bCommit = latch();
    const b = run(
      gatedStore(store, (op) =>
        op.method === 'put' && op.name.startsWith('events/') ? bObject.wait : heldAtCommit(op, bCommit),
      ),
      [x, old],
      t0 + 5000,
    );
    // A writes the same event under an earlier second and dies before recording it.
    const a = run(
      gatedStore(store, () => undefined, 6),
      [x, old],
      t0,
    );
    await expect(a).rejects.toThrow(Died);
    bObject.open();
    await bCommit.reached;
    // C finds both objects unrecorded; it is held at its first compare-and-swap while B commits.
    const cCommit = latch();
    const c = run(
      gatedStore(store, (op) => heldAtCommit(op, cCommit)),
      [x, old],
      t0 + 10_000,
    );
    await cCommit.reached;
    bCommit.open();
    const bSummary = await b;
    cCommit.open();
    const cSummary = await c;
    expect(cSummary.recoveredObjects).toBe(2);
    expect(bSummary.counts.new + cSummary.counts.new).toBe(1);

    const census1 = census(localObjects(dir));
    expect(census1.events.get(10_001)).toBe(1);
    expect(duplicates(census1)).toEqual([]);
    expect(census1.unrecorded).toEqual([]);
  });
});
