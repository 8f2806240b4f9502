// Image manipulations over the bipartite latent (z_i, x_T): encode, DDIM inversion, variations,
// interpolations, text diffs (issue #6). See manipulate.ts; the latent file format is in latent.ts.
export * from './manipulate.ts';
export * from './latent.ts';
export { readPicture, psnr, squareRgb } from './picture.ts';
export { slerp, cosine } from './slerp.ts';
export { animatedGif, stripPng } from './media.ts';
export { encodeImageBytes } from './encode.ts';
