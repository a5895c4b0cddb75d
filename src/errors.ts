/**
 * Every error the collector reports, with a stable code, the exit code it maps to and what to do.
 * Kept in one place (as undici does) so that logs, tests and the README agree on the codes.
 */

export const EXIT_OK = 0;
/** The run failed (network, store, bad feed body, budget exhausted): try again later. */
export const EXIT_FAILED = 1;
/** Usage or configuration error: fix the command line or the environment. */
export const EXIT_USAGE = 2;

export const ERROR_CODES = {
  E_CONFIG: { exit: EXIT_USAGE, hint: 'fix the setting named above (see `polisen-collector --help`)' },
  E_FEED_NETWORK: {
    exit: EXIT_FAILED,
    hint: 'check the network and POLISEN_API_URL; the next run will retry',
  },
  E_FEED_HTTP: { exit: EXIT_FAILED, hint: 'the API answered with an error; the next run will retry' },
  E_FEED_NOT_FOUND: {
    exit: EXIT_USAGE,
    hint: 'the API answered 404, which is permanent: check POLISEN_API_URL',
  },
  E_FEED_BODY: {
    exit: EXIT_FAILED,
    hint: 'the API sent a body that is not a JSON array; nothing was written, the next run will retry',
  },
  E_FEED_TOO_LARGE: {
    exit: EXIT_FAILED,
    hint: 'the response exceeded the body size cap; nothing was written',
  },
  E_STORE: {
    exit: EXIT_FAILED,
    hint: 'the store failed; nothing was committed, the next run will reconcile and retry',
  },
  E_STORE_PRECONDITION: { exit: EXIT_FAILED, hint: 'another writer changed the object; retry' },
  E_STORE_AUTH: {
    exit: EXIT_USAGE,
    hint: 'the store refused the credentials: check the OCI user, fingerprint and key',
  },
  E_STORE_CONFIG: { exit: EXIT_USAGE, hint: 'check COLLECTOR_STORE and the store settings' },
  E_METADATA: {
    exit: EXIT_FAILED,
    hint: 'metadata/last_seen.json is unreadable; fix or remove it (run `polisen-collector audit`)',
  },
  E_CONFLICT: { exit: EXIT_FAILED, hint: 'other runs kept changing the metadata; the next run will retry' },
  E_SECRETS_CONFIG: { exit: EXIT_USAGE, hint: 'fix the Vault or OCI credential settings named above' },
  E_SECRETS_UNAVAILABLE: {
    exit: EXIT_FAILED,
    hint: 'Vault could not be reached or is sealed; the next run will retry',
  },
  E_PACING_BUDGET: { exit: EXIT_FAILED, hint: 'the API call budget is spent; wait for it to refill' },
  E_LOCKED: { exit: EXIT_OK, hint: 'another run is in progress on this host' },
  E_HEALTH: { exit: EXIT_FAILED, hint: 'see the last run status in the state directory' },
  E_INTERNAL: { exit: EXIT_FAILED, hint: 'this is a bug: please report it with the log line' },
} as const satisfies Record<string, { exit: number; hint: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class CollectorError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: number;
  readonly hint: string;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown; hint?: string; exitCode?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CollectorError';
    this.code = code;
    this.exitCode = options?.exitCode ?? ERROR_CODES[code].exit;
    this.hint = options?.hint ?? ERROR_CODES[code].hint;
  }
}

/** A conditional put (if-match / if-none-match) lost: the object changed or already exists. */
export class PreconditionFailedError extends CollectorError {
  constructor(objectName: string, options?: { cause?: unknown }) {
    super('E_STORE_PRECONDITION', `precondition failed for ${objectName}`, options);
    this.name = 'PreconditionFailedError';
  }
}

export function isCollectorError(error: unknown): error is CollectorError {
  return error instanceof CollectorError;
}

/** One line for a human: what went wrong, then what to do. */
export function describeError(error: unknown): { code: ErrorCode; exitCode: number; line: string } {
  if (isCollectorError(error)) {
    return {
      code: error.code,
      exitCode: error.exitCode,
      line: `${error.message} (${error.code}): ${error.hint}`,
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  return {
    code: 'E_INTERNAL',
    exitCode: EXIT_FAILED,
    line: `unexpected error: ${message} (E_INTERNAL): ${ERROR_CODES.E_INTERNAL.hint}`,
  };
}
