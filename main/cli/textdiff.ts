// `unclip textdiff <picture|latent> --from "<y0>" --to "<y>" [--theta θ | --frames N --max θ]`: turns the
// picture's z_i towards the text diff normalise(z_t(y) − z_t(y0)) (slerp by θ), decoded with its x_T.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { textDiff, thetaSweep } from '../engine/manipulations/index.ts';
import { gifDelay, num, parseFlags, UsageError } from './args.ts';
import { slug } from './generate.ts';
import { finish, latentJson, loadSources, openSession, sha256, writeOut, writeSweep } from './invert.ts';
import { commonArgs, editInLibrary, librarySources, sourceStem } from './library-edit.ts';
import { COMMON_FLAGS } from './manip-flags.ts';

export async function textdiffCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags({
    args: argv,
    allowPositionals: true,
    options: {
      ...COMMON_FLAGS,
      from: { type: 'string' },
      to: { type: 'string' },
      theta: { type: 'string' },
      frames: { type: 'string' },
      max: { type: 'string' },
      delay: { type: 'string' },
    },
  });
  if (positionals.length !== 1)
    throw new UsageError('textdiff takes one picture or latent (unclip textdiff cat.png --from "a cat" --to "a dog")');
  if (values.to === undefined || !values.to.trim())
    throw new UsageError('--to: the target caption is required (--to "a dog")');
  if (values.from !== undefined && values.from.trim() === values.to.trim())
    throw new UsageError('--to: is the same as --from, so the text diff is undefined; change one of them');
  if (values.theta !== undefined && values.frames !== undefined)
    throw new UsageError('--theta and --frames: give one of them');
  const theta = num('theta', values.theta);
  const frames = num('frames', values.frames);
  const max = num('max', values.max) ?? 0.5;
  if (theta !== undefined && !(theta >= 0 && theta <= 1)) throw new UsageError('--theta: must be a number in [0, 1]');
  if (!(max >= 0 && max <= 1)) throw new UsageError('--max: must be a number in [0, 1]');
  if (frames !== undefined && (!Number.isInteger(frames) || frames < 2 || frames > 64))
    throw new UsageError('--frames: must be an integer in [2, 64]');
  const delay = gifDelay(values.delay);
  const thetas = frames !== undefined ? thetaSweep(frames, max) : [theta ?? 0.3];
  const to = values.to;
  const lib = await librarySources(values, [[positionals[0]!, 'picture']], existsSync);
  if (lib) {
    const stem = `${sourceStem(lib[0]!)}-textdiff-${slug(to)}`;
    return editInLibrary({
      command: 'textdiff',
      values,
      sources: lib,
      args: ([id]) => ({
        id,
        to,
        thetas,
        ...(values.from !== undefined ? { from: values.from } : {}),
        ...commonArgs(values),
      }),
      fileName: (_img, k) => `${stem}-${thetas[k]!.toFixed(3)}.png`,
      ...(thetas.length > 1 ? { sweep: { stem, delay } } : {}),
    });
  }
  // --caption is the caption y0 to invert with when a picture is given; --from defaults to it
  if (values.caption === undefined && values.from !== undefined && !positionals[0]!.endsWith('.safetensors'))
    values.caption = values.from;
  const t0 = performance.now();
  const s = await openSession(values, '.');
  try {
    const src = (await loadSources(s, [[positionals[0]!, 'picture']]))[0]!;
    const r = await textDiff(s.pack, src.latent, {
      ...s.options,
      to: values.to,
      thetas,
      ...(values.from !== undefined ? { from: values.from } : {}),
    });
    const stem = `${src.stem}-textdiff-${slug(values.to)}`;
    const out = [];
    for (let i = 0; i < r.frames.length; i++) {
      const f = r.frames[i]!;
      const th = r.thetas[i]!;
      const file = await writeOut(s, `${stem}-${th.toFixed(3)}.png`, f.png);
      out.push({ theta: th, file, sha256: sha256(f.png) });
    }
    const size = r.frames[0]!.size;
    const { gif, strip } =
      r.frames.length > 1 ? await writeSweep(s, stem, r.frames, delay) : { gif: null, strip: null };
    finish(
      s,
      {
        command: 'textdiff',
        source: resolve(src.path),
        latent: src.latentFile,
        from: r.from,
        to: values.to,
        ...latentJson(src.latent),
        width: size,
        height: size,
        frames: out,
        gif,
        strip,
        timings: { total: Math.round(performance.now() - t0) },
      },
      [...out.map((f) => `${f.file ?? '(not saved)'}  θ=${f.theta.toFixed(3)}`), ...(gif ? [gif, strip!] : [])],
    );
    return 0;
  } finally {
    await s.close();
  }
}
