/**
 * `npm run test-servers`: the production path on this machine, for trying the CLI by hand. Starts on
 * 127.0.0.1 the feed test server, the OCI Object Storage test server (checks request signatures) and the
 * Vault test server (KV v2 secret `secret/data/polisen-collector` holding a throwaway OCI API key), then
 * prints the `export` lines and the command to run from another terminal. Runs until Ctrl-C.
 *
 * The feed serves the recorded responses of ../shared/data/polisen-replay-2023.jsonl.gz one after the other
 * (each request gets the next, so repeated runs see new events), or, without that file or with
 * `--synthetic`, a small generated feed that gains a few events per request. `?DateTime=YYYY-MM-DD[ HH]`
 * is answered too (newest first, at most 500, like the API), so `backfill` can be tried.
 *
 * Everything here is test material: the key is generated in memory, the token is random and valid only
 * for this server, and nothing leaves 127.0.0.1. The export lines go to stdout, the request log to stderr.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type FeedReply, startFeedServer } from '../test/support/feed-server.js';
import {
  startProductionServers,
  TEST_BUCKET,
  TEST_NAMESPACE,
  TEST_ROLE_ID,
  TEST_SECRET_ID,
  TEST_VAULT_TOKEN,
} from '../test/support/production-servers.js';
import { loadReplay, REPLAY_FILE, replayFileAvailable, responseBody } from '../test/support/replay-file.js';

const API_CAP = 500;

interface FeedSource {
  description: string;
  /** The body of the next plain `/api/events` request, and a label for the log. */
  next(): { body: string; label: string };
  /** Events whose datetime falls in `day` (and `hour`), newest first, at most 500. */
  dateTime(day: string, hour: number | undefined): unknown[];
  /** Days this source has events for, to suggest a backfill. */
  exampleRange: [string, string];
}

function log(line: string): void {
  process.stderr.write(`[test-servers] ${line}\n`);
}

/** `2023-08-09 9:05:01 +02:00` → day and hour as written (Swedish local time), and a sortable instant. */
function eventTime(event: unknown): { day: string; hour: number; ms: number } | undefined {
  const datetime = (event as { datetime?: unknown } | null)?.datetime;
  if (typeof datetime !== 'string') return undefined;
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{1,2}):(\d{2}):(\d{2}) ([+-]\d{2}:\d{2})$/.exec(datetime.trim());
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}T${m[2]!.padStart(2, '0')}:${m[3]}:${m[4]}${m[5]}`);
  return { day: m[1]!, hour: Number(m[2]), ms };
}

/** Latest version of every event, indexed for DateTime queries. */
function dateIndex(events: Iterable<unknown>): (day: string, hour: number | undefined) => unknown[] {
  const byDay = new Map<string, { event: unknown; hour: number; ms: number }[]>();
  for (const event of events) {
    const time = eventTime(event);
    if (!time) continue;
    const list = byDay.get(time.day) ?? [];
    list.push({ event, hour: time.hour, ms: time.ms });
    byDay.set(time.day, list);
  }
  for (const list of byDay.values()) list.sort((a, b) => b.ms - a.ms);
  return (day, hour) =>
    (byDay.get(day) ?? [])
      .filter((e) => hour === undefined || e.hour === hour)
      .slice(0, API_CAP)
      .map((e) => e.event);
}

async function replaySource(): Promise<FeedSource> {
  log(`loading ${REPLAY_FILE} (a few seconds)…`);
  const replay = await loadReplay();
  const latest = new Map<number, unknown>();
  for (const event of replay.versions) {
    const id = (event as { id?: unknown } | undefined)?.id;
    if (typeof id === 'number') latest.set(id, event);
  }
  const index = dateIndex(latest.values());
  let i = 0;
  return {
    description: `${replay.responses.length} recorded responses (${REPLAY_FILE}), one per request`,
    next() {
      const response = replay.responses[i % replay.responses.length]!;
      i++;
      const body = responseBody(replay, response);
      const what =
        response.versions === undefined
          ? `a ${body.length}-byte non-array body, as recorded`
          : `${response.versions.length} events`;
      return { body, label: `recorded response #${response.i} of ${response.at}: ${what}` };
    },
    dateTime: index,
    exampleRange: ['2024-03-25', '2024-03-27'],
  };
}

