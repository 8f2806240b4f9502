// The CLI follows the studio's saved settings (settings.json in the app data folder: the Settings and
// Models views, `unclip packs use`) with the one rule of main/service/startup.ts: a flag, else the
// environment variable, else the saved setting, else the default. Each run gets its own app data folder
// (XDG_CONFIG_HOME under a temp dir), never the developer's.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, beforeEach, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { bundledPackDir } from '../../../main/engine/packs.ts';
import { loadSettings, saveSettings, settingsFile, type StoredSettings } from '../../../main/service/settings.ts';
import { hermeticEnv } from '../../cli-env.ts';

const BIN = fileURLToPath(new URL('../../../main/cli/bin.mjs', import.meta.url));
const TINY = fileURLToPath(new URL('../../fixtures/tiny-pack', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'unclip-cli-settings-'));
after(() => rmSync(work, { recursive: true, force: true }));
const data = join(work, 'config', 'unclip-studio');
const FAST = ['--steps-prior', '2', '--steps-decoder', '2', '--steps-sr', '2', '--seed', '1'];

function unclip(args: string[], extra: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    timeout: 180_000,
    env: hermeticEnv(work, extra),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A copy of the tiny pack under `parent`, its manifest renamed to `name`. */
function packCopy(parent: string, name: string): string {
  const dir = join(parent, name);
  cpSync(TINY, dir, { recursive: true });
  const file = join(dir, 'manifest.json');
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), name }));
  return dir;
}

const save = (s: Omit<StoredSettings, 'theme'>): void => saveSettings(data, { theme: 'system', ...s });
const warnings = (stderr: string): string[] => stderr.split('\n').filter((l) => l.startsWith('warning: '));

const userPack = packCopy(join(data, 'models'), 'tiny-two');
const otherPack = packCopy(work, 'tiny-three');
beforeEach(() => rmSync(settingsFile(data), { force: true }));

