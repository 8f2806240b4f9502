// How many CLIP tokens a prompt takes in the pack the engine runs, so that Create can say while the
// user types (not after a run) that the end of a long prompt will not be used: the engine keeps the
// first max_length − 2 content tokens (BOS and EOS take the other two).

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PromptTokensView } from '../../preload/contract.ts';
import { ManifestSchema } from '../engine/manifest.ts';
import { ClipTokenizer } from '../engine/tokenizer.ts';

/** A counter keeping the tokenizer of the last pack it was asked about (a pack switch loads the new one). */
export function promptTokenCounter(): (packDir: string, prompt: string) => Promise<PromptTokensView> {
  let cached: { dir: string; tokenizer: Promise<ClipTokenizer> } | null = null;
  return async (dir, prompt) => {
    if (cached?.dir !== dir) {
      const tokenizer = readFile(join(dir, 'manifest.json'), 'utf8').then((text) => {
        const { tokenizer: spec } = ManifestSchema.parse(JSON.parse(text));
        return ClipTokenizer.load(join(dir, spec.file), spec);
      });
      const entry = { dir, tokenizer };
      cached = entry;
      // A failed load is not kept: the next question tries again.
      tokenizer.catch(() => {
        if (cached === entry) cached = null;
      });
    }
    const tokenizer = await cached.tokenizer;
    const { contentTokens, truncated } = tokenizer.encode(prompt);
    return { tokens: contentTokens, limit: tokenizer.spec.max_length - 2, truncated };
  };
}
