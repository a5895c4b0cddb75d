/** `polisen-collector health`: one line and an exit code, for monitors, systemd and scripts. */
import type { Config } from '../config.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from '../errors.js';
import { evaluateHealth, parseDuration } from '../ops/health-check.js';
import { readRunStatus } from '../ops/run-status.js';

export async function healthCommand(config: Config, maxAge: string): Promise<number> {
  let maxAgeMs: number;
  try {
    maxAgeMs = parseDuration(maxAge);
  } catch (error) {
    process.stderr.write(`polisen-collector: configuration error: --max-age: ${(error as Error).message}\n`);
    return EXIT_USAGE;
  }
  let status: Awaited<ReturnType<typeof readRunStatus>>;
  try {
    status = await readRunStatus(config.stateDir);
  } catch (error) {
    process.stdout.write(
      `UNKNOWN: cannot read the run status in ${config.stateDir}: ${(error as Error).message}\n`,
    );
    return EXIT_FAILED;
  }
  const verdict = evaluateHealth(status, new Date(), maxAgeMs, config.stateDir);
  process.stdout.write(`${verdict.ok ? 'OK' : 'CRITICAL'}: ${verdict.line}\n`);
  return verdict.ok ? EXIT_OK : EXIT_FAILED;
}
