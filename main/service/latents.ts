// The bridge between the library's rows and the engine's latent files: an image's stored inversion
// as a BipartiteLatent (what the engine's manipulations and exports read), and back.

import type { BipartiteLatent } from '../engine/manipulations/latent.ts';
import type { ImageRecord, InversionData, Library } from '../library/library.ts';

/** The image's stored (z_i, x_T) with what is needed to reuse it, or null when it is not inverted. */
export function storedLatent(library: Library, image: ImageRecord): BipartiteLatent | null {
  if (!image.inverted) return null;
  const stored = library.latents(image.id);
  const inv = stored.inversion;
  if (!inv) return null;
  const s = inv.settings;
  return {
    caption: typeof s.caption === 'string' ? s.caption : image.prompt,
    inversion: {
      steps: Number(s.steps),
      guidance: Number(s.guidance),
      ...(s.refine !== undefined ? { refine: Number(s.refine) } : {}),
    },
    psnr: inv.psnr ?? Number.NaN,
    decoderSize: inv.shape[1]!,
    embeddingDim: inv.zi.length,
    pack: { name: image.pack.name, fingerprint: image.pack.sha256 },
    zi: inv.zi,
    xT: inv.xT,
    ...(stored.zt ? { zt: stored.zt } : {}),
  };
}

/** What the library stores of an inversion. */
export function inversionData(latent: BipartiteLatent): InversionData {
  return {
    zi: latent.zi,
    xT: latent.xT,
    shape: [3, latent.decoderSize, latent.decoderSize],
    settings: { ...latent.inversion, caption: latent.caption },
    psnr: Number.isFinite(latent.psnr) ? latent.psnr : null,
  };
}