/** A feed that gains NEW_PER_REQUEST events per request: 500 events, newest first, 20 minutes apart. */
function syntheticSource(): FeedSource {
  const NEW_PER_REQUEST = 7;
  const STEP_MS = 20 * 60_000;
  const base = Date.now() - 3 * 86_400_000;
  const event = (n: number) => {
    const t = new Date(base + n * STEP_MS + 3_600_000); // shown in +01:00
    const iso = t.toISOString();
    const hour = String(t.getUTCHours());
    return {
      id: 900_000 + n,
      datetime: `${iso.slice(0, 10)} ${hour}:${iso.slice(14, 19)} +01:00`,
      name: `${iso.slice(8, 10)} ${iso.slice(5, 7)} ${hour}.${iso.slice(14, 16)}, Trafikolycka, Uppsala`,
      summary: `Syntetisk händelse ${n}.`,
      url: `/aktuellt/handelser/syntetisk/${n}/`,
      type: 'Trafikolycka',
      location: { name: 'Uppsala', gps: '59.858564,17.638927' },
    };
  };
  let requests = 0;
  const latestIndex = () => API_CAP + requests * NEW_PER_REQUEST;
  return {
    description: `a synthetic feed gaining ${NEW_PER_REQUEST} events per request`,
    next() {
      const newest = latestIndex();
      requests++;
      const events = Array.from({ length: API_CAP }, (_, k) => event(newest - k));
      return {
        body: JSON.stringify(events),
        label: `synthetic events ${900_000 + newest - API_CAP + 1}–${900_000 + newest}`,
      };
    },
    dateTime: (day, hour) =>
      dateIndex(Array.from({ length: latestIndex() }, (_, n) => event(n + 1)))(day, hour),
    exampleRange: [
      new Date(base).toISOString().slice(0, 10),
      new Date(base + 2 * 86_400_000).toISOString().slice(0, 10),
    ],
  };
}

async function main(): Promise<void> {
  const synthetic = process.argv.includes('--synthetic');
  const source = !synthetic && replayFileAvailable() ? await replaySource() : syntheticSource();

  const [feed, servers] = await Promise.all([startFeedServer(), startProductionServers()]);
  const { oci, vault } = servers;

  feed.handler((_request, url): FeedReply | undefined => {
    const query = url.searchParams.get('DateTime');
    if (query !== null) {
      const m = /^(\d{4}-\d{2}-\d{2})(?: (\d{2}))?$/.exec(query);
      if (!m) return { status: 400, body: '[]' };
      const events = source.dateTime(m[1]!, m[2] === undefined ? undefined : Number(m[2]));
      log(`feed: DateTime=${query} → ${events.length} events`);
      return { body: JSON.stringify(events) };
    }
    if (url.pathname !== '/api/events') return undefined;
    const { body, label } = source.next();
    log(`feed: ${label}`);
    return { body };
  });
  oci.faults.onRequest = ({ method, path: target }) => {
    if (method === 'PUT')
      log(`oci: PUT ${decodeURIComponent(target.replace(/^\/n\/[^/]+\/b\/[^/]+\/o\//, ''))}`);
  };

  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'polisen-test-servers-state-'));
  const out = [
    `# polisen-collector test servers on 127.0.0.1; feed: ${source.description}.`,
    '# Paste into another terminal at the project root (after `npm run build`):',
    '# The Vault token below is a throwaway valid only for this local test server; printing it is fine.',
    `export COLLECTOR_STORE=oci://${TEST_NAMESPACE}/${TEST_BUCKET}`,
    `export OCI_OBJECT_STORAGE_ENDPOINT=${oci.url}`,
    `export VAULT_ADDR=${vault.url}`,
    `export VAULT_TOKEN=${TEST_VAULT_TOKEN}`,
    `export POLISEN_API_URL=${feed.url}`,
    'export POLISEN_PACING=off',
    `export COLLECTOR_STATE_DIR=${stateDir}`,
    'export API_CONTACT_EMAIL=you@example.org',
    '# To log in with AppRole instead of the token (also test-only values):',
    `#   unset VAULT_TOKEN; export VAULT_ROLE_ID=${TEST_ROLE_ID} VAULT_SECRET_ID=${TEST_SECRET_ID}`,
    'node dist/src/cli.js collect',
    `# Backfill can be tried too: node dist/src/cli.js backfill --from ${source.exampleRange[0]} --to ${source.exampleRange[1]}`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  log('up; Ctrl-C stops the servers and removes the state directory');

  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  log(`stopping; the bucket held ${oci.objects.size} objects`);
  await Promise.all([feed.close(), servers.close()]);
  rmSync(stateDir, { recursive: true, force: true });
}

main().catch((error: unknown) => {
  process.stderr.write(
    `test-servers: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
});
