import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ClipTokenizer } from '../../../main/engine/tokenizer.ts';

// test/fixtures/tokenizer-corpus.json: ≥1,000 strings with transformers' CLIPTokenizer ids and masks
// (padding="max_length", max_length=77, truncation=True), made by `python -m unclip_toolchain.tokenizer_corpus`.
const corpus = JSON.parse(readFileSync(new URL('../../fixtures/tokenizer-corpus.json', import.meta.url), 'utf8')) as {
  max_length: number;
  pad_token_id: number;
  bos_token_id: number;
  eos_token_id: number;
  entries: { text: string; input_ids: number[]; attention_mask: number[]; truncated?: boolean }[];
};
const spec = {
  max_length: corpus.max_length,
  pad_token_id: corpus.pad_token_id,
  bos_token_id: corpus.bos_token_id,
  eos_token_id: corpus.eos_token_id,
};
const tokenizer = await ClipTokenizer.load(
  new URL('../../fixtures/tiny-pack/tokenizer.json', import.meta.url).pathname,
  spec,
);

test('ids and masks equal transformers CLIPTokenizer on every corpus string', () => {
  assert.ok(corpus.entries.length >= 1000, `corpus has ${corpus.entries.length} strings`);
  const mismatches: string[] = [];
  for (const e of corpus.entries) {
    const t = tokenizer.encode(e.text);
    if (t.ids.join() !== e.input_ids.join() || t.mask.join() !== e.attention_mask.join())
      mismatches.push(JSON.stringify(e.text));
    if (e.truncated !== undefined && t.truncated !== e.truncated)
      mismatches.push(`truncated flag: ${JSON.stringify(e.text)}`);
  }
  assert.deepEqual(mismatches.slice(0, 10), [], `${mismatches.length} of ${corpus.entries.length} differ`);
});

test('the two tokenizers.js/Rust differences we correct are covered', () => {
  // final sigma: Rust lower-cases per character (Σ → σ), JS toLowerCase would give ς at word end
  const sigma = tokenizer.encode('ΣΑΣ');
  const lower = tokenizer.encode('σασ');
  assert.deepEqual(sigma.ids, lower.ids);
  // U+FEFF is not whitespace for Oniguruma: "\uFEFF'" stays one pre-token
  assert.deepEqual(tokenizer.encode("a\uFEFF's").ids.slice(0, 7), [49406, 320, 171, 119, 123, 262, 338]);
});

test('framing: BOS, content, EOS, "!" pads (id 0), truncation keeps EOS', () => {
  const t = tokenizer.encode('a horse!');
  assert.deepEqual(t.ids.slice(0, 6), [49406, 320, 4558, 0, 49407, 0]);
  assert.deepEqual(t.mask.slice(0, 6), [1, 1, 1, 1, 1, 0]);
  assert.equal(t.truncated, false);
  const long = tokenizer.encode('word '.repeat(100));
  assert.equal(long.truncated, true);
  assert.equal(long.contentTokens, 100);
  assert.equal(long.ids.length, 77);
  assert.equal(long.ids[76], 49407);
  assert.ok(long.mask.every((m) => m === 1));
  const exact = tokenizer.encode('word '.repeat(75));
  assert.equal(exact.truncated, false);
  assert.equal(exact.ids[76], 49407);
});
