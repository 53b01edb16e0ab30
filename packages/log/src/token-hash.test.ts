import { describe, expect, it } from 'vitest';
import { tokenHash } from './token-hash.ts';

describe('tokenHash', () => {
  it('is short, stable and does not contain the token', () => {
    const token = 'a'.repeat(64);
    expect(tokenHash(token)).toHaveLength(12);
    expect(tokenHash(token)).toBe(tokenHash(token));
    expect(tokenHash(token)).not.toBe(tokenHash('b'.repeat(64)));
    expect(token.includes(tokenHash(token))).toBe(false);
  });
});
