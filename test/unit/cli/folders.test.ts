import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkFolder } from '../../../main/cli/folders.ts';
import { hermeticEnv } from '../../cli-env.ts';

const BIN = fileURLToPath(new URL('../../../main/cli/bin.mjs', import.meta.url));
const PICTURE = fileURLToPath(new URL('../../fixtures/manip-images/noto-1f34e.png', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'unclip-folders-'));
after(() => rmSync(work, { recursive: true, force: true }));
const file = join(work, 'a-file');
writeFileSync(file, 'not a folder');

test('output folders: pseudo-filesystems and files refused, the folder made up front', async () => {
  for (const dir of ['/proc/x', '/sys/x/y', '/dev/x', '/proc']) {
    await assert.rejects(checkFolder('--out', dir, { create: true, write: true }), {
      name: 'UsageError',
      message: new RegExp(`^--out: ${dir} is under /(proc|sys|dev), not an ordinary folder; choose another$`),
    });
  }
  assert.ok(!existsSync('/dev/x'));
  // a link into /proc is refused too
  const link = join(work, 'link');
  symlinkSync('/proc/self', link);
  await assert.rejects(checkFolder('--out', join(link, 'x'), { create: true, write: true }), /is under \/proc/);
  await assert.rejects(checkFolder('--out', file, { create: true, write: true }), {
    message: `--out: ${file} is not a folder`,
  });
  await assert.rejects(checkFolder('--library', join(file, 'sub'), { create: false, write: false }), {
    message: `--library: ${file} is not a folder`,
  });
  const deep = join(work, 'a', 'b', 'c');
  assert.equal(await checkFolder('--library', deep, { create: false, write: false }), deep);
  assert.ok(!existsSync(join(work, 'a')));
  assert.equal(await checkFolder('--out', deep, { create: true, write: true }), deep);
  assert.ok(statSync(deep).isDirectory());
  assert.equal(await checkFolder('--out', deep, { create: true, write: true }), deep); // already there
  // not made unless asked, even when it would be written to
  const other = join(work, 'other', 'sub');
  assert.equal(await checkFolder('--out', other, { create: false, write: true }), other);
  assert.ok(!existsSync(join(work, 'other')));
});

test('every command refuses a bad --out or --library at once, in one line (they once hung on /proc)', () => {
  const latent = join(work, 'x.latent.safetensors');
  const cases: [string[], RegExp][] = [
    [['generate', 'a cat', '--out', '/proc/x'], /^unclip: --out: \/proc\/x is under \/proc/],
    [['generate', 'a cat', '--out', file], /^unclip: --out: .*a-file is not a folder/],
    [['generate', 'a cat', '--library', '/proc/x'], /^unclip: --library: \/proc\/x is under \/proc/],
    [['invert', PICTURE, '--out', '/proc/x'], /^unclip: --out: \/proc\/x is under \/proc/],
    [['invert', PICTURE, '--out', file], /^unclip: --out: .*a-file is not a folder/],
    [['vary', latent, '--out', '/sys/x'], /^unclip: --out: \/sys\/x is under \/sys/],
    [['interpolate', latent, latent, '--out', '/proc/x'], /^unclip: --out: \/proc\/x is under \/proc/],
    [['textdiff', latent, '--to', 'a dog', '--out', file], /^unclip: --out: .*a-file is not a folder/],
    [['invert', PICTURE, '--library', '/proc/x'], /^unclip: --library: \/proc\/x is under \/proc/],
    // beside a picture that is not there: the picture is missing, and no folder is made for it
    [['invert', join(work, 'nowhere', 'x.png')], /^unclip: picture: cannot read .*x\.png \(ENOENT\)/],
  ];
  for (const [args, message] of cases) {
    const r = spawnSync(process.execPath, [BIN, ...args], {
      encoding: 'utf8',
      timeout: 30_000,
      env: hermeticEnv(work),
    });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  assert.ok(!existsSync(join(work, 'nowhere')));
});
