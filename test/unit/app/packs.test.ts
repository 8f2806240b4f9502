import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { defaultAppPack, packsIn } from '../../../main/app/packs.ts';
import { defaultPackDir, REPO_ROOT } from '../../../main/engine/packs.ts';
import { resolveStartup } from '../../../main/service/startup.ts';

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

  it('prefers --pack, then $UNCLIP_PACK, then the saved pack, then the first shipped pack, then the dev fallback', () => {
    const dev = '/repo/test/fixtures/tiny-pack';
    const pick = (flag: string | undefined, env: string | undefined, saved?: string, modelsDir = models) =>
      resolveStartup({
        flags: { pack: flag },
        env: env === undefined ? {} : { UNCLIP_PACK: env },
        settings: { settings: { theme: 'system', ...(saved ? { pack: saved } : {}) } },
        defaultLibraryDir: '/lib',
        defaultPack: () => defaultAppPack(modelsDir, dev),
      }).packDir;
    const zeta = join(models, 'zeta-pack');
    assert.equal(pick('my/pack', '/env/pack', zeta), resolve('my/pack'));
    assert.equal(pick(undefined, '/env/pack', zeta), '/env/pack');
    assert.equal(pick(undefined, ' ', zeta), zeta);
    assert.equal(pick(undefined, ' '), join(models, 'alpha-pack'));
    assert.equal(pick(undefined, undefined, join(models, 'gone')), join(models, 'alpha-pack'));
    assert.equal(pick(undefined, undefined, undefined, join(models, 'none')), dev);
    assert.equal(defaultAppPack(join(models, 'none'), null), undefined);
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
