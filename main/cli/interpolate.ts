// `unclip interpolate <a> <b> --frames N`: slerp between two pictures' z_i (x_T slerped, or fixed), N frames
// as PNGs, an animated GIF and a strip.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { interpolate, type NoiseMode } from '../engine/manipulations/index.ts';
import { gifDelay, num, parseFlags, UsageError } from './args.ts';
import { finish, loadSources, openSession, sha256, writeOut, writeSweep } from './invert.ts';
import { commonArgs, editInLibrary, librarySources, sourceStem } from './library-edit.ts';
import { COMMON_FLAGS } from './manip-flags.ts';

export async function interpolateCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags({
    args: argv,
    allowPositionals: true,
    options: { ...COMMON_FLAGS, frames: { type: 'string' }, noise: { type: 'string' }, delay: { type: 'string' } },
  });
  if (positionals.length !== 2)
    throw new UsageError('interpolate takes two pictures or latents (unclip interpolate a.png b.png)');
  const frames = num('frames', values.frames) ?? 8;
  if (!Number.isInteger(frames) || frames < 2 || frames > 64)
    throw new UsageError('--frames: must be an integer in [2, 64]');
  const noise = (values.noise ?? 'slerp') as NoiseMode;
  if (!['slerp', 'a', 'b', 'random'].includes(noise)) throw new UsageError('--noise: must be slerp, a, b or random');
  const delay = gifDelay(values.delay);
  const inputs: [string, string][] = [
    [positionals[0]!, 'first picture'],
    [positionals[1]!, 'second picture'],
  ];
  const lib = await librarySources(values, inputs, existsSync);
  if (lib) {
    const stem = `${sourceStem(lib[0]!)}-to-${sourceStem(lib[1]!)}`;
    return editInLibrary({
      command: 'interpolate',
      values,
      sources: lib,
      args: ([a, b]) => ({ a, b, frames, noise, ...commonArgs(values) }),
      fileName: (_img, k) => `${stem}-${String(k).padStart(2, '0')}.png`,
      sweep: { stem, delay },
    });
  }
  const t0 = performance.now();
  const s = await openSession(values, '.');
  try {
    const sources = await loadSources(s, inputs);
    const a = sources[0]!;
    const b = sources[1]!;
    const r = await interpolate(s.pack, a.latent, b.latent, { ...s.options, frames, noise });
    const stem = `${a.stem}-to-${b.stem}`;
    const out = [];
    for (let i = 0; i < r.frames.length; i++) {
      const f = r.frames[i]!;
      const file = await writeOut(s, `${stem}-${String(i).padStart(2, '0')}.png`, f.png);
      out.push({ t: r.ts[i], file, sha256: sha256(f.png) });
    }
    const size = r.frames[0]!.size;
    const { gif, strip } = await writeSweep(s, stem, r.frames, delay);
    finish(
      s,
      {
        command: 'interpolate',
        sources: [resolve(a.path), resolve(b.path)],
        latents: [a.latentFile, b.latentFile],
        psnr: [a.latent.psnr, b.latent.psnr],
        noise,
        width: size,
        height: size,
        frames: out,
        gif,
        strip,
        timings: { total: Math.round(performance.now() - t0) },
      },
      [
        ...out.map((f) => `${f.file ?? '(not saved)'}  t=${f.t!.toFixed(3)}`),
        `${gif ?? '(gif not saved)'}`,
        `${strip ?? '(strip not saved)'}`,
      ],
    );
    return 0;
  } finally {
    await s.close();
  }
}
