/**
 * Runs a Node child process and measures its wall time (here, from spawn to exit) and its peak RSS
 * (GNU time's %M, from the kernel's rusage), so the child loads exactly what it would load under cron.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

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
export function measureNode(
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<ChildMeasurement> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(GNU_TIME, ['-f', `${MARKER}%M`, process.execPath, ...args], {
      env,
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
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      const wallMs = performance.now() - t0;
      clearTimeout(timer);
      const at = stderr.lastIndexOf(MARKER);
      const maxRssKb = at < 0 ? Number.NaN : Number.parseInt(stderr.slice(at + MARKER.length), 10);
      if (!Number.isFinite(maxRssKb)) {
        reject(new Error(`no peak RSS from ${GNU_TIME} for node ${args.join(' ')}: ${stderr.slice(-500)}`));
        return;
      }
      resolve({ wallMs, maxRssKb, code, stdout, stderr: stderr.slice(0, at) });
    });
  });
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
