// CLIP BPE tokenizer: the pack's tokenizer.json run by @huggingface/tokenizers, then CLIP's framing
// (BOS, ≤ max_length−2 content tokens, EOS, padding) done here, the way transformers' CLIPTokenizer does
// with padding="max_length", truncation=True.
//
// Two differences between tokenizers.js 0.2.0 and the Rust `tokenizers` that made the pack's file are
// fixed here (both found by the corpus test, test/unit/engine/tokenizer.test.ts):
//  1. The ByteLevel pre-tokenizer's built-in GPT-2 split uses a JavaScript RegExp, whose `\s` also matches
//     U+FEFF (Oniguruma's does not), so "\uFEFF'" was split in two. For CLIP's Split pieces (letter runs,
//     single digits, punctuation runs, contractions) that GPT-2 split never cuts anything in Rust, so we
//     turn it off (`use_regex: false`) and get Rust's result.
//  2. JavaScript's toLowerCase applies the Final_Sigma rule (word-final Σ → ς); Rust lower-cases per
//     character (Σ → σ). We map Σ → σ before tokenizing; nothing else in the chain (NFC, whitespace
//     Replace, added-token matching) treats Σ specially, so this equals per-character lower-casing.
import { readFile } from 'node:fs/promises';
import { Tokenizer } from '@huggingface/tokenizers';

export interface TokenizerSpec {
  max_length: number;
  pad_token_id: number;
  bos_token_id: number;
  eos_token_id: number;
}

export interface TokenizedText {
  /** max_length ids: BOS, content, EOS, padding. */
  ids: number[];
  /** 1 for BOS, content and EOS, 0 for padding. */
  mask: number[];
  /** True when content tokens beyond max_length − 2 were dropped. */
  truncated: boolean;
  /** Content tokens before truncation. */
  contentTokens: number;
}

interface TokenizerJson {
  pre_tokenizer?: { type: string; pretokenizers?: { type: string; use_regex?: boolean }[]; use_regex?: boolean } | null;
  [key: string]: unknown;
}

export class ClipTokenizer {
  readonly spec: TokenizerSpec;
  private readonly tokenizer: Tokenizer;

  constructor(json: TokenizerJson, spec: TokenizerSpec) {
    const pre = json.pre_tokenizer;
    for (const p of pre?.type === 'Sequence' ? (pre.pretokenizers ?? []) : pre ? [pre] : []) {
      if (p.type === 'ByteLevel') p.use_regex = false;
    }
    this.tokenizer = new Tokenizer(json, {});
    this.spec = spec;
  }

  static async load(file: string, spec: TokenizerSpec): Promise<ClipTokenizer> {
    let json: TokenizerJson;
    try {
      json = JSON.parse(await readFile(file, 'utf8')) as TokenizerJson;
    } catch (e) {
      throw new Error(`${file}: not a readable tokenizer.json (${(e as Error).message.split('\n')[0]})`, { cause: e });
    }
    try {
      return new ClipTokenizer(json, spec);
    } catch (e) {
      throw new Error(`${file}: tokenizer could not be built (${(e as Error).message.split('\n')[0]})`, { cause: e });
    }
  }

  encode(text: string): TokenizedText {
    const { max_length: L, pad_token_id, bos_token_id, eos_token_id } = this.spec;
    const content = this.tokenizer.encode(text.replaceAll('\u03a3', '\u03c3'), { add_special_tokens: false }).ids;
    const keep = Math.min(content.length, L - 2);
    const ids = new Array<number>(L).fill(pad_token_id);
    const mask = new Array<number>(L).fill(0);
    ids[0] = bos_token_id;
    for (let i = 0; i < keep; i++) ids[i + 1] = content[i]!;
    ids[keep + 1] = eos_token_id;
    for (let i = 0; i < keep + 2; i++) mask[i] = 1;
    return { ids, mask, truncated: content.length > L - 2, contentTokens: content.length };
  }
}
