import { describe, expect, it } from 'vitest';
import { mediaType } from './json-body.ts';

describe('mediaType', () => {
  it('the media type is read from the header, parameters and case aside', () => {
    expect(mediaType('Application/JSON; charset=utf-8')).toBe('application/json');
    expect(mediaType(undefined)).toBeNull();
    expect(mediaType(' ')).toBeNull();
  });
});
