// `unclip vary <picture|latent>`: variations that keep the picture's (z_i, x_T) and sample with DDIM η > 0
// (η = 0 reproduces it), or with fresh noise (--fresh: diffusers' image-variation pipeline).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { clipCosine, vary } from '../engine/manipulations/index.ts';
import { num, parseFlags, UsageError } from './args.ts';
import { finish, latentJson, loadSources, openSession, sha256, writeOut } from './invert.ts';
import { commonArgs, editInLibrary, librarySources, sourceStem } from './library-edit.ts';
import { COMMON_FLAGS } from './manip-flags.ts';

export async function varyCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags({
    args: argv,
    allowPositionals: true,
    options: { ...COMMON_FLAGS, n: { type: 'string' }, eta: { type: 'string' }, fresh: { type: 'boolean' } },
  });
  if (positionals.length !== 1) throw new UsageError('vary takes one picture or latent (unclip vary photo.png)');
  const n = num('n', values.n) ?? 4;
  const eta = num('eta', values.eta) ?? 1;
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new UsageError(`--n: must be an integer in [1, 64] (got ${n})`);
  if (eta < 0 || eta > 1) throw new UsageError(`--eta: must be a number in [0, 1] (got ${eta})`);
  const fresh = values.fresh === true;
  const sources = await librarySources(values, [[positionals[0]!, 'picture']], existsSync);
  if (sources) {
    const stem = sourceStem(sources[0]!);
    return editInLibrary({
      command: 'vary',
      values,
      sources,
      args: ([id]) => ({ id, n, eta, ...(fresh ? { fresh } : {}), ...commonArgs(values) }),
      fileName: (img) => `${stem}-variation-${img.seed}.png`,
    });
  }
  const t0 = performance.now();
  const s = await openSession(values, '.');
  try {
    const src = (await loadSources(s, [[positionals[0]!, 'picture']]))[0]!;
    const frames = await vary(s.pack, src.latent, { ...s.options, n, eta, fresh });
    const images = [];
    for (const f of frames) {
      const file = await writeOut(s, `${src.stem}-variation-${f.seed}.png`, f.png);
      const cos = s.pack.nets.image_encoder ? await clipCosine(s.pack, f, src.latent.zi) : undefined;
      images.push({ seed: f.seed, file, width: f.size, height: f.size, sha256: sha256(f.png), clipCosine: cos });
    }
    finish(
      s,
      {
        command: 'vary',
        source: resolve(src.path),
        latent: src.latentFile,
        eta,
        fresh,
        ...latentJson(src.latent),
        images,
        timings: { total: Math.round(performance.now() - t0) },
      },
      images.map(
        (i) =>
          `${i.file ?? `(not saved) seed ${i.seed}`}  ${i.width}×${i.height}  CLIP cosine to source ${i.clipCosine?.toFixed(4) ?? 'n/a'}`,
      ),
    );
    return 0;
  } finally {
    await s.close();
  }
}
