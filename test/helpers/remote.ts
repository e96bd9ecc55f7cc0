import { RemoteError } from '../../src/core/remote-error.js';

/** The RemoteError a call fails with (anything else, or no failure, fails the test). */
export async function failure(p: Promise<unknown>): Promise<RemoteError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof RemoteError) return e;
    throw e;
  }
  throw new Error('expected a RemoteError');
}
