import { afterAll, beforeAll } from '@jest/globals';
import nock from 'nock';

/**
 * Each test file gets its own nock instance (jest's module registry):
 * activate it for the file, forbid real connections, and restore plain http
 * afterwards, or two instances fight over the same patched module.
 */
export function useNock(): void {
  beforeAll(() => {
    if (!nock.isActive()) nock.activate();
    nock.disableNetConnect();
  });
  afterAll(() => {
    nock.enableNetConnect();
    nock.restore();
  });
}
