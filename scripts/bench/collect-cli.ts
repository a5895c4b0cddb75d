/**
 * One `polisen-collector collect` through the built CLI, as cron runs it, measured (wall time, peak RSS)
 * and checked: a run that failed or did other work than expected is an error, never a timing.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ChildMeasurement, measureNodeOk } from './measure-child.js';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(PROJECT_ROOT, 'dist/src/cli.js');

export interface CollectSummary {
  outcome: string;
  new: number;
  objects: number;
  ms: Record<string, number>;
}

export interface CollectRun extends ChildMeasurement {
  summary: CollectSummary;
}

export function assertBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (npm run bench does)`);
}

function summaryOf(stdout: string): CollectSummary | undefined {
  const lines = stdout.split('\n').filter((l) => l.startsWith('{'));
  for (const line of lines.reverse()) {
    const parsed = JSON.parse(line) as Partial<CollectSummary>;
    if (typeof parsed.outcome === 'string') return parsed as CollectSummary;
  }
  return undefined;
}

/** Runs collect; `expect` is what the summary must say (new events, and objects written when given). */
export async function timedCollect(
  env: Record<string, string>,
  expect: { new: number; objects?: number },
): Promise<CollectRun> {
  const run = await measureNodeOk([CLI, 'collect'], env);
  const summary = summaryOf(run.stdout);
  if (
    summary?.outcome !== 'success' ||
    summary.new !== expect.new ||
    (expect.objects !== undefined && summary.objects !== expect.objects)
  ) {
    throw new Error(
      `collect did not do the expected work (${JSON.stringify(expect)}): ${JSON.stringify(summary)}\n${run.stdout.slice(-2000)}`,
    );
  }
  return { ...run, summary };
}
