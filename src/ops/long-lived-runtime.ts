/**
 * Runtime settings for a process that runs collection after collection: `backfill` (hours long) and the
 * benchmark's in-process replay of the recorded year (BENCHMARKS.md, figure 5). A cron `collect` is one run
 * per process and never needs them.
 *
 * Without them such a process grows by about 45 MB of RSS in its first few hundred runs, though its JavaScript
 * heap after a full GC stays at 6 MB: V8 doubles the young generation up to 32 MB while runs follow each other
 * (+26 MB), lets the old generation fill to about 15 MB before it collects it (+8.5 MB), and glibc gives each
 * of V8's worker threads a malloc arena of its own, where the optimizing compiler's temporary memory stays
 * (+3.4 MB; the main arena +3.7 MB). Measured on the replay, 10,184 runs back to back.
 *
 * V8 reads these sizes when it starts, and glibc reads MALLOC_ARENA_MAX when the process starts, so the CLI
 * relaunches `backfill` with them (relaunchWithLongLivedRuntime). The first process only waits and passes
 * signals on: about 9 MB of its own memory (the node binary's pages are shared with the child).
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

/**
 * Node/V8 flags, measured on the replay (peak RSS after 10,184 runs / after the first; BENCHMARKS.md §5):
 * - the young generation stays at 2 MB (1 MB semi-spaces) instead of doubling to 32 MB;
 * - the old generation may grow by 20 % over what survives a full GC (V8 allows up to 4×), and incremental
 *   marking starts as soon as it passes V8's own 8 MB threshold instead of near its limit;
 * - the optimizing compiler (TurboFan) only for the fingerprint's per-character hash loops (Hasher.text and
 *   Hasher.textVerbatim in core/fingerprint.ts; the filter matches function names starting with `text`),
 *   everything else runs in the interpreter and its baseline compiler (Sparkplug). TurboFan's compilations of
 *   the large functions (runCollect, assembleRunPlan, the store's) happen in the first few hundred runs, each
 *   holds megabytes of compiler memory (`--turbo-stats`) and leaves optimized code behind: optimizing
 *   everything, the replay's peak RSS ends 9 MB above the first run's (1.11 ×); only the hash loops, 4 MB
 *   (1.05 ×); nothing at all, 1.05 × too, but the hash then takes a third of the CPU. Capping TurboFan to
 *   small functions (`--max-optimized-bytecode-size=2000`) kept most of the growth (1.11 ×).
 * The cost is CPU in a loop of runs with no pause: about 1.2 × the CPU time per run in the replay
 * (BENCHMARKS.md §4). A backfill waits at least 10 s between API calls (pacing on), where a few ms more per
 * run is nothing.
 */
export const LONG_LIVED_NODE_FLAGS: readonly string[] = [
  '--max-semi-space-size=1',
  '--heap-growing-percent=20',
  '--incremental-marking-soft-trigger=20',
  '--incremental-marking-hard-trigger=30',
  '--turbo-filter=text*',
];

/** One malloc arena: V8's worker threads share the main thread's instead of keeping one each. */
export const LONG_LIVED_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '1' };

/**
 * Set to 1 in the relaunched process. Set it yourself to run `backfill` in the first process, without these
 * settings (for example, when you pass your own flags).
 */
export const RELAUNCHED_ENV = 'POLISEN_COLLECTOR_RELAUNCHED';

const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export function hasLongLivedRuntime(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[RELAUNCHED_ENV] === '1';
}

/** The environment of the relaunched process: the settings, unless the caller set them already. */
export function longLivedEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...LONG_LIVED_ENV, ...env, [RELAUNCHED_ENV]: '1' };
}

/** The node arguments of the relaunched process: the settings first, so that flags the caller gave win. */
export function longLivedNodeArgs(execArgv: readonly string[], argv: readonly string[]): string[] {
  return [...LONG_LIVED_NODE_FLAGS, ...execArgv, ...argv.slice(1)];
}

/**
 * Runs this same command line again in a child node with the settings, passes SIGINT/SIGTERM/SIGHUP on,
 * and resolves to the child's exit code. A child killed by a signal is mirrored: this process kills
 * itself with the same signal. Resolves undefined when the child could not be started (the caller then
 * runs the command itself, without the settings).
 */
export function relaunchWithLongLivedRuntime(): Promise<number | undefined> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, longLivedNodeArgs(process.execArgv, process.argv), {
      env: longLivedEnv(process.env),
      // The IPC channel only tells the child when this process is gone (see watchParent).
      stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    });
    const forward = (signal: NodeJS.Signals): void => {
      child.kill(signal);
    };
    const stopForwarding = (): void => {
      for (const signal of FORWARDED_SIGNALS) process.off(signal, forward);
    };
    for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
    child.once('error', (error) => {
      stopForwarding();
      process.stderr.write(
        `polisen-collector: could not relaunch with the long-run settings (${error.message}); running without them\n`,
      );
      resolve(undefined);
    });
    child.once('exit', (code, signal) => {
      stopForwarding();
      if (signal !== null) {
        process.kill(process.pid, signal);
        // Still here: the signal is one node ignores (SIGPIPE); exit as a shell reports a signal death.
        resolve(128 + (constants.signals[signal] ?? 0));
        return;
      }
      resolve(code ?? 1);
    });
  });
}

/**
 * In the relaunched process: when the first process is killed outright (SIGKILL, which it cannot pass on),
 * the child is killed the same way instead of running on unseen. A kill at any point is safe: the next run
 * records the objects it left unrecorded (run/collect-run.ts).
 */
export function watchParent(): void {
  const channel = process.channel;
  if (!channel) return;
  channel.unref();
  process.once('disconnect', () => {
    process.kill(process.pid, 'SIGKILL');
  });
}
