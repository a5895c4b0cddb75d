import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { deflateRawSync, gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  addIds,
  countIds,
  decodeRanges,
  EMPTY_ENCODED,
  EMPTY_RANGES,
  encodeRanges,
  hasId,
  type IdRanges,
  maxId,
  rangesFromIds,
  unionRanges,
} from '../../src/core/id-ranges.js';
import { prng } from '../support/prng.js';

const REPLAY_FILE = fileURLToPath(
  new URL('../../../shared/data/polisen-replay-2023.jsonl.gz', import.meta.url),
);
const replayAvailable = existsSync(REPLAY_FILE);
if (!replayAvailable)
  console.warn(`replay file not found at ${REPLAY_FILE}; the replay encoding-size test is skipped`);

/** Independent model of what ranges must be: the sorted distinct ids, grouped into maximal runs. */
function expectedRanges(ids: Iterable<number>): number[] {
  const sorted = [...new Set(ids)].sort((a, b) => a - b);
  const out: number[] = [];
  for (const id of sorted) {
    if (out.length > 0 && out[out.length - 1] === id - 1) out[out.length - 1] = id;
    else out.push(id, id);
  }
  return out;
}

/** Ids like the feed's: mostly runs of consecutive ids, some gaps, some ids repeated. */
function randomIds(random: () => number, count: number, base: number): number[] {
  const ids: number[] = [];
  let id = base;
  for (let i = 0; i < count; i++) {
    const r = random();
    if (r < 0.6) id += 1;
    else if (r < 0.75) id += 2;
    else if (r < 0.9) id += 2 + Math.floor(random() * 50);
    else if (r < 0.95 && ids.length > 0) {
      ids.push(ids[Math.floor(random() * ids.length)]!); // a repeat
      continue;
    } else id += 1000;
    ids.push(id);
  }
  // Shuffle: input order must not matter.
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  return ids;
}

function randomBatches(random: () => number, ids: readonly number[]): number[][] {
  const batches: number[][] = [];
  let i = 0;
  while (i < ids.length) {
    const size = 1 + Math.floor(random() * 400);
    batches.push(ids.slice(i, i + size));
    i += size;
  }
  return batches;
}

function expectSameAsSet(ranges: IdRanges, set: ReadonlySet<number>): void {
  expect([...ranges]).toEqual(expectedRanges(set));
  expect(countIds(ranges)).toBe(set.size);
  const sorted = [...set].sort((a, b) => a - b);
  expect(maxId(ranges)).toBe(sorted[sorted.length - 1]);
  const lo = sorted[0]! - 3;
  const hi = sorted[sorted.length - 1]! + 3;
  const wrong: number[] = [];
  for (let id = lo; id <= hi; id++) if (hasId(ranges, id) !== set.has(id)) wrong.push(id);
  expect(wrong.slice(0, 10)).toEqual([]);
}

describe('id ranges against a Set<number> (seeded random)', () => {
  for (const seed of [1, 7, 2024]) {
    it(`seed ${seed}: rangesFromIds, unions in random batches, hasId/countIds/maxId, round-trip`, () => {
      const random = prng(seed);
      const ids = randomIds(random, 5000, 400_000);
      const set = new Set(ids);
      expect(set.size).toBeLessThan(ids.length); // repeats really are there

      const direct = rangesFromIds(ids);
      expectSameAsSet(direct, set);

      // Union of per-batch ranges, batches merged in a random order.
      const parts = randomBatches(random, ids).map((batch) => rangesFromIds(batch));
      let merged: IdRanges = EMPTY_RANGES;
      const order = parts.map((_, k) => k).sort(() => random() - 0.5);
      for (const k of order) merged = unionRanges(merged, parts[k]!);
      expectSameAsSet(merged, set);

      // addIds batch by batch (as runs do).
      let added: IdRanges = EMPTY_RANGES;
      for (const batch of randomBatches(random, ids)) added = addIds(added, batch);
      expectSameAsSet(added, set);

      expect([...decodeRanges(encodeRanges(merged))]).toEqual([...merged]);
    });
  }

  it('union is associative and commutative on random range sets', () => {
    const random = prng(99);
    for (let round = 0; round < 20; round++) {
      const [a, b, c] = [0, 1, 2].map(() => rangesFromIds(randomIds(random, 300, 1000 + round)));
      const left = unionRanges(unionRanges(a!, b!), c!);
      const right = unionRanges(a!, unionRanges(b!, c!));
      expect([...left]).toEqual([...right]);
      expect([...unionRanges(a!, b!)]).toEqual([...unionRanges(b!, a!)]);
      expect([...left]).toEqual(expectedRanges([...toIds(a!), ...toIds(b!), ...toIds(c!)]));
    }
  });

  it('merges adjacent and touching ranges into one', () => {
    expect([...rangesFromIds([5, 3, 4, 4, 10, 9, 11, 1])]).toEqual([1, 1, 3, 5, 9, 11]);
    expect([...unionRanges([1, 3], [4, 6])]).toEqual([1, 6]);
    expect([...unionRanges([1, 3, 10, 12], [5, 9])]).toEqual([1, 3, 5, 12]);
    expect([...unionRanges([1, 100], [20, 30])]).toEqual([1, 100]);
    expect([...unionRanges(EMPTY_RANGES, [2, 2])]).toEqual([2, 2]);
    expect([...rangesFromIds([])]).toEqual([]);
  });

  it('empty ranges: nothing in them', () => {
    expect(hasId(EMPTY_RANGES, 1)).toBe(false);
    expect(countIds(EMPTY_RANGES)).toBe(0);
    expect(maxId(EMPTY_RANGES)).toBeUndefined();
  });
});

