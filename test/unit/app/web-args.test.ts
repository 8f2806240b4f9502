import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { bundledPackDir } from '../../../main/engine/packs.ts';
import { loadSettings, saveSettings } from '../../../main/service/settings.ts';
import { parseWebArgs } from '../../../main/web/serve.ts';

const NONE = { settings: { theme: 'system' as const } };

describe('web mode flags', () => {
  it('reads port, library, pack, backend and threads', () => {
    assert.deepEqual(
      parseWebArgs(
        ['--port', '8123', '--library', 'lib', '--pack', 'p', '--backend', 'cuda', '--threads', '2'],
        NONE,
        {},
      ),
      { port: 8123, libraryDir: resolve('lib'), packDir: resolve('p'), backend: 'cuda', threads: 2, warnings: [] },
    );
    const defaults = parseWebArgs([], NONE, { XDG_CONFIG_HOME: '/xdg' });
    assert.equal(defaults.port, 0);
    assert.equal(defaults.libraryDir, join('/xdg', 'unclip-studio', 'library'));
    assert.equal(defaults.packDir, bundledPackDir());
    assert.equal(defaults.backend, undefined);
    assert.equal(defaults.threads, undefined);
  });

  it('refuses bad values with one line naming the flag', () => {
    const bad: [string[], RegExp][] = [
      [['--port', '70000'], /^--port: expected an integer 0–65535 \(got 70000\)$/],
      [['--port', 'x'], /^--port: /],
      [['--threads', '0'], /^--threads: expected a positive integer \(got 0\)$/],
      [['--backend', 'tpu'], /^--backend: expected one of cpu, webgpu, cuda, dml, coreml \(got tpu\)$/],
      [['--colour', 'red'], /Unknown option '--colour'/],
    ];
    for (const [argv, message] of bad) {
      assert.throws(
        () => parseWebArgs(argv, NONE, {}),
        (err: unknown) => err instanceof Error && message.test(err.message) && !err.message.includes('\n'),
        argv.join(' '),
      );
    }
  });
});

describe('web mode: flag, then environment, then settings.json, then the default', () => {
  const root = mkdtempSync(join(tmpdir(), 'web-args-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const data = join(root, 'config', 'unclip-studio');
  const pack = (name: string): string => {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'manifest.json'), '{}');
    return dir;
  };
  const [savedPack, envPack, flagPack] = [pack('saved-pack'), pack('env-pack'), pack('flag-pack')];
  saveSettings(data, {
    theme: 'dark',
    libraryDir: join(root, 'saved-lib'),
    pack: savedPack,
    backend: 'cuda',
    threads: 3,
  });
  const saved = loadSettings(data);
  const env = {
    XDG_CONFIG_HOME: join(root, 'config'),
    UNCLIP_LIBRARY: join(root, 'env-lib'),
    UNCLIP_PACK: envPack,
    UNCLIP_BACKEND: 'dml',
    UNCLIP_THREADS: '5',
  };
  const flags = ['--library', join(root, 'flag-lib'), '--pack', flagPack, '--backend', 'coreml', '--threads', '7'];

  it('a flag wins over everything', () => {
    const o = parseWebArgs(flags, saved, env);
    assert.deepEqual([o.libraryDir, o.packDir, o.backend, o.threads], [join(root, 'flag-lib'), flagPack, 'coreml', 7]);
  });
  it('the environment wins over settings.json', () => {
    const o = parseWebArgs([], saved, env);
    assert.deepEqual([o.libraryDir, o.packDir, o.backend, o.threads], [join(root, 'env-lib'), envPack, 'dml', 5]);
  });
  it('settings.json wins over the defaults', () => {
    const o = parseWebArgs([], saved, { XDG_CONFIG_HOME: env.XDG_CONFIG_HOME });
    assert.deepEqual([o.libraryDir, o.packDir, o.backend, o.threads], [join(root, 'saved-lib'), savedPack, 'cuda', 3]);
    assert.deepEqual(o.warnings, []);
  });
  it('a saved pack that is gone: the default pack, with a one-line warning', () => {
    rmSync(join(savedPack, 'manifest.json'));
    const o = parseWebArgs([], saved, { XDG_CONFIG_HOME: env.XDG_CONFIG_HOME });
    assert.equal(o.packDir, bundledPackDir());
    assert.equal(o.warnings.length, 1);
    assert.match(o.warnings[0]!, /saved pack .*saved-pack \(settings\.json\) is gone/);
    writeFileSync(join(savedPack, 'manifest.json'), '{}');
  });
  it('a corrupt settings.json: its warning and the defaults', () => {
    writeFileSync(join(data, 'settings.json'), '{"pack": ');
    const o = parseWebArgs([], loadSettings(data), { XDG_CONFIG_HOME: env.XDG_CONFIG_HOME });
    assert.deepEqual(
      [o.libraryDir, o.packDir, o.backend, o.threads],
      [join(data, 'library'), bundledPackDir(), undefined, undefined],
    );
    assert.equal(o.warnings.length, 1);
    assert.match(o.warnings[0]!, /settings\.json: not valid JSON; using the defaults$/);
  });
});
