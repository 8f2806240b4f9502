// Create's live token count: the pack's own tokenizer, the cut at max_length − 2 content tokens that
// the engine makes, and the contract's bound on the prompt.

import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { TINY_PACK_DIR } from '../../../main/engine/packs.ts';
import { promptTokenCounter } from '../../../main/service/prompt-tokens.ts';
import { LIMITS, parseArgs } from '../../../preload/contract.ts';

describe('prompt.tokens', () => {
  it('counts content tokens with the pack tokenizer and says when the engine will cut', async () => {
    const count = promptTokenCounter();
    const short = await count(TINY_PACK_DIR, 'a red apple');
    assert.deepEqual(short, { tokens: 3, limit: 75, truncated: false });
    assert.deepEqual(await count(TINY_PACK_DIR, ''), { tokens: 0, limit: 75, truncated: false });
    const words = Array.from({ length: 80 }, (_, i) => `word${i}`).join(' ');
    const long = await count(TINY_PACK_DIR, words);
    assert.ok(long.tokens > 75 && long.truncated, JSON.stringify(long));
    const exact = Array.from({ length: 75 }, () => 'a').join(' ');
    assert.deepEqual(await count(TINY_PACK_DIR, exact), { tokens: 75, limit: 75, truncated: false });
  });

  it('a pack that cannot be read fails once, and a fixed one is read on the next question', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tokens-'));
    try {
      writeFileSync(join(dir, 'manifest.json'), '{ not json');
      const count = promptTokenCounter();
      await assert.rejects(count(dir, 'a cat'));
      cpSync(TINY_PACK_DIR, dir, { recursive: true });
      assert.equal((await count(dir, 'a cat')).tokens, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the contract bounds the prompt', () => {
    assert.deepEqual(parseArgs('prompt.tokens', { prompt: 'x' }), { prompt: 'x' });
    assert.throws(() => parseArgs('prompt.tokens', { prompt: 'x'.repeat(LIMITS.promptChars + 1) }), /prompt/);
    assert.throws(() => parseArgs('prompt.tokens', {}), /prompt/);
  });
});
