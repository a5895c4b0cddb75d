/**
 * The scope of one OCI SDK call (its abort signal, what the transport saw, where its console output
 * goes), and the routing of the SDK's own logging into our logger. The SDK writes console.warn lines
 * from its retrier on every failed call, even an ordinary 404; they must not reach stdout.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { format } from 'node:util';
import { LOG } from 'oci-common';

export interface OciStoreLogger {
  warn(obj: object, msg: string): void;
  /** Retries go here when given: a retry that then succeeds is not worth a warning. */
  debug?(obj: object, msg: string): void;
}

const SDK_RETRIER_LINES =
  /^(Request cannot be retried|All retry attempts have exhausted|Request failed with Exception)/;

// ---------------------------------------------------------------------------------------------
// Scope of one SDK call: its console sink, its abort signal, and what the transport saw.

export interface SdkCallScope {
  console(method: ConsoleMethod, args: unknown[]): void;
  signal?: AbortSignal;
  /** Retry-After of the last answer, in ms. */
  retryAfterMs?: number;
  /** The error fetch threw; the SDK retrier replaces it with a plain object without the cause. */
  transportError?: unknown;
}

export const sdkScope = new AsyncLocalStorage<SdkCallScope>();

const CONSOLE_METHODS = ['log', 'info', 'warn', 'error', 'debug'] as const;
export type ConsoleMethod = (typeof CONSOLE_METHODS)[number];
const routedConsoleFunctions = new WeakSet<object>();

/**
 * Makes console.* send lines written inside an SDK call to that call's sink. Re-checked on every call,
 * so a console method replaced later (a test spy, another library) is wrapped again; lines outside an
 * SDK call go to whatever console method was there before.
 */
export function routeSdkConsole(): void {
  for (const method of CONSOLE_METHODS) {
    const previous = console[method];
    if (routedConsoleFunctions.has(previous)) continue;
    const routed = (...args: unknown[]): void => {
      const scope = sdkScope.getStore();
      if (scope === undefined) previous.apply(console, args);
      else scope.console(method, args);
    };
    routedConsoleFunctions.add(routed);
    console[method] = routed;
  }
}

export function consoleSink(logger: OciStoreLogger | undefined): SdkCallScope['console'] {
  return (method, args) => {
    const line = format(...args);
    if (logger === undefined || SDK_RETRIER_LINES.test(line) || method === 'debug') return;
    logger.warn({ source: 'oci-sdk', console: method }, line.slice(0, 1000));
  };
}

export function routeSdkLog(logger: OciStoreLogger): void {
  const toWarn = (...args: unknown[]): void =>
    logger.warn({ source: 'oci-sdk' }, format(...args).slice(0, 1000));
  const ignore = (): void => {};
  LOG.logger = { level: 'warn', debug: ignore, info: ignore, trace: ignore, warn: toWarn, error: toWarn };
}