test('`packs use` is what the next CLI command loads: info, generate, and the * of packs list', () => {
  const use = unclip(['packs', 'use', 'tiny-two']);
  assert.equal(use.code, 0, use.stderr);
  assert.equal(loadSettings(data).settings.pack, userPack);
  assert.doesNotMatch(use.stdout, /desktop app and web mode/);

  const info = unclip(['info', '--json']);
  assert.equal(info.code, 0, info.stderr);
  const json = JSON.parse(info.stdout);
  assert.equal(json.pack.name, 'tiny-two');
  assert.equal(json.chosenBy.pack, 'settings.json');

  const list = unclip(['packs', 'list']);
  assert.equal(list.code, 0, list.stderr);
  const marked = list.stdout.split('\n').filter((l) => l.startsWith('* '));
  assert.equal(marked.length, 1, list.stdout);
  assert.match(marked[0]!, /^\* tiny-two /);
  assert.match(list.stdout, /\(\* the pack the studio and the CLI load, chosen by settings\.json;/);
  assert.doesNotMatch(list.stdout, /desktop app and web mode start with/);

  const lib = join(work, 'lib-generate');
  const gen = unclip(['generate', 'a red rocket', ...FAST, '--library', lib, '--out', join(work, 'out'), '--json']);
  assert.equal(gen.code, 0, gen.stderr);
  assert.equal(JSON.parse(gen.stdout).pack.name, 'tiny-two');
  const direct = unclip(['generate', 'a red rocket', ...FAST, '--no-save', '--json']);
  assert.equal(direct.code, 0, direct.stderr);
  assert.equal(JSON.parse(direct.stdout).pack.name, 'tiny-two');

  // $UNCLIP_PACK wins over the saved pack, --pack over both; packs list marks what is loaded
  const env = JSON.parse(unclip(['info', '--json'], { UNCLIP_PACK: otherPack }).stdout);
  assert.deepEqual([env.pack.name, env.chosenBy.pack], ['tiny-three', '$UNCLIP_PACK']);
  const flag = JSON.parse(unclip(['info', '--pack', TINY, '--json'], { UNCLIP_PACK: otherPack }).stdout);
  assert.deepEqual([flag.pack.name, flag.chosenBy.pack], ['tiny-reference', '--pack']);
  const listEnv = unclip(['packs', 'list'], { UNCLIP_PACK: otherPack });
  assert.match(listEnv.stdout, /^\* tiny-three /m);
  assert.doesNotMatch(listEnv.stdout, /^\* tiny-two /m);
});

test('the library: --library, else $UNCLIP_LIBRARY, else the saved folder, else <app data>/library', () => {
  const dirOf = (args: string[], extra: Record<string, string> = {}): string => {
    const r = unclip(['gallery', 'info', '--json', ...args], extra);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(warnings(r.stderr), []);
    return JSON.parse(r.stdout).dir;
  };
  assert.equal(dirOf([]), join(data, 'library'));
  const saved = join(work, 'moved-library');
  save({ libraryDir: saved });
  assert.equal(dirOf([]), saved);
  assert.equal(dirOf([], { UNCLIP_LIBRARY: join(work, 'env-library') }), join(work, 'env-library'));
  assert.equal(
    dirOf(['--library', join(work, 'flag-library')], { UNCLIP_LIBRARY: join(work, 'env-library') }),
    join(work, 'flag-library'),
  );

  // a library edit made in the saved library is listed from it
  const gen = unclip(['generate', 'a green apple', ...FAST, '--out', join(work, 'out2'), '--json'], {
    UNCLIP_PACK: TINY,
  });
  assert.equal(gen.code, 0, gen.stderr);
  assert.equal(JSON.parse(gen.stdout).library.dir, saved);
  const list = unclip(['gallery', 'list', '--json']);
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(
    JSON.parse(list.stdout).items.map((i: { prompt: string }) => i.prompt),
    ['a green apple'],
  );

  // a saved folder that cannot hold a library: one line saying where it came from
  const file = join(work, 'a-file');
  writeFileSync(file, 'x');
  save({ libraryDir: file });
  const bad = unclip(['gallery', 'list']);
  assert.equal(bad.code, 2);
  assert.match(
    bad.stderr,
    /^unclip: the library folder saved in settings\.json: cannot hold a library: .*a-file is not a folder/,
  );
  assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
});

test('backend and threads: flag, else $UNCLIP_BACKEND / $UNCLIP_THREADS, else saved, else the default', () => {
  const run = (args: string[], extra: Record<string, string> = {}) => {
    const r = unclip(['info', '--pack', TINY, '--json', ...args], extra);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { threads: number; chosenBy: { backend: string; threads: string } };
  };
  const d = run([]);
  assert.deepEqual([d.chosenBy.backend, d.chosenBy.threads], ['default', 'default']);
  save({ backend: 'cpu', threads: 3 });
  const s = run([]);
  assert.deepEqual([s.threads, s.chosenBy.backend, s.chosenBy.threads], [3, 'settings.json', 'settings.json']);
  const e = run([], { UNCLIP_THREADS: '2', UNCLIP_BACKEND: 'cpu' });
  assert.deepEqual([e.threads, e.chosenBy.backend, e.chosenBy.threads], [2, '$UNCLIP_BACKEND', '$UNCLIP_THREADS']);
  const f = run(['--threads', '1', '--backend', 'cpu'], { UNCLIP_THREADS: '2', UNCLIP_BACKEND: 'cpu' });
  assert.deepEqual([f.threads, f.chosenBy.backend, f.chosenBy.threads], [1, '--backend', '--threads']);
  // a bad environment value is ignored with a warning: the saved setting applies
  const bad = unclip(['info', '--pack', TINY, '--json'], { UNCLIP_THREADS: 'many' });
  assert.equal(bad.code, 0, bad.stderr);
  assert.equal(JSON.parse(bad.stdout).threads, 3);
  assert.deepEqual(warnings(bad.stderr), [
    'warning: $UNCLIP_THREADS: must be an integer in [1, 1024] (got "many"); ignored',
  ]);
});

test('bench says which pack, backend and threads it measures and what chose them', () => {
  save({ pack: userPack, threads: 1 });
  const r = unclip(['bench', '--runs', '1', ...FAST.slice(0, 6), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const json = JSON.parse(r.stdout);
  assert.equal(json.pack.name, 'tiny-two');
  assert.equal(json.threads, 1);
  assert.deepEqual(json.chosenBy, { pack: 'settings.json', backend: 'default', threads: 'settings.json' });
  assert.match(
    r.stderr,
    /^bench: pack .*tiny-two \(settings\.json\), backend cpu \(default\), 1 threads \(settings\.json\)$/m,
  );
});

test('a saved pack that is gone: the default pack, one warning line, exit 0', () => {
  save({ pack: join(work, 'deleted-pack') });
  const r = unclip(['info', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).pack.dir, bundledPackDir());
  assert.deepEqual(warnings(r.stderr), [
    `warning: the saved pack ${join(work, 'deleted-pack')} (settings.json) is gone (no manifest.json there); using ${bundledPackDir()}`,
  ]);
});

test('a corrupt settings.json: one warning line and the defaults, never a crash', () => {
  mkdirSync(data, { recursive: true });
  writeFileSync(settingsFile(data), '{"libraryDir": "/somewhere", ');
  for (const args of [
    ['gallery', 'info', '--json'],
    ['info', '--pack', TINY, '--json'],
  ]) {
    const r = unclip(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.deepEqual(warnings(r.stderr), [`warning: ${settingsFile(data)}: not valid JSON; using the defaults`]);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    if (args[0] === 'gallery') assert.equal(JSON.parse(r.stdout).dir, join(data, 'library'));
  }
  writeFileSync(settingsFile(data), '{"threads": "lots"}');
  const r = unclip(['info', '--pack', TINY, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).chosenBy.threads, 'default');
  assert.match(warnings(r.stderr).join('\n'), /settings\.json: threads: .*; using the defaults$/);
});
