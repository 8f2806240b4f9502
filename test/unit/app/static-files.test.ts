import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { resolveInside } from '../../../main/web/static-files.ts';

describe('static files: never outside the renderer bundle', () => {
  const root = join('/srv', 'renderer');

  it('maps paths inside the root', () => {
    assert.equal(resolveInside(root, '/'), join(root, 'index.html'));
    assert.equal(resolveInside(root, '/assets/index-1.js'), join(root, 'assets', 'index-1.js'));
    assert.equal(resolveInside(root, '/a%20b.png'), join(root, 'a b.png'));
  });

  it('refuses traversal, encoded traversal, NUL and bad escapes', () => {
    assert.equal(resolveInside(root, '/../etc/passwd'), null);
    assert.equal(resolveInside(root, '/assets/../../etc/passwd'), null);
    assert.equal(resolveInside(root, '/%2e%2e/%2e%2e/etc/passwd'), null);
    assert.equal(resolveInside(root, '/..%2fetc%2fpasswd'), null);
    assert.equal(resolveInside(root, '/index.html%00.js'), null);
    assert.equal(resolveInside(root, '/%E0%A4%A'), null);
  });
});
