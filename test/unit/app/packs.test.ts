import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { packsIn, resolvePackDir } from '../../../main/app/packs.ts';
import { defaultPackDir, REPO_ROOT } from '../../../main/engine/packs.ts';

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

describe('engine and CLI: the default pack', () => {
  it('is the embedded emoji pack (models/emoji-tiny) unless $UNCLIP_PACK names another', () => {
    const saved = process.env.UNCLIP_PACK;
    try {
      delete process.env.UNCLIP_PACK;
      assert.equal(defaultPackDir(), join(REPO_ROOT, 'models', 'emoji-tiny'));
      process.env.UNCLIP_PACK = 'some/pack';
      assert.equal(defaultPackDir(), resolve('some/pack'));
    } finally {
      if (saved === undefined) delete process.env.UNCLIP_PACK;
      else process.env.UNCLIP_PACK = saved;
    }
  });
});
