import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Pack } from '../../../main/engine/pack.ts';
import { loadFixture, PARITY_TOLERANCE, runParity } from '../../../main/engine/parity.ts';

// The committed fixture could have been tuned to pass; these are made now, by the toolchain's own script, with
// other weights (seed, widths, layers), prompts, image counts, step counts and guidance, and must pass too. With
// few decoder and super-resolution steps the first step (t = 999) multiplies the ~1e-6 float differences between
// onnxruntime's and torch's ε by ≈ 2e4 wherever x0 is not clamped, and no float32 port can hold 2e-3 there; the
// builder measures how far the float32 reference itself is from its float64 run (its floor), and such a stage
// passes within twice that floor (main/engine/parity.ts).
const root = fileURLToPath(new URL('../../..', import.meta.url));
const python = join(root, 'models', '.venv', 'bin', 'python');
const dir = mkdtempSync(join(tmpdir(), 'unclip-fresh-fixture-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const CASES: { title: string; flags: string; prompts: string[] }[] = [
  {
    title: 'seed 3, width 48, 2 layers, 1 image per prompt, 4/3/2 steps',
    flags:
      '--seed 3 --width 48 --layers 2 --n 1 --steps-prior 4 --steps-decoder 3 --steps-sr 2 --guidance-prior 2.5 --guidance-decoder 5',
    prompts: ['a blue whale on a yellow background', '🚀 rocket, noto style'],
  },
  {
    title: 'seed 11, width 24, 1 layer, 2 prior layers, 3 images of one prompt, 5/4/3 steps',
    flags: '--seed 11 --width 24 --layers 1 --prior-layers 2 --n 3 --steps-prior 5 --steps-decoder 4 --steps-sr 3',
    prompts: ['an owl'],
  },
];

for (const [k, { title, flags, prompts }] of CASES.entries()) {
  test(
    `a fixture freshly made with other arguments passes parity: ${title}`,
    { skip: existsSync(python) ? false : 'models/.venv missing (npm run models:setup)', timeout: 600_000 },
    async () => {
      const out = join(dir, String(k));
      const made = spawnSync(
        python,
        [
          '-m',
          'unclip_toolchain.tiny',
          '--out-pack',
          join(out, 'pack'),
          '--out-fixture',
          join(out, 'fixture'),
          ...flags.split(' '),
          '--prompts',
          ...prompts,
          '--no-check',
        ],
        { cwd: root, encoding: 'utf8' },
      );
      assert.equal(made.status, 0, made.stderr);
      const fixture = await loadFixture(join(out, 'fixture', 'fixture.json'));
      const pack = await Pack.load(fixture.packDir);
      try {
        const reports = await runParity(pack, fixture);
        assert.deepEqual(
          reports.map((r) => r.name),
          ['text2img', 'variation'],
        );
        for (const r of reports) {
          assert.ok(r.tokensMatch, `${r.name}: token ids equal transformers`);
          for (const s of r.stages) {
            assert.ok(s.floor !== undefined, `${r.name} ${s.stage}: floor recorded`);
            assert.ok(s.ok, `${r.name} ${s.stage}: ${s.maxAbsError} over ${s.limit} (floor ${s.floor})`);
            // the stages before the decoder are well-conditioned: held to the tolerance itself
            if (!/decoder|upscaled|image$/.test(s.stage) || s.stage.startsWith('image_encoder'))
              assert.equal(s.limit, PARITY_TOLERANCE, `${r.name} ${s.stage}: floor ${s.floor}`);
          }
          assert.ok(r.ok);
        }
      } finally {
        await pack.release();
      }
    },
  );
}
