import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InputError, resolveRequest, resolveSettings } from '../../../main/engine/settings.ts';

const defaults = { stepsPrior: 25, stepsDecoder: 25, stepsSuperRes: 7, guidancePrior: 4, guidanceDecoder: 8 };

function rejects(request: unknown, pattern: RegExp): void {
  assert.throws(
    () => resolveRequest(request, defaults),
    (err: unknown) => err instanceof InputError && pattern.test(err.message) && !err.message.includes('\n'),
  );
}

test('defaults fill in, given values win, seed is a uint32', () => {
  const r = resolveRequest({ prompt: 'a cat', settings: { n: 3, seed: 42, stepsDecoder: 50 } }, defaults);
  assert.deepEqual(r.settings, { ...defaults, n: 3, seed: 42, stepsDecoder: 50, rerank: false, previewEvery: 0 });
  const s = resolveSettings({}, defaults);
  assert.ok(Number.isInteger(s.seed) && s.seed >= 0 && s.seed <= 0xffffffff);
});

test('bad values are refused with one line naming the field', () => {
  rejects({ prompt: '', settings: {} }, /^prompt: must not be empty/);
  rejects({ prompt: ' \n\t ', settings: {} }, /^prompt: must not be empty/);
  rejects({ prompt: 'x', settings: { stepsDecoder: 0 } }, /^settings\.stepsDecoder: must be an integer in \[2, 1000\]/);
  rejects({ prompt: 'x', settings: { stepsPrior: 10000 } }, /^settings\.stepsPrior: /);
  rejects({ prompt: 'x', settings: { stepsSuperRes: 2.5 } }, /^settings\.stepsSuperRes: /);
  rejects({ prompt: 'x', settings: { guidancePrior: Number.NaN } }, /^settings\.guidancePrior: /);
  rejects({ prompt: 'x', settings: { guidanceDecoder: Number.POSITIVE_INFINITY } }, /^settings\.guidanceDecoder: /);
  rejects({ prompt: 'x', settings: { guidanceDecoder: '8' } }, /^settings\.guidanceDecoder: must be a number/);
  rejects({ prompt: 'x', settings: { n: 0 } }, /^settings\.n: must be an integer in \[1, 64\]/);
  rejects({ prompt: 'x', settings: { n: 1000 } }, /^settings\.n: /);
  rejects({ prompt: 'x', settings: { seed: -1 } }, /^settings\.seed: /);
  rejects({ prompt: 'x', settings: { seed: 2 ** 32 } }, /^settings\.seed: /);
  rejects({ prompt: 'x', settings: { rerank: 'yes' } }, /^settings\.rerank: /);
  rejects({ prompt: 'x', settings: { steps: 3 } }, /^settings: unknown field "steps"/);
  rejects({ prompt: 42, settings: {} }, /^prompt: must be a string/);
  rejects({ prompt: 'x', settings: {}, extra: 1 }, /unknown field "extra"/);
  rejects({ prompt: 'x', settings: {}, image: 'not bytes' }, /^image: /);
});

test('an image variation needs no prompt', () => {
  const r = resolveRequest({ prompt: '', settings: {}, image: new Uint8Array([1, 2, 3]) }, defaults);
  assert.equal(r.prompt, '');
  assert.ok(r.image instanceof Uint8Array);
});
