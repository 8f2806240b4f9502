import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { hermeticEnv } from '../../cli-env.ts';

const BIN = fileURLToPath(new URL('../../../main/cli/bin.mjs', import.meta.url));
const PACK = fileURLToPath(new URL('../../fixtures/tiny-pack', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'unclip-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));

function unclip(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    // Never the user's own library or settings.json.
    env: hermeticEnv(work, { UNCLIP_PACK: PACK, UNCLIP_LIBRARY: join(work, 'default-library') }),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('generate writes one PNG per seed and --json describes them', () => {
  const out = join(work, 'out');
  const r = unclip('generate', 'a red rocket, twemoji style', '--n', '2', '--seed', '41', '--out', out, '--json');
  assert.equal(r.code, 0, r.stderr);
  const json = JSON.parse(r.stdout);
  assert.deepEqual(
    json.images.map((i: { seed: number }) => i.seed),
    [41, 42],
  );
  assert.deepEqual(readdirSync(out).sort(), ['a-red-rocket-twemoji-style-41.png', 'a-red-rocket-twemoji-style-42.png']);
  const png = readFileSync(join(out, 'a-red-rocket-twemoji-style-41.png'));
  assert.deepEqual([...png.subarray(1, 4)].map((c) => String.fromCharCode(c)).join(''), 'PNG');
  assert.equal(json.settings.n, 2);
  assert.equal(json.pack.name, 'tiny-reference');
  assert.equal(json.truncated, false);
  assert.ok(json.timings.total > 0);
  // saved in the library (UNCLIP_LIBRARY) with their recipe
  assert.equal(json.library.saved, true);
  assert.equal(json.library.ids.length, 2);
  const list = unclip('gallery', 'list', '--json');
  assert.equal(list.code, 0, list.stderr);
  const items = JSON.parse(list.stdout).items as { id: number; prompt: string; seed: number }[];
  assert.deepEqual(
    items.map((i) => [i.id, i.seed, i.prompt]).sort(),
    json.library.ids.map((id: number, k: number) => [id, 41 + k, 'a red rocket, twemoji style']).sort(),
  );
  assert.match(png.toString('latin1'), /iTXt.*parameters.*Seed: 41/s);
});

test('--no-save writes nothing; --library is checked and reported honestly', () => {
  const out = join(work, 'nosave');
  const lib = join(work, 'library');
  const r = unclip('generate', 'x', '--no-save', '--out', out, '--library', lib, '--json');
  assert.equal(r.code, 0, r.stderr);
  const json = JSON.parse(r.stdout);
  assert.equal(json.images[0].file, null);
  assert.deepEqual(json.library, { dir: lib, saved: false });
  assert.throws(() => readdirSync(lib), 'nothing is saved, and the library is not even created');
  assert.throws(() => readdirSync(out));
  const notDir = unclip('generate', 'x', '--library', BIN);
  assert.equal(notDir.code, 2);
  assert.match(notDir.stderr, /^unclip: --library: .* is not a folder\n$/);
});

test('bad input: one line naming the field, exit code 2, no stack trace', () => {
  const cases: [string[], RegExp][] = [
    [['generate', ''], /prompt: must not be empty/],
    [['generate', '   '], /prompt: must not be empty/],
    [['generate', 'x', '--steps-decoder', '0'], /--steps-decoder: must be an integer in \[2, 1000\]/],
    [['generate', 'x', '--steps-prior', '10000'], /--steps-prior: must be an integer/],
    [['generate', 'x', '--guidance-prior', 'NaN'], /--guidance-prior: must be a number/],
    [['generate', 'x', '--guidance-decoder', 'abc'], /--guidance-decoder: must be a number/],
    [['generate', 'x', '--n', '0'], /--n: must be an integer in \[1, 64\]/],
    [['generate', 'x', '--n', '1000'], /--n: must be an integer in \[1, 64\]/],
    [['generate', 'x', '--backend', 'tpu'], /--backend: must be one of/],
    [['generate', 'x', '--frobnicate'], /Unknown option '--frobnicate'/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['generate', '', '--image', BIN], /--image: not a readable picture/],
  ];
  for (const [args, message] of cases) {
    const r = unclip(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line for ${args.join(' ')}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
});

test('a corrupt pack graph: exit 2 with the file named', () => {
  const pack = join(work, 'corrupt');
  cpSync(PACK, pack, { recursive: true });
  truncateSync(join(pack, 'prior.onnx'), 10);
  const r = unclip('generate', 'x', '--pack', pack);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^unclip: .*prior\.onnx: sha256 does not match/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

test('over-long prompt: truncated and said so', () => {
  const r = unclip('generate', 'rocket '.repeat(100), '--no-save', '--json');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).truncated, true);
  assert.match(r.stderr, /longer than CLIP's 77 tokens/);
});

test('info and parity', () => {
  const info = unclip('info', '--json');
  assert.equal(info.code, 0, info.stderr);
  assert.equal(JSON.parse(info.stdout).pack.name, 'tiny-reference');
  const parity = unclip(
    'parity',
    '--pack',
    PACK,
    '--fixture',
    fileURLToPath(new URL('../../fixtures/tiny-fixture/fixture.json', import.meta.url)),
  );
  assert.equal(parity.code, 0, parity.stdout + parity.stderr);
  assert.match(parity.stdout, /parity: ok/);
  assert.match(parity.stdout, /upscaled/);
});
