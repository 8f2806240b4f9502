import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  apiFromBridge,
  isOperationName,
  listenerName,
  methodName,
  operationNames,
  parseArgs,
  StudioError,
  type StudioBridge,
} from '../../../preload/contract.ts';

function invalid(op: Parameters<typeof parseArgs>[0], raw: unknown): StudioError {
  try {
    parseArgs(op, raw);
  } catch (err) {
    assert.ok(err instanceof StudioError, 'expected a StudioError');
    assert.equal(err.code, 'invalid_argument');
    assert.ok(!err.message.includes('\n'), `message must be one line: ${JSON.stringify(err.message)}`);
    return err;
  }
  assert.fail(`${op} accepted ${JSON.stringify(raw)}`);
}

describe('contract: argument validation', () => {
  it('accepts a good generate request and fills defaults', () => {
    const args = parseArgs('generate', { jobId: 'job-1', prompt: '  a red apple  ', settings: { n: 2, seed: 7 } });
    assert.deepEqual(args, { jobId: 'job-1', prompt: 'a red apple', settings: { n: 2, seed: 7 } });
    assert.deepEqual(parseArgs('generate', { jobId: 'j', prompt: 'x' }).settings, {});
  });

  it('names the field and the value it got', () => {
    const err = invalid('generate', { jobId: 'j', prompt: 'x', settings: { n: 400 } });
    assert.match(err.message, /^generate: settings\.n: .*64.*\(got 400\)$/);
  });

  it('reports every bad field on one line', () => {
    const err = invalid('generate', { jobId: 'bad id!', prompt: '   ', settings: { seed: -1 } });
    assert.match(err.message, /jobId: /);
    assert.match(err.message, /prompt: must not be empty/);
    assert.match(err.message, /settings\.seed: .*\(got -1\)/);
  });

  it('refuses unknown keys, wrong types and non-integers', () => {
    assert.match(invalid('generate', { jobId: 'j', prompt: 'x', extra: 1 }).message, /Unrecognized key.*extra/);
    assert.match(invalid('generate', { jobId: 'j', prompt: 42 }).message, /prompt: .*\(got 42\)/);
    assert.match(
      invalid('generate', { jobId: 'j', prompt: 'x', settings: { stepsDecoder: 2.5 } }).message,
      /settings\.stepsDecoder/,
    );
    assert.match(invalid('generate', { prompt: 'x' }).message, /jobId: .*\(got nothing\)/);
    assert.match(invalid('engine.info', { verbose: true }).message, /^engine\.info: Unrecognized key/);
    assert.match(invalid('generate.cancel', {}).message, /^generate\.cancel: jobId/);
    assert.match(invalid('about', { pack: '/etc' }).message, /^about: Unrecognized key.*pack/);
  });

  it('treats a missing argument as an empty object', () => {
    assert.deepEqual(parseArgs('engine.info', undefined), {});
    assert.deepEqual(parseArgs('about', undefined), {});
  });
});

describe('contract: names', () => {
  it('maps operations and events to the bridge function names', () => {
    assert.equal(methodName('engine.info'), 'engineInfo');
    assert.equal(methodName('generate.cancel'), 'generateCancel');
    assert.equal(methodName('about'), 'about');
    assert.ok(operationNames.includes('about'));
    assert.equal(listenerName('progress'), 'onProgress');
    assert.ok(isOperationName('generate'));
    assert.ok(!isOperationName('toString'), 'prototype keys are not operations');
    assert.ok(!isOperationName('../generate'));
  });

  it('apiFromBridge unwraps replies into values and StudioErrors', async () => {
    const bridge = {
      engineInfo: async () => ({ ok: false, error: { code: 'engine', message: 'engine: no pack' } }),
      generate: async () => ({ ok: true, value: { jobId: 'j' } }),
      generateCancel: async () => ({ ok: true, value: { cancelled: true } }),
      about: async () => ({ ok: true, value: { app: { name: 'unCLIP Studio' } } }),
      onProgress: () => () => undefined,
    } as unknown as StudioBridge;
    const api = apiFromBridge(bridge);
    assert.deepEqual(await api.generateCancel({ jobId: 'j' }), { cancelled: true });
    assert.equal((await api.about()).app.name, 'unCLIP Studio');
    await assert.rejects(api.engineInfo(), (err: unknown) => {
      assert.ok(err instanceof StudioError);
      assert.equal(err.code, 'engine');
      assert.equal(err.message, 'engine: no pack');
      return true;
    });
    assert.deepEqual(Object.keys(api).sort(), [...operationNames.map(methodName), 'onProgress'].sort());
  });

  it('apiFromBridge refuses a bridge that lacks an operation', () => {
    assert.throws(() => apiFromBridge({} as StudioBridge), /lacks engineInfo/);
  });
});
