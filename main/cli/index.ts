// `unclip` — command line for the engine and the library: generate, the image manipulations (invert, vary,
// interpolate, textdiff), the gallery, info, parity, bench.
// Exit codes: 0 ok, 1 failure (parity over tolerance, engine error), 2 bad input (flags, settings, pack).
import { oneLine } from '../engine/errors.ts';
import { flagMessage, UsageError } from './args.ts';

export const USAGE = `usage: unclip <command> [options]

  generate "<prompt>" [--n N] [--seed S] [--steps-prior N] [--steps-decoder N] [--steps-sr N]
           [--guidance-prior G] [--guidance-decoder G] [--rerank] [--image FILE]
           [--pack DIR] [--backend cpu|webgpu|cuda|dml|coreml] [--threads N]
           [--out DIR] [--no-save] [--library DIR] [--json]
      writes one PNG per image (<prompt>-<seed>.png) into --out (default: current folder);
      --image FILE makes variations of a picture instead (the prompt may then be "")
  invert   <picture|#id> [--steps N] [--refine K] [--seed S] [--library DIR] [--json]
      imports a picture into the library (once, by sha256) and stores its x_T; prints the reconstruction PSNR
  vary     <picture|#id> [--n N] [--eta E] [--fresh] [--seed S] [common options]
      variations around (z_i, x_T) with DDIM η (0 reproduces the picture, 1 default); --fresh: new noise;
      decoder guidance rises with η from the inversion's to the pack's (unless --guidance)
  interpolate <a> <b> [--frames N] [--noise slerp|a|b|random] [--delay MS] [common options]
      slerp of z_i (x_T slerped or fixed): N frames (--out: also an animated GIF and a strip)
  textdiff <picture|#id> --to "<y>" [--from "<y0>"] [--theta T | --frames N [--max T]] [common options]
      turns z_i towards normalise(z_t(y) − z_t(y0)) by θ (paper: 0.25–0.5), decoded with the picture's x_T
      Edits are library jobs: results saved with their lineage, --out DIR also writes the PNGs. Common options:
      --steps N --guidance G --seed S --no-sr --pack DIR --backend NAME --threads N --out DIR --library DIR --json.
      --no-save (or a .latent.safetensors source): the direct path, nothing added to the library; invert then
      writes <name>.latent.safetensors and <name>-reconstruction.png (beside the picture unless --out), and
      takes --caption "<y>" and --steps-sr N; --refine K: fixed-point iterations per step on the noisiest fifth
  gallery  list | search | similar | show | star | unstar | trash | restore | empty-trash | boards | export |
           import | check | jobs | info   [--library DIR] [--json]   (unclip gallery help: each command)
  packs    list | verify <name> | import <folder> | use <name>   [--json]   (unclip packs help)
  info     [--pack DIR] [--backend NAME] [--json]           the pack, its networks and the backends here
  parity   [--pack DIR] [--fixture FILE] [--tolerance T] [--json]
      runs the pipeline with the fixture's injected noise; prints each stage's max abs error vs diffusers
  bench    [--pack DIR] [--backend NAME] [--threads N] [--runs R] [--n N] [--steps-* N] [--vs-diffusers] [--json]
      per-stage time, ms per step, images/s, GFLOP/s, peak RSS; --vs-diffusers also times diffusers' UnCLIPPipeline;
      --manipulations times inversion (50 steps) and one frame of each image manipulation instead;
      --studio times cold generate/info, web mode's start and the gallery at 100,000 images in Chromium

  The library, pack, backend and threads, for every command as for the studio: the flag (--library, --pack,
  --backend, --threads), else $UNCLIP_LIBRARY, $UNCLIP_PACK, $UNCLIP_BACKEND, $UNCLIP_THREADS, else the studio's
  saved settings (settings.json: the Settings and Models views, unclip packs use), else the defaults
  (the per-user library, the first shipped pack, cpu; bench: 2 threads). parity: its fixture's pack, its flags only.`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'generate':
        return await (await import('./generate.ts')).generateCommand(rest);
      case 'info':
        return await (await import('./info.ts')).infoCommand(rest);
      case 'parity':
        return await (await import('./parity.ts')).parityCommand(rest);
      case 'bench':
        return await (await import('./bench.ts')).benchCommand(rest);
      case 'invert':
        return await (await import('./invert.ts')).invertCommand(rest);
      case 'vary':
        return await (await import('./vary.ts')).varyCommand(rest);
      case 'interpolate':
        return await (await import('./interpolate.ts')).interpolateCommand(rest);
      case 'textdiff':
        return await (await import('./textdiff.ts')).textdiffCommand(rest);
      case 'gallery':
        return await (await import('./gallery.ts')).galleryCommand(rest);
      case 'packs':
        return await (await import('./packs.ts')).packsCommand(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        console.log(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(
          `unknown command "${command}" (generate, gallery, packs, info, parity, bench, invert, vary, interpolate, textdiff)`,
        );
    }
  } catch (err) {
    const name = err instanceof Error ? err.name : '';
    // parseArgs errors (unknown/invalid flags) carry codes ERR_PARSE_ARGS_*
    const code = (err as { code?: string }).code ?? '';
    const input = ['UsageError', 'InputError', 'PackError'].includes(name) || code.startsWith('ERR_PARSE_ARGS');
    console.error(`unclip: ${flagMessage(oneLine(err))}`);
    return input ? 2 : 1;
  }
}