function toIds(ranges: IdRanges): number[] {
  const out: number[] = [];
  for (let i = 0; i < ranges.length; i += 2)
    for (let id = ranges[i]!; id <= ranges[i + 1]!; id++) out.push(id);
  return out;
}

describe('encodeRanges / decodeRanges', () => {
  it('round-trips empty, single and large ids (beyond 32 bits)', () => {
    for (const ranges of [
      EMPTY_RANGES,
      [1, 1],
      [438_834, 438_834],
      [1, 5, 7, 7, 200, 100_000],
      [2 ** 31 - 2, 2 ** 31 + 5, 2 ** 40, 2 ** 40 + 3, 2 ** 52, 2 ** 52 + 1],
    ]) {
      expect([...decodeRanges(encodeRanges(ranges))]).toEqual([...ranges]);
    }
    expect([...decodeRanges('')]).toEqual([]);
  });

  it('the empty set encodes as deflate encodes no bytes at level 9 (the text written before)', () => {
    expect(encodeRanges(EMPTY_RANGES)).toBe(EMPTY_ENCODED);
    expect(EMPTY_ENCODED).toBe(deflateRawSync(new Uint8Array(0), { level: 9 }).toString('base64'));
    expect([...decodeRanges(EMPTY_ENCODED)]).toEqual([]);
  });

  it('the encoding is base64 text (safe inside JSON)', () => {
    const encoded = encodeRanges(rangesFromIds(randomIds(prng(3), 2000, 500_000)));
    expect(encoded).toMatch(/^[A-Za-z0-9+/]+=*$/);
  });

  /** Bytes as the format defines them: varint(start - previous end), varint(end - start), raw-deflated. */
  const deflated = (bytes: number[]) => deflateRawSync(Uint8Array.from(bytes)).toString('base64');

  it('the hand-built encoding of known ranges decodes to them (the format, independently)', () => {
    // [10..12], [20..20], [300..301]: gaps 10, 8, 280 (=0x98 0x02 as varint: 24 + 2·128), lengths 2, 0, 1.
    expect([...decodeRanges(deflated([10, 2, 8, 0, 0x98, 0x02, 1]))]).toEqual([10, 12, 20, 20, 300, 301]);
  });

  it.each([
    ['truncated base64', () => encodeRanges([1, 5, 9, 20, 400, 9000]).slice(0, 6)],
    ['text that is not deflate data', () => Buffer.from('hello, these are not ranges').toString('base64')],
    ['a varint cut off', () => deflated([10, 2, 0x80])],
    ['an end without a start length', () => deflated([10])],
    ['overlapping ranges', () => deflated([10, 5, 0, 1])],
    ['adjacent ranges (must have been merged)', () => deflated([10, 5, 1, 1])],
  ])('decode of corrupt input throws: %s', (_label, make) => {
    expect(() => decodeRanges(make())).toThrow();
  });
});

describe('the 2023 replay file', () => {
  it.skipIf(!replayAvailable)('all its distinct ids encode to under 12 KB (design: about 8 KB)', () => {
    const text = gunzipSync(readFileSync(REPLAY_FILE)).toString('utf8');
    const ids = new Set<number>();
    for (const line of text.split('\n')) {
      if (!line.startsWith('{"kind":"version"')) continue;
      ids.add((JSON.parse(line) as { event: { id: number } }).event.id);
    }
    expect(ids.size).toBe(26_415); // the README's figure
    const ranges = rangesFromIds(ids);
    expectSameAsSet(ranges, ids);
    const encoded = encodeRanges(ranges);
    console.info(
      `replay ids: ${ids.size} ids, ${ranges.length / 2} ranges, encoded ${encoded.length} bytes of base64`,
    );
    expect(encoded.length).toBeLessThan(12 * 1024);
    expect([...decodeRanges(encoded)]).toEqual([...ranges]);
  });
});
