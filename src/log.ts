/**
 * pino, configured once: JSON lines on stdout (synchronous, so no line is lost when the process
 * exits), human-readable when stdout is a terminal, secrets redacted by path.
 */
import pino, { type Logger } from 'pino';

export type { Logger };

/** Field paths that may carry secrets; their values are replaced before a line is written. */
export const REDACT_PATHS = [
  'token',
  'secretId',
  'secret_id',
  'privateKey',
  'private_key',
  'passphrase',
  'password',
  'authorization',
  '*.token',
  '*.secretId',
  '*.secret_id',
  '*.privateKey',
  '*.private_key',
  '*.passphrase',
  '*.password',
  '*.authorization',
  'headers["x-vault-token"]',
  '*.headers["x-vault-token"]',
  '*.headers.authorization',
];

export interface LoggerOptions {
  level: string;
  /** Defaults to whether stdout is a terminal. */
  pretty?: boolean;
  /** For tests: where lines go instead of stdout. */
  destination?: pino.DestinationStream;
}

export async function createLogger(options: LoggerOptions): Promise<Logger> {
  const base: pino.LoggerOptions = {
    level: options.level,
    base: { pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  if (options.destination) return pino(base, options.destination);
  const pretty = options.pretty ?? process.stdout.isTTY === true;
  if (pretty) {
    // Loaded only on a terminal: cron and CI never pay for it.
    const { default: pinoPretty } = await import('pino-pretty');
    return pino(
      base,
      pinoPretty({ colorize: true, sync: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' }),
    );
  }
  return pino(base, pino.destination({ dest: 1, sync: true }));
}
