import { describe, expect, it } from '@jest/globals';
import { bearerMatches, sameText } from '../../src/adapters/http/answers.js';

/**
 * The webhook's and the admin endpoints' bearer check (issue 16 replaced its SHA-256 digests with a comparison
 * whose time depends on the configured token's length only). What Zabbix's media type and operators' scripts
 * send must still pass, and nothing else.
 */

const TOKEN = 'bench-token-0123456789';

describe('bearerMatches', () => {
  it('takes the token as Zabbix sends it, and the spellings RFC 6750 clients use', () => {
    expect(bearerMatches(`Bearer ${TOKEN}`, TOKEN)).toBe(true);
    expect(bearerMatches(`bearer ${TOKEN}`, TOKEN)).toBe(true);
    expect(bearerMatches(`BEARER ${TOKEN}`, TOKEN)).toBe(true);
    expect(bearerMatches(`Bearer   ${TOKEN}`, TOKEN)).toBe(true);
    expect(bearerMatches(`Bearer\t${TOKEN}`, TOKEN)).toBe(true);
    expect(bearerMatches(`  Bearer ${TOKEN}  `, TOKEN)).toBe(true);
    // What trim() takes besides ASCII spaces (a no-break space is a byte HTTP allows in a header).
    expect(bearerMatches(`Bearer ${TOKEN}\u00a0`, TOKEN)).toBe(true);
    expect(bearerMatches(`Bearer \u00a0${TOKEN}`, TOKEN)).toBe(true);
  });

  it('refuses a wrong token, whatever part of it is wrong', () => {
    expect(bearerMatches(`Bearer ${TOKEN.slice(0, -1)}X`, TOKEN)).toBe(false);
    expect(bearerMatches(`Bearer X${TOKEN.slice(1)}`, TOKEN)).toBe(false);
    expect(bearerMatches(`Bearer ${TOKEN.slice(0, -1)}`, TOKEN)).toBe(false);
    expect(bearerMatches(`Bearer ${TOKEN}0`, TOKEN)).toBe(false);
    expect(bearerMatches(`Bearer ${TOKEN} extra`, TOKEN)).toBe(false);
    expect(bearerMatches(`Bearer ${TOKEN.toUpperCase()}`, TOKEN)).toBe(false);
    expect(bearerMatches('Bearer x', TOKEN)).toBe(false);
  });

  it('refuses other schemes, a bare token, an empty header, and everything when no token is configured', () => {
    expect(bearerMatches(TOKEN, TOKEN)).toBe(false);
    expect(bearerMatches(`Basic ${TOKEN}`, TOKEN)).toBe(false);
    expect(bearerMatches(`Bearer${TOKEN}`, TOKEN)).toBe(false);
    expect(bearerMatches('Bearer ', TOKEN)).toBe(false);
    expect(bearerMatches('', TOKEN)).toBe(false);
    expect(bearerMatches(undefined, TOKEN)).toBe(false);
    expect(bearerMatches('Bearer ', '')).toBe(false);
    expect(bearerMatches(`Bearer ${TOKEN}`, '')).toBe(false);
  });

  it('compares the whole text, characters outside ASCII included', () => {
    const token = 'jeton-été-ü-€-0123';
    expect(bearerMatches(`Bearer ${token}`, token)).toBe(true);
    expect(bearerMatches(`Bearer ${token.replace('€', 'E')}`, token)).toBe(false);
  });
});

describe('sameText', () => {
  it('is equality of strings, lengths included', () => {
    const words = ['', 'a', 'ab', 'abc', 'abd', 'b', 'ba', 'abcabc', '\u0000', 'a\u0000', '€', 'é'];
    for (const a of words) for (const b of words) expect(sameText(a, b)).toBe(a === b);
  });
});
