// Stage 1 of the paper's figure 2: the CLIP text encoder. A caption → token ids (tokenizer.ts) → the CLIP text
// embedding z_t and the encoder's last hidden states, which condition both the prior and the decoder.
import type { Pack } from '../pack.ts';
import { i64t, runNet } from './net.ts';

/** One encoded caption: CLIP text embedding z_t, last hidden states, attention mask. */
export interface TextCond {
  embeds: Float32Array; // [E]
  hidden: Float32Array; // [L, H]
  mask: Uint8Array; // [L]
  truncated: boolean;
}

export async function encodeTexts(pack: Pack, captions: string[], signal?: AbortSignal): Promise<TextCond[]> {
  const { embedding_dim: E, text } = pack.manifest;
  const L = text.max_length;
  const H = text.hidden_size;
  const tokens = captions.map((c) => pack.tokenizer.encode(c));
  const ids = new BigInt64Array(captions.length * L);
  tokens.forEach((t, r) => t.ids.forEach((id, k) => (ids[r * L + k] = BigInt(id))));
  const out = await runNet(pack.net('text_encoder'), { input_ids: i64t(ids, [captions.length, L]) }, undefined, signal);
  const embeds = out.text_embeds!.data as Float32Array;
  const hidden = out.last_hidden_state!.data as Float32Array;
  return tokens.map((t, r) => ({
    embeds: embeds.slice(r * E, (r + 1) * E),
    hidden: hidden.slice(r * L * H, (r + 1) * L * H),
    mask: Uint8Array.from(t.mask),
    truncated: t.truncated,
  }));
}

/** The text conditioning of b images in one network call: rows [uncond × b, cond × b] with guidance, [cond × b] without. */
export interface TextRows {
  /** Images. */
  b: number;
  /** Network rows: 2·b with guidance, b without. */
  rows: number;
  guided: boolean;
  embeds: Float32Array; // [rows, E]
  hidden: Float32Array; // [rows, L, H]
  mask: Uint8Array; // [rows, L]
}

/** Lays out the captions of b images (`texts[j]` for image j) and, when guided, the "" caption before them. */
export function textRows(pack: Pack, texts: TextCond[], uncond: TextCond | null): TextRows {
  const E = pack.manifest.embedding_dim;
  const L = pack.manifest.text.max_length;
  const H = pack.manifest.text.hidden_size;
  const b = texts.length;
  const guided = uncond !== null;
  const rows = guided ? 2 * b : b;
  const embeds = new Float32Array(rows * E);
  const hidden = new Float32Array(rows * L * H);
  const mask = new Uint8Array(rows * L);
  const put = (r: number, t: TextCond): void => {
    embeds.set(t.embeds, r * E);
    hidden.set(t.hidden, r * L * H);
    mask.set(t.mask, r * L);
  };
  for (let j = 0; j < b; j++) {
    if (guided) put(j, uncond);
    put(guided ? b + j : j, texts[j]!);
  }
  return { b, rows, guided, embeds, hidden, mask };
}
