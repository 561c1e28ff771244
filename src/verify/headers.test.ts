import { describe, expect, it } from 'vitest';
import { hasSignatureHeaders, headerValue } from './headers.js';

describe('headerValue', () => {
  it('counts a header present but empty or blank as absent (CONTRACT §3)', () => {
    expect(headerValue({}, 'content-type')).toBeUndefined();
    expect(headerValue({ 'content-type': '' }, 'content-type')).toBeUndefined();
    expect(headerValue({ 'content-type': '  ' }, 'content-type')).toBeUndefined();
    expect(headerValue({ 'webhook-id': ['', ' '] }, 'webhook-id')).toBeUndefined();
    expect(hasSignatureHeaders({ 'webhook-signature': '', 'webhook-timestamp': ' ' })).toBe(false);
  });

  it('trims the value, and takes the first non-blank one of a repeated header', () => {
    expect(headerValue({ 'webhook-id': ' msg_1 ' }, 'webhook-id')).toBe('msg_1');
    expect(headerValue({ 'webhook-id': ['', ' msg_2', 'msg_3'] }, 'webhook-id')).toBe('msg_2');
  });
});
