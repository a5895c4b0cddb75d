/**
 * Runs the built CLI (`dist/src/cli.js`, as `npm test` builds it first) as a child process, the way
 * cron does, and parses its JSON log lines.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The built CLI; POLISEN_TEST_CLI points the tests at another build (e.g. a private copy while others rebuild dist/). */
export const CLI = process.env.POLISEN_TEST_CLI ?? path.join(PROJECT_ROOT, 'dist/src/cli.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout lines parsed as JSON (non-JSON lines are skipped). */
  lines: Record<string, unknown>[];
  ms: number;
}

export function assertBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);
}

export function runCli(
  args: string[],
  env: Record<string, string | undefined>,
  options: { timeoutMs?: number } = {},
): Promise<CliResult> {
  assertBuilt();
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const lines: Record<string, unknown>[] = [];
      for (const line of stdout.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // not a log line
        }
      }
      resolve({ code, signal, stdout, stderr, lines, ms: performance.now() - t0 });
    });
  });
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
