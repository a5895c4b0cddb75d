/**
 * The recorded responses in a form the replay child can hold outside the V8 heap: the benchmark writes
 * them once to a temp directory (event versions as JSON text, indexes as raw numbers), and the child reads
 * them into Buffers, creating no garbage. Held as the test support reader holds them (~27,000 event
 * objects and ten thousand arrays on the heap), the data, not the collector, would set the child's peak
 * RSS: V8 sizes its heap to a multiple of what is live, and loading leaves a peak of its own.
 * Each response's body is rebuilt as the API sent it and parsed per run, as the feed client does.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Replay } from '../../test/support/replay-file.js';

export interface CachedResponse {
  at: string;
  /** Position of its first version number in the response index; -1 for a non-array body. */
  offset: number;
  count: number;
}

export interface ReplayCache {
  responses: CachedResponse[];
  /** The exact JSON body of one response ('' for a non-array body). */
  body(response: CachedResponse): string;
}

const OPEN = Buffer.from('[');
const COMMA = Buffer.from(',');
const CLOSE = Buffer.from(']');

export function writeReplayCache(replay: Replay, dir: string): void {
  const texts = replay.versions.map((event) => Buffer.from(JSON.stringify(event) ?? 'null'));
  const versionIndex = Buffer.alloc(texts.length * 16);
  let start = 0;
  texts.forEach((text, v) => {
    versionIndex.writeDoubleLE(start, v * 16);
    versionIndex.writeDoubleLE(text.length, v * 16 + 8);
    start += text.length;
  });
  const total = replay.responses.reduce((n, r) => n + (r.versions?.length ?? 0), 0);
  const responseIndex = Buffer.alloc(total * 4);
  let at = 0;
  const responses: CachedResponse[] = replay.responses.map((r) => {
    if (r.versions === undefined) return { at: r.at, offset: -1, count: 0 };
    const offset = at;
    for (const v of r.versions) responseIndex.writeInt32LE(v, 4 * at++);
    return { at: r.at, offset, count: r.versions.length };
  });
  writeFileSync(path.join(dir, 'versions.txt'), Buffer.concat(texts));
  writeFileSync(path.join(dir, 'versions.idx'), versionIndex);
  writeFileSync(path.join(dir, 'responses.idx'), responseIndex);
  writeFileSync(path.join(dir, 'responses.json'), JSON.stringify(responses));
}

export function readReplayCache(dir: string): ReplayCache {
  const text = readFileSync(path.join(dir, 'versions.txt'));
  const versionIndex = readFileSync(path.join(dir, 'versions.idx'));
  const responseIndex = readFileSync(path.join(dir, 'responses.idx'));
  const responses = JSON.parse(readFileSync(path.join(dir, 'responses.json'), 'utf8')) as CachedResponse[];
  return {
    responses,
    body(response) {
      if (response.offset < 0) return '';
      const parts: Buffer[] = [OPEN];
      for (let i = 0; i < response.count; i++) {
        const v = responseIndex.readInt32LE(4 * (response.offset + i));
        const start = versionIndex.readDoubleLE(v * 16);
        if (i > 0) parts.push(COMMA);
        parts.push(text.subarray(start, start + versionIndex.readDoubleLE(v * 16 + 8)));
      }
      parts.push(CLOSE);
      return Buffer.concat(parts).toString('utf8');
    },
  };
}
