/**
 * The replay script end to end: recorded responses → one real `collect` process each → audit. Runs the
 * built CLI (npm test builds first).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../src/core/fingerprint.js';
import { runChild } from './support/child-process.js';
import { assertBuilt, PROJECT_ROOT } from './support/cli.js';
import { loadReplay, REPLAY_FILE, REPLAY_SKIP_REASON, replayFileAvailable } from './support/replay-file.js';

const available = replayFileAvailable();
if (!available) console.warn(REPLAY_SKIP_REASON);

interface Figures {
  examples: Record<string, unknown[]>;
  runsOk: number;
  runsFailed: number;
  unexpectedExits: number;
  idsStored: number;
  duplicates: number;
  missed: number;
  extra: number;
  misplaced: number;
  updatesStored: number;
  updatesInvented: number;
  auditOk: boolean;
  metadataBytes: number;
  msPerRun: number;
}

interface ReplayOutput {
  from: number;
  to: number;
  responsesReplayed: number;
  nonArrayResponses: number;
  distinctIdsExpected: number;
  contentChangesSeen: number;
  collector: Figures;
  seed: Figures;
  ok: boolean;
}

interface Run {
  code: number | null;
  output: ReplayOutput | undefined;
  stderr: string;
}

async function replay(from: number, count: number): Promise<Run> {
  assertBuilt();
  const run = await runChild(
    'npx',
    ['tsx', 'scripts/replay.ts', REPLAY_FILE, '--from', String(from), '--count', String(count)],
    { cwd: PROJECT_ROOT, env: process.env, timeoutMs: 150_000 },
  );
  let output: ReplayOutput | undefined;
  try {
    output = JSON.parse(run.stdout) as ReplayOutput;
  } catch {
    output = undefined;
  }
  return { code: run.code, output, stderr: run.stderr };
}

/** What the slice served, computed here, not by the script: non-array bodies and content changes. */
async function expectedOf(from: number, count: number): Promise<{ empties: number; changes: number }> {
  const { responses, versions } = await loadReplay();
  const last = new Map<number, string>();
  let empties = 0;
  let changes = 0;
  for (const response of responses.slice(from, from + count)) {
    if (response.versions === undefined) {
      empties++;
      continue;
    }
    for (const v of response.versions) {
      const event = versions[v] as { id: number };
      const content = canonicalJson(event);
      const previous = last.get(event.id);
      if (previous !== undefined && previous !== content) changes++;
      last.set(event.id, content);
    }
  }
  return { empties, changes };
}

function expectCollectorExact(run: Run, expected: { empties: number; changes: number }): void {
  if (run.output === undefined) throw new Error(`replay printed no JSON (exit ${run.code}): ${run.stderr}`);
  const { output } = run;
  const c = output.collector;
  expect(
    {
      duplicates: c.duplicates,
      missed: c.missed,
      extra: c.extra,
      misplaced: c.misplaced,
      invented: c.updatesInvented,
      unexpectedExits: c.unexpectedExits,
    },
    `examples: ${JSON.stringify(c.examples)}`,
  ).toEqual({
    duplicates: 0,
    missed: 0,
    extra: 0,
    misplaced: 0,
    invented: 0,
    unexpectedExits: 0,
  });
  expect(c.runsFailed).toBe(expected.empties);
  expect(c.runsOk).toBe(output.responsesReplayed - expected.empties);
  expect(output.nonArrayResponses).toBe(expected.empties);
  expect(c.idsStored).toBe(output.distinctIdsExpected);
  expect(output.contentChangesSeen).toBe(expected.changes);
  expect(c.updatesStored).toBeGreaterThanOrEqual(Math.ceil(0.99 * expected.changes));
  expect(c.auditOk).toBe(true);
  expect(output.ok).toBe(true);
  expect(run.code).toBe(0);
}

describe('npm run replay', () => {
  const runs = new Map<string, Run>();
  // Both slices at once: each is one sequential chain of processes.
  beforeAll(async () => {
    if (!available) return;
    const [a, b] = await Promise.all([replay(1000, 120), replay(0, 40)]);
    runs.set('1000+120', a);
    runs.set('0+40', b);
  }, 160_000);

  it.skipIf(!available)(
    'responses 1000–1119 (an empty body at 1083, content changes): every id once, edits stored',
    async () => {
      const expected = await expectedOf(1000, 120);
      expect(expected.empties).toBeGreaterThan(0);
      expect(expected.changes).toBeGreaterThan(0);
      const run = runs.get('1000+120')!;
      expectCollectorExact(run, expected);
      expect(run.output).toMatchObject({ from: 1000, to: 1119, responsesReplayed: 120 });
      // The seed ran over the same slice: it never stores edits, and failed on the same empty body.
      expect(run.output!.seed.updatesStored).toBe(0);
      expect(run.output!.seed.runsFailed).toBe(expected.empties);
      expect(run.stderr).toMatch(/replay: collector 100\/120 runs/);
    },
  );

  it.skipIf(!available)('responses 0–39: a fresh store from the first recorded response', async () => {
    const expected = await expectedOf(0, 40);
    const run = runs.get('0+40')!;
    expectCollectorExact(run, expected);
    expect(run.output).toMatchObject({ from: 0, to: 39, responsesReplayed: 40 });
    expect(run.output!.collector.metadataBytes).toBeGreaterThan(0);
  });
});
