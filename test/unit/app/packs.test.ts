import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { packsIn, resolvePackDir } from '../../../main/app/packs.ts';

describe('desktop app: which pack the engine loads', () => {
  const models = mkdtempSync(join(tmpdir(), 'studio-models-'));
  after(() => rmSync(models, { recursive: true, force: true }));
  for (const name of ['zeta-pack', 'alpha-pack']) {
    mkdirSync(join(models, name));
    writeFileSync(join(models, name, 'manifest.json'), '{}');
  }
  mkdirSync(join(models, 'toolchain'));
  mkdirSync(join(models, '.venv'));

  it('lists only folders with a manifest, sorted', () => {
    assert.deepEqual(packsIn(models), [join(models, 'alpha-pack'), join(models, 'zeta-pack')]);
    assert.deepEqual(packsIn(join(models, 'missing')), []);
  });

  it('prefers --pack, then $UNCLIP_PACK, then the first shipped pack, then the dev fallback', () => {
    const base = { modelsDir: models, devFallback: '/repo/test/fixtures/tiny-pack' };
    assert.equal(resolvePackDir({ ...base, flag: 'my/pack', env: '/env/pack' }), resolve('my/pack'));
    assert.equal(resolvePackDir({ ...base, flag: undefined, env: '/env/pack' }), '/env/pack');
    assert.equal(resolvePackDir({ ...base, flag: undefined, env: ' ' }), join(models, 'alpha-pack'));
    assert.equal(
      resolvePackDir({ ...base, modelsDir: join(models, 'none'), flag: undefined, env: undefined }),
      '/repo/test/fixtures/tiny-pack',
    );
    assert.equal(
      resolvePackDir({ modelsDir: join(models, 'none'), devFallback: null, flag: undefined, env: undefined }),
      undefined,
    );
  });
});
