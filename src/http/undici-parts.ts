/**
 * The three parts of undici the collector uses on every run (Agent, request, the redirect
 * interceptor), loaded without the package's index. The index also loads fetch, WebSocket,
 * EventSource, caches and mocks: about 45 ms and 9 MB more at every start (measured on this
 * machine), for a process that makes one GET. Types still come from the package.
 */
import { createRequire } from 'node:module';
import type { Dispatcher, Agent as UndiciAgent } from 'undici';

const require = createRequire(import.meta.url);

export const Agent = require('undici/lib/dispatcher/agent.js') as typeof UndiciAgent;

const dispatchRequest = require('undici/lib/api/api-request.js') as (
  this: Dispatcher,
  options: Dispatcher.RequestOptions,
) => Promise<Dispatcher.ResponseData>;

export const redirectInterceptor = require('undici/lib/interceptor/redirect.js') as (options: {
  maxRedirections: number;
}) => Dispatcher.DispatcherComposeInterceptor;

export type RequestOptions = Omit<Dispatcher.RequestOptions, 'origin' | 'path'>;

/** undici's `request(url, options)` on a given dispatcher. */
export function request(
  url: URL,
  dispatcher: Dispatcher,
  options: RequestOptions,
): Promise<Dispatcher.ResponseData> {
  return dispatchRequest.call(dispatcher, {
    ...options,
    origin: url.origin,
    path: `${url.pathname}${url.search}`,
  } as Dispatcher.RequestOptions);
}
