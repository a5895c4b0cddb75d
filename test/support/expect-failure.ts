/** Awaits a call that must fail with a CollectorError, and returns that error for more assertions. */
import { expect } from 'vitest';
import { CollectorError } from '../../src/errors.js';

export async function expectCollectorError(
  call: Promise<unknown> | (() => Promise<unknown>),
): Promise<CollectorError> {
  try {
    await (typeof call === 'function' ? call() : call);
  } catch (error) {
    expect(error).toBeInstanceOf(CollectorError);
    return error as CollectorError;
  }
  throw new Error('expected a failure');
}
