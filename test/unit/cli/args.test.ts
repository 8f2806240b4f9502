import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backend, flagMessage, gifDelay, num, parseFlags, threads } from '../../../main/cli/args.ts';
import { slug } from '../../../main/cli/generate.ts';

test('numeric flags parse strictly and name the flag when they do not', () => {
  assert.equal(num('n', '4'), 4);
  assert.equal(num('guidance-prior', '7.5'), 7.5);
  assert.equal(num('seed', '1e3'), 1000);
  assert.equal(num('n', undefined), undefined);
  for (const bad of ['abc', '', '4x', 'NaN', '0x10', '--1', 'Infinity']) {
    assert.throws(() => num('steps-decoder', bad), {
      name: 'UsageError',
      message: new RegExp(`^--steps-decoder: must be a number`),
    });
  }
});

test('backend and threads flags', () => {
  assert.equal(backend('cuda'), 'cuda');
  assert.equal(backend(undefined), undefined);
  assert.throws(() => backend('tpu'), {
    name: 'UsageError',
    message: /^--backend: must be one of cpu, webgpu, cuda, dml, coreml/,
  });
  assert.equal(threads('2'), 2);
  assert.throws(() => threads('0'), /--threads/);
  assert.throws(() => threads('1.5'), /--threads/);
});

test('engine field names become the flags the user typed', () => {
  assert.equal(
    flagMessage('settings.stepsDecoder: must be an integer in [2, 1000]'),
    '--steps-decoder: must be an integer in [2, 1000]',
  );
  assert.equal(flagMessage('settings.stepsSuperRes: x'), '--steps-sr: x');
  assert.equal(flagMessage('settings.n: must be an integer in [1, 64]'), '--n: must be an integer in [1, 64]');
  assert.equal(flagMessage('prompt: must not be empty'), 'prompt: must not be empty');
  assert.equal(flagMessage('/x/prior.onnx: missing'), '/x/prior.onnx: missing');
});

test('file-name stems from prompts', () => {
  assert.equal(slug('A red rocket, twemoji style!'), 'a-red-rocket-twemoji-style');
  assert.equal(slug('Café über'), 'cafe-uber');
  assert.equal(slug('🚀✨'), 'image');
  assert.ok(slug('word '.repeat(40)).length <= 48);
  assert.ok(!slug('word '.repeat(40)).endsWith('-'));
});

test('a negative number is a flag value, so the range check names it (not "argument is ambiguous")', () => {
  const options = { n: { type: 'string' }, seed: { type: 'string' }, json: { type: 'boolean' } } as const;
  const parse = (...args: string[]) => parseFlags({ args, options, allowPositionals: true });
  assert.deepEqual({ ...parse('--n', '-1', '--seed', '-2.5e3', 'x').values }, { n: '-1', seed: '-2.5e3' });
  assert.deepEqual(parse('--n', '-1').positionals, []);
  assert.deepEqual(parse('--', '--n', '-1').positionals, ['--n', '-1']);
  // anything else starting with a dash is still parseArgs' business
  assert.throws(() => parse('--n', '-x'), { code: 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' });
  assert.throws(() => parse('--json', '-1'), { code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' });
});

test('GIF frame delay: one rule for interpolate and textdiff', () => {
  assert.equal(gifDelay(undefined), 150);
  assert.equal(gifDelay('10'), 10);
  assert.equal(gifDelay('10000'), 10000);
  for (const bad of ['0', '-5', '9', '1.5', '1e12', '10001']) {
    assert.throws(() => gifDelay(bad), {
      name: 'UsageError',
      message: `--delay: must be an integer in [10, 10000] ms (got ${bad})`,
    });
  }
});
