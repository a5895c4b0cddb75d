import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { validateFeed } from '../../src/core/event-validation.js';
import {
  canonicalJson,
  FINGERPRINT_LENGTH,
  fingerprintEvent,
  fingerprintFeedEvent,
} from '../../src/core/fingerprint.js';
import { loadReplay, REPLAY_SKIP_REASON, replayFileAvailable } from '../support/replay-file.js';

/**
 * Fingerprints are persisted in metadata/last_seen.json: a changed value would make every stored event
 * look edited. These values were recorded from the implementation the stores were written with; a
 * faster implementation must reproduce them exactly.
 */
const api = {
  id: 514338,
  datetime: '2024-03-31 22:49:59 +02:00',
  name: '31 mars 21.35, Rån väpnat, Malmö',
  summary: 'Pildammsvägen, vid idrottsplatsen. Personrån utomhus.',
  url: '/aktuellt/handelser/2024/mars/31/31-mars-21.35-ran-vapnat-malmo/',
  type: 'Rån väpnat',
  location: { name: 'Malmö', gps: '55.604981,13.003822' },
};
const { summary: _summary, ...noSummary } = api;

describe('fingerprintEvent: the persisted values', () => {
  it.each<[string, unknown, string]>([
    ['an event as the API sends it', api, 'S26kA2qd'],
    [
      'the same event with its keys reordered',
      {
        location: api.location,
        type: api.type,
        url: api.url,
        summary: api.summary,
        name: api.name,
        datetime: api.datetime,
        id: api.id,
      },
      'S26kA2qd',
    ],
    [
      'its location keys reordered',
      { ...api, location: { gps: api.location.gps, name: api.location.name } },
      'S26kA2qd',
    ],
    ['an extra key', { ...api, extra: 1 }, 'XsH61lDN'],
    ['a key set to undefined', { ...api, summary: undefined }, '9J4PazKC'],
    ['a missing key', noSummary, 'KKKuaV4s'],
    ['the id as a string', { ...api, id: '514338' }, 'o9WLbbCE'],
    ['a float id', { ...api, id: 1.5 }, 'fxNv96OS'],
    ['a null location', { ...api, location: null }, '9uR5yDUh'],
    ['a string location', { ...api, location: 'Malmö' }, 'PzcXIQk7'],
    ['an extra location key', { ...api, location: { ...api.location, x: 'y' } }, 'AZhFyXbd'],
    ['a nested array', { ...api, tags: ['a', 1, null, true, { b: [2] }] }, 'f1lsdFN5'],
    ['empty strings', { ...api, name: '', summary: '', type: '' }, '6Kx7xRz-'],
    ['odd and even lengths', { ...api, name: 'a', summary: 'abc', type: 'ab' }, 'ZQHQAhz7'],
    ['an emoji and a lone surrogate', { ...api, summary: 'Brand 🔥 i bostad \ud800 x' }, 'ISCa5aj6'],
    ['characters JSON escapes', { ...api, summary: 'quote " backslash \\ newline \n tab \t' }, 'r3jTrZ9S'],
    ['a null summary', { ...api, summary: null }, 'mupo1i99'],
    ['a number type', { ...api, type: 7 }, 'LApuKBRu'],
    ['a number gps', { ...api, location: { name: 'Malmö', gps: 55.6 } }, 'Yoym_A4Z'],
    ['a boolean name', { ...api, name: false }, '7k3-aFv_'],
    ['an object name', { ...api, name: { sv: 'x' } }, 'ZkMp_nE4'],
    ['an array location', { ...api, location: ['Malmö', '55.6,13.0'] }, 'iI6C2PEy'],
    ['an empty location', { ...api, location: {} }, 'ADPa3zwh'],
    ['true', true, 'gLNU37Hi'],
    ['null', null, 'HLB2odFk'],
    ['a number', 42, 'mzErN_rS'],
    ['a string', '{"id":1}', 'M1yhi1P8'],
    ['an empty object', {}, 'KZdIZDMk'],
    ['an empty array', [], 'YQSJX8rE'],
  ])('%s', (_label, value, expected) => {
    expect(fingerprintEvent(value)).toBe(expected);
    expect(expected).toHaveLength(FINGERPRINT_LENGTH);
  });

  it('a changed value in any field changes it', () => {
    const seen = new Set<string>([fingerprintEvent(api)]);
    for (const key of ['datetime', 'name', 'summary', 'url', 'type'] as const)
      seen.add(fingerprintEvent({ ...api, [key]: `${api[key]}.` }));
    seen.add(fingerprintEvent({ ...api, id: api.id + 1 }));
    seen.add(fingerprintEvent({ ...api, location: { ...api.location, gps: '55.6,13.0' } }));
    seen.add(fingerprintEvent({ ...api, location: { ...api.location, name: 'Lund' } }));
    expect(seen.size).toBe(9);
  });

  it.skipIf(!replayFileAvailable())('every event version of the recorded year', async () => {
    const replay = await loadReplay();
    const fps = createHash('sha1');
    const canonical = createHash('sha1');
    const feedFps = createHash('sha1');
    const writtenFps = createHash('sha1');
    for (const v of replay.versions) {
      fps.update(fingerprintEvent(v));
      canonical.update(canonicalJson(v));
      const event = validateFeed([v]).events[0]!;
      feedFps.update(fingerprintFeedEvent(event, false));
      writtenFps.update(fingerprintFeedEvent(event, true));
    }
    expect(replay.versions).toHaveLength(26928);
    const expected = 'ac72a0e01c405446ec059fe0012e7e25c03b04fa';
    expect(fps.digest('hex')).toBe(expected);
    expect(feedFps.digest('hex')).toBe(expected);
    expect(writtenFps.digest('hex')).toBe(expected);
    expect(canonical.digest('hex')).toBe('862a9b5218eb0aa89a55a043bf4274562f817f9f');
  });
  if (!replayFileAvailable()) console.warn(REPLAY_SKIP_REASON);
});
