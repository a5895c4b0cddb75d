/**
 * Runs a Node child process and measures its wall time (here, from spawn to exit) and its peak RSS
 * (GNU time's %M, from the kernel's rusage), so the child loads exactly what it would load under cron.
 */

import { existsSync } from 'node:fs';
import { runChild } from '../../test/support/child-process.js';

const GNU_TIME = '/usr/bin/time';
const MARKER = 'BENCH_MAXRSS_KB=';

export interface ChildMeasurement {
  wallMs: number;
  maxRssKb: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

export function assertGnuTime(): void {
  if (!existsSync(GNU_TIME)) {
    throw new Error(
      `${GNU_TIME} is missing: the benchmark reads peak RSS from GNU time (Debian/Ubuntu: apt-get install time)`,
    );
  }
}

/** `node ...args` with exactly `env` (nothing inherited), under GNU time. */
export async function measureNode(
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<ChildMeasurement> {
  const run = await runChild(GNU_TIME, ['-f', `${MARKER}%M`, process.execPath, ...args], { env, timeoutMs });
  const at = run.stderr.lastIndexOf(MARKER);
  const maxRssKb = at < 0 ? Number.NaN : Number.parseInt(run.stderr.slice(at + MARKER.length), 10);
  if (!Number.isFinite(maxRssKb)) {
    throw new Error(`no peak RSS from ${GNU_TIME} for node ${args.join(' ')}: ${run.stderr.slice(-500)}`);
  }
  return { wallMs: run.ms, maxRssKb, code: run.code, stdout: run.stdout, stderr: run.stderr.slice(0, at) };
}

/** Like measureNode, but a non-zero exit is an error (the benchmark must only time runs that worked). */
export async function measureNodeOk(
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs?: number,
): Promise<ChildMeasurement> {
  const result = await measureNode(args, env, timeoutMs);
  if (result.code !== 0) {
    throw new Error(
      `node ${args.join(' ')} exited ${result.code}:\n${result.stderr.slice(-2000)}\n${result.stdout.slice(-2000)}`,
    );
  }
  return result;
}
