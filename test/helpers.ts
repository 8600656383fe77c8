import { expect } from 'vitest';
import { AppError } from '../src/model/error.js';

/** Expects `promise` to reject with an AppError of `status`, its message matching `message` if given. */
export async function expectAppError(
  promise: Promise<unknown>,
  status: number,
  message?: RegExp,
): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(AppError);
  expect((error as AppError).status).toBe(status);
  if (message) expect((error as AppError).message).toMatch(message);
}
