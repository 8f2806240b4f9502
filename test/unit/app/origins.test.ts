import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  APP_ENTRY_URL,
  CONTENT_SECURITY_POLICY,
  devOrigin,
  isStudioUrl,
  isTrustedSender,
} from '../../../main/app/origins.ts';

describe('app origins: who may call IPC and be navigated to', () => {
  const dev = devOrigin('http://localhost:5173/');

  it('trusts the studio page in a top-level frame', () => {
    assert.ok(isTrustedSender({ url: APP_ENTRY_URL, parent: null }, null));
    assert.ok(isTrustedSender({ url: 'app://bundle/some/view', parent: null }, null));
  });

  it('refuses subframes, destroyed frames and foreign pages', () => {
    assert.ok(!isTrustedSender({ url: APP_ENTRY_URL, parent: {} }, null), 'subframe');
    assert.ok(!isTrustedSender(null, null), 'destroyed frame');
    assert.ok(!isTrustedSender({ url: 'app://evil/index.html', parent: null }, null));
    assert.ok(!isTrustedSender({ url: 'https://example.com/', parent: null }, null));
    assert.ok(!isTrustedSender({ url: 'file:///etc/passwd', parent: null }, null));
    assert.ok(!isTrustedSender({ url: 'not a url', parent: null }, null));
  });

  it('allows the dev server only when one is configured', () => {
    assert.equal(dev, 'http://localhost:5173');
    assert.ok(isStudioUrl('http://localhost:5173/index.html', dev));
    assert.ok(!isStudioUrl('http://localhost:5173/index.html', null));
    assert.ok(!isStudioUrl('http://localhost:5174/', dev));
    assert.ok(!isStudioUrl('http://localhost:5173.evil.com/', dev));
    assert.equal(devOrigin('javascript:alert(1)'), null);
    assert.equal(devOrigin(undefined), null);
  });

  it('sends a strict CSP', () => {
    for (const directive of [
      "default-src 'self'",
      "script-src 'self'",
      "object-src 'none'",
      "base-uri 'none'",
      "frame-ancestors 'none'",
    ]) {
      assert.ok(CONTENT_SECURITY_POLICY.includes(directive), directive);
    }
    assert.ok(!CONTENT_SECURITY_POLICY.includes('unsafe-eval'));
  });
});
