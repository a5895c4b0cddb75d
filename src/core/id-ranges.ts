/**
 * An exact, compact set of event ids: sorted, disjoint, non-adjacent inclusive ranges kept as a flat
 * array `[start0, end0, start1, end1, …]`. Police event ids are dense enough that a year of the feed
 * (26,415 ids) is about 5,300 ranges, which encode to about 8 KB (varint gaps, raw deflate, base64).
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';

export type IdRanges = readonly number[];

export const EMPTY_RANGES: IdRanges = [];

export function hasId(ranges: IdRanges, id: number): boolean {
  let lo = 0;
  let hi = ranges.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const start = ranges[mid * 2]!;
    const end = ranges[mid * 2 + 1]!;
    if (id < start) hi = mid - 1;
    else if (id > end) lo = mid + 1;
    else return true;
  }
  return false;
}

export function countIds(ranges: IdRanges): number {
  let n = 0;
  for (let i = 0; i < ranges.length; i += 2) n += ranges[i + 1]! - ranges[i]! + 1;
  return n;
}

export function maxId(ranges: IdRanges): number | undefined {
  return ranges.length === 0 ? undefined : ranges[ranges.length - 1];
}

/** Ranges from any ids (unsorted, repeated ids allowed). */
export function rangesFromIds(ids: Iterable<number>): IdRanges {
  const sorted = Float64Array.from(ids).sort();
  const out: number[] = [];
  for (const id of sorted) {
    const last = out.length - 1;
    if (last > 0 && id <= out[last]! + 1) {
      if (id > out[last]!) out[last] = id;
    } else {
      out.push(id, id);
    }
  }
  return out;
}

/** The union of two range sets (linear merge). */
export function unionRanges(a: IdRanges, b: IdRanges): IdRanges {
  if (b.length === 0) return a;
  if (a.length === 0) return b;
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    let start: number;
    let end: number;
    if (j >= b.length || (i < a.length && a[i]! <= b[j]!)) {
      start = a[i]!;
      end = a[i + 1]!;
      i += 2;
    } else {
      start = b[j]!;
      end = b[j + 1]!;
      j += 2;
    }
    const last = out.length - 1;
    if (last > 0 && start <= out[last]! + 1) {
      if (end > out[last]!) out[last] = end;
    } else {
      out.push(start, end);
    }
  }
  return out;
}

export function addIds(ranges: IdRanges, ids: Iterable<number>): IdRanges {
  return unionRanges(ranges, rangesFromIds(ids));
}

function writeVarint(out: number[], value: number): void {
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
}

/** What encodeRanges([]) yields: an empty raw-deflate stream, without the cost of a deflate stream. */
export const EMPTY_ENCODED = 'AwA=';

/** varint(start - previous end), varint(end - start) per range, raw-deflated, base64. */
export function encodeRanges(ranges: IdRanges): string {
  if (ranges.length === 0) return EMPTY_ENCODED;
  const bytes: number[] = [];
  let previous = 0;
  for (let i = 0; i < ranges.length; i += 2) {
    writeVarint(bytes, ranges[i]! - previous);
    writeVarint(bytes, ranges[i + 1]! - ranges[i]!);
    previous = ranges[i + 1]!;
  }
  return deflateRawSync(Uint8Array.from(bytes), { level: 9 }).toString('base64');
}

export function decodeRanges(encoded: string): IdRanges {
  if (encoded === '') return EMPTY_RANGES;
  const bytes = inflateRawSync(Buffer.from(encoded, 'base64'));
  const out: number[] = [];
  let pos = 0;
  const readVarint = (): number => {
    let value = 0;
    let scale = 1;
    for (;;) {
      if (pos >= bytes.length) throw new Error('truncated id ranges');
      const byte = bytes[pos++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 0x80;
    }
  };
  let previous = 0;
  while (pos < bytes.length) {
    const start = previous + readVarint();
    const end = start + readVarint();
    if ((out.length > 0 && start <= previous + 1) || end < start) throw new Error('id ranges out of order');
    out.push(start, end);
    previous = end;
  }
  return out;
}
