import type { Config } from '../config.js';
// placeholder while the command is being written
export async function backfillCommand(_config: Config, _opts: unknown): Promise<number> {
  process.stderr.write('not implemented yet\n');
  return 1;
}
