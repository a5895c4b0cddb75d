/**
 * Runs the built CLI (`dist/src/cli.js`, as `npm test` builds it first) as a child process, the way
 * cron does, and parses its JSON log lines.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ChildResult, runChild } from './child-process.js';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The built CLI; POLISEN_TEST_CLI points the tests at another build (e.g. a private copy while others rebuild dist/). */
export const CLI = process.env.POLISEN_TEST_CLI ?? path.join(PROJECT_ROOT, 'dist/src/cli.js');

export interface CliResult extends ChildResult {
  /** stdout lines parsed as JSON (non-JSON lines are skipped). */
  lines: Record<string, unknown>[];
}

export function assertBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);
}

export async function runCli(
  args: string[],
  env: Record<string, string | undefined>,
  options: { timeoutMs?: number } = {},
): Promise<CliResult> {
  assertBuilt();
  const result = await runChild(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } as NodeJS.ProcessEnv,
    timeoutMs: options.timeoutMs,
  });
  const lines: Record<string, unknown>[] = [];
  for (const line of result.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // not a log line
    }
  }
  return { ...result, lines };
}

/** The summary line of a collect run (the last line carrying an `outcome`). */
export function summaryLine(result: CliResult): Record<string, unknown> | undefined {
  return result.lines.filter((l) => 'outcome' in l).at(-1);
}

/** A fresh temporary directory, removed by the returned cleanup. */
export function tempDir(prefix = 'polisen-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Environment for a collect run against a local feed and a local store, pacing off. */
export function localEnv(
  feedUrl: string,
  dir: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    POLISEN_API_URL: feedUrl,
    COLLECTOR_STORE: path.join(dir, 'store'),
    COLLECTOR_STATE_DIR: path.join(dir, 'state'),
    POLISEN_PACING: 'off',
    API_CONTACT_EMAIL: 'tests@example.org',
    ...extra,
  };
}
