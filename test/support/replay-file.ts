/**
 * Reader of the recorded Polisen API responses (`../shared/data/polisen-replay-2023.jsonl.gz`, format in
 * /work/shared/data/README.md). Test and benchmark support only: the file is read in place, never copied.
 */
import { createReadStream, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createGunzip } from 'node:zlib';

export type ReplayResponse = { i: number; at: string; versions?: number[]; body?: string };

export type Replay = {
  meta: Record<string, unknown>;
  /** Event objects as the API sent them, indexed by version number `v`. */
  versions: unknown[];
  responses: ReplayResponse[];
};

/** The project root: the nearest ancestor of this file holding a package.json. */
function findProjectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 10; depth++) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
}

export const REPLAY_FILE = path.resolve(findProjectRoot(), '../shared/data/polisen-replay-2023.jsonl.gz');

/** Whether the recorded file is present (it is not in a user's own clone; tests then skip). */
export function replayFileAvailable(file: string = REPLAY_FILE): boolean {
  return existsSync(file);
}

/** Message for `it.skipIf(!replayFileAvailable())` tests, so a skip says why. */
export const REPLAY_SKIP_REASON = `recorded replay file not found at ${REPLAY_FILE}; replay tests are skipped`;

const cache = new Map<string, Promise<Replay>>();

/** Loads and indexes the whole file once per process per path (about 40 MB of JSON lines). */
export function loadReplay(file: string = REPLAY_FILE): Promise<Replay> {
  const key = path.resolve(file);
  let pending = cache.get(key);
  if (pending === undefined) {
    pending = readReplay(key);
    // A failed load is not cached, so a later call may retry.
    pending.catch(() => cache.delete(key));
    cache.set(key, pending);
  }
  return pending;
}

/** The exact body the API sent for one recorded response. */
export function responseBody(replay: Replay, response: ReplayResponse): string {
  if (response.versions !== undefined) {
    return JSON.stringify(
      response.versions.map((v) => {
        const event = replay.versions[v];
        if (event === undefined) throw new Error(`response ${response.i} refers to unknown version ${v}`);
        return event;
      }),
    );
  }
  if (response.body !== undefined) return response.body;
  throw new Error(`response ${response.i} has neither versions nor body`);
}

async function readReplay(file: string): Promise<Replay> {
  const replay: Replay = { meta: {}, versions: [], responses: [] };
  let lineNo = 0;
  let rest = '';
  const stream = createReadStream(file).pipe(createGunzip());
  stream.setEncoding('utf8');
  // Splitting chunks by hand is several times faster than node:readline on this file.
  for await (const chunk of stream as AsyncIterable<string>) {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) addLine(replay, line, ++lineNo, file);
  }
  if (rest.length > 0) addLine(replay, rest, ++lineNo, file);
  return replay;
}

function addLine(replay: Replay, line: string, lineNo: number, file: string): void {
  if (line.trim() === '') return;
  const record = JSON.parse(line) as Record<string, unknown>;
  const where = `${file} line ${lineNo}`;
  switch (record.kind) {
    case 'meta':
      replay.meta = record;
      return;
    case 'version': {
      const v = record.v;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || record.event === undefined) {
        throw new Error(`${where}: version line without an integer v and an event`);
      }
      replay.versions[v] = record.event;
      return;
    }
    case 'response': {
      const { i, at, versions, body } = record;
      if (typeof i !== 'number' || typeof at !== 'string')
        throw new Error(`${where}: response without i and at`);
      if (Array.isArray(versions)) {
        replay.responses.push({ i, at, versions: versions as number[] });
      } else if (typeof body === 'string') {
        replay.responses.push({ i, at, body });
      } else {
        throw new Error(`${where}: response without versions or body`);
      }
      return;
    }
    default:
      throw new Error(`${where}: unknown kind ${JSON.stringify(record.kind)}`);
  }
}
