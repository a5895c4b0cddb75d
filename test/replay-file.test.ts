import { describe, expect, it } from 'vitest';
import { loadReplay, REPLAY_SKIP_REASON, replayFileAvailable, responseBody } from './support/replay-file.js';

const available = replayFileAvailable();
if (!available) console.warn(REPLAY_SKIP_REASON);

describe('recorded replay file', () => {
  it.skipIf(!available)('loads, and its counts match the meta line and the README', async () => {
    const started = performance.now();
    const replay = await loadReplay();
    const ms = performance.now() - started;
    console.info(`replay file loaded in ${ms.toFixed(0)} ms`);

    const { meta, versions, responses } = replay;
    // The figures documented in /work/shared/data/README.md.
    expect(meta).toMatchObject({
      responses: 10_184,
      not_a_json_array: 12,
      distinct_event_versions: 26_928,
      distinct_event_ids: 26_415,
      short_responses: 1,
    });

    expect(responses.length).toBe(meta.responses);
    expect(responses.filter((r) => r.versions === undefined).length).toBe(meta.not_a_json_array);
    expect(responses.filter((r) => r.versions !== undefined && r.versions.length < 500).length).toBe(
      meta.short_responses,
    );
    // Dense: every v from 0 to n-1 present.
    expect(versions.length).toBe(meta.distinct_event_versions);
    expect(versions.every((event) => event !== undefined)).toBe(true);
    const ids = new Set(versions.map((event) => (event as { id: unknown }).id));
    expect(ids.size).toBe(meta.distinct_event_ids);

    // Responses are in recording order and every referenced version exists.
    const outOfOrder = responses.filter((r, k) => {
      const previous = responses[k - 1];
      return previous !== undefined && (r.at < previous.at || r.i <= previous.i);
    });
    expect(outOfOrder).toEqual([]);
    const maxRef = Math.max(
      ...responses.flatMap((r) => (r.versions === undefined ? [] : [Math.max(...r.versions)])),
    );
    expect(maxRef).toBe(versions.length - 1);
  });

  it.skipIf(!available)(
    'responseBody gives the JSON array of the versions, or the raw non-array body',
    async () => {
      const replay = await loadReplay();
      const full = replay.responses.find((r) => r.versions !== undefined);
      const empty = replay.responses.find((r) => r.body !== undefined);
      if (full?.versions === undefined || empty === undefined)
        throw new Error('expected both kinds of response');

      const parsed = JSON.parse(responseBody(replay, full)) as { id: number }[];
      expect(parsed).toHaveLength(full.versions.length);
      expect(parsed[0]).toEqual(replay.versions[full.versions[0] ?? -1]);
      expect(parsed.at(-1)).toEqual(replay.versions[full.versions.at(-1) ?? -1]);
      expect(responseBody(replay, empty)).toBe(empty.body);
      expect(() => responseBody(replay, { i: -1, at: '', versions: [replay.versions.length] })).toThrow(
        /unknown version/,
      );
    },
  );

  it.skipIf(!available)('is cached per process', async () => {
    expect(loadReplay()).toBe(loadReplay());
    expect(await loadReplay()).toBe(await loadReplay());
  });
});
