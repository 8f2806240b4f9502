import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { newToken, requestToken, tokenMatches } from '../../../main/web/token.ts';

const request = (headers: Record<string, string>): IncomingMessage => ({ headers }) as unknown as IncomingMessage;

describe('web token', () => {
  it('is fresh, long and URL-safe', () => {
    const a = newToken();
    const b = newToken();
    assert.notEqual(a, b);
    assert.match(a, /^[A-Za-z0-9_-]{43}$/);
  });

  it('matches only the exact token', () => {
    const token = newToken();
    assert.ok(tokenMatches(token, token));
    assert.ok(!tokenMatches(token, token.slice(0, -1)));
    assert.ok(!tokenMatches(token, `${token}x`));
    assert.ok(!tokenMatches(token, token.toUpperCase()));
    assert.ok(!tokenMatches(token, ''));
    assert.ok(!tokenMatches(token, undefined));
    assert.ok(!tokenMatches(token, null));
  });

  it('is read from the Authorization header, X-Studio-Token or ?token=', () => {
    const url = new URL('http://127.0.0.1/api/health?token=fromquery');
    assert.equal(requestToken(request({ authorization: 'Bearer abc' }), url), 'abc');
    assert.equal(requestToken(request({ 'x-studio-token': 'def' }), url), 'def');
    assert.equal(requestToken(request({}), url), 'fromquery');
    assert.equal(requestToken(request({}), new URL('http://127.0.0.1/api/health')), undefined);
  });
});
