import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  apiFromBridge,
  eventNames,
  isOperationName,
  LIMITS,
  mediaPath,
  parseMediaPath,
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
    const args = parseArgs('generate', { prompt: '  a red apple  ', settings: { n: 2, seed: 7 } });
    assert.deepEqual(args, { prompt: 'a red apple', settings: { n: 2, seed: 7 } });
    assert.deepEqual(parseArgs('generate', { prompt: 'x' }).settings, {});
    assert.deepEqual(parseArgs('vary', { id: 3 }), { id: 3, n: 4, eta: 1 });
  });

  it('names the field and the value it got', () => {
    const err = invalid('generate', { prompt: 'x', settings: { n: 400 } });
    assert.match(err.message, /^generate: settings\.n: .*64.*\(got 400\)$/);
  });

  it('reports every bad field on one line', () => {
    const err = invalid('gallery.star', { ids: [0, 'x'], starred: 1 });
    assert.match(err.message, /ids\.0: .*\(got 0\)/);
    assert.match(err.message, /starred: .*\(got 1\)/);
  });

  it('checks the library operations', () => {
    assert.match(invalid('gallery.similar', { k: 5 }).message, /give either id or text/);
    assert.match(invalid('gallery.similar', { id: 1, text: 'x' }).message, /give either id or text/);
    assert.match(invalid('gallery.export', { dir: '/tmp/x' }).message, /give one of ids, boardId or all/);
    assert.match(invalid('gallery.list', { limit: 10_000 }).message, /limit: .*\(got 10000\)/);
    assert.match(invalid('gallery.list', { kinds: ['photo'] }).message, /kinds\.0/);
    assert.match(invalid('jobs.move', { id: 1, to: 'middle' }).message, /to: /);
    assert.match(invalid('boards.create', { name: '   ' }).message, /name: must not be empty/);
    assert.match(invalid('gallery.import', { files: [{ name: 'a.png', bytes: 'AAAA' }] }).message, /files\.0\.bytes/);
    assert.match(invalid('textdiff', { id: 1, to: 'x', thetas: [2] }).message, /thetas\.0/);
  });

  it('checks the packs and settings operations', () => {
    assert.deepEqual(parseArgs('packs.list', undefined), {});
    assert.deepEqual(parseArgs('packs.import', { dir: '  /tmp/pack  ' }), { dir: '/tmp/pack' });
    assert.match(invalid('packs.list', { all: true }).message, /^packs\.list: Unrecognized key/);
    assert.match(invalid('packs.verify', {}).message, /^packs\.verify: name: .*\(got nothing\)/);
    assert.match(invalid('packs.verify', { name: '../etc' }).message, /name: a pack name has lower-case/);
    assert.match(invalid('packs.use', { name: 'A' }).message, /^packs\.use: name: .*\(got "A"\)/);
    assert.match(invalid('packs.import', { dir: '   ' }).message, /dir: must not be empty/);
    assert.match(invalid('packs.import', { dir: 'x'.repeat(5000) }).message, /dir: /);
    assert.match(invalid('settings.get', { theme: 'dark' }).message, /^settings\.get: Unrecognized key/);
    assert.match(invalid('settings.update', {}).message, /give at least one of libraryDir, backend, threads, theme/);
    assert.match(invalid('settings.update', { theme: 'purple' }).message, /theme: .*\(got "purple"\)/);
    assert.match(invalid('settings.update', { backend: 'tpu' }).message, /backend: .*\(got "tpu"\)/);
    assert.match(invalid('settings.update', { threads: 0 }).message, /threads: .*\(got 0\)/);
    assert.match(invalid('settings.update', { threads: 1.5 }).message, /threads: /);
    assert.match(invalid('settings.update', { libraryDir: '' }).message, /libraryDir: must not be empty/);
    assert.deepEqual(parseArgs('settings.update', { theme: 'dark', threads: 2 }), { theme: 'dark', threads: 2 });
  });

  it('reports a bad generate on one line', () => {
    const err = invalid('generate', { prompt: '   ', settings: { seed: -1 } });
    assert.match(err.message, /prompt: must not be empty/);
    assert.match(err.message, /settings\.seed: .*\(got -1\)/);
  });

  it('refuses unknown keys, wrong types and non-integers', () => {
    assert.match(invalid('generate', { prompt: 'x', extra: 1 }).message, /Unrecognized key.*extra/);
    assert.match(invalid('generate', { prompt: 42 }).message, /prompt: .*\(got 42\)/);
    assert.match(
      invalid('generate', { prompt: 'x', settings: { stepsDecoder: 2.5 } }).message,
      /settings\.stepsDecoder/,
    );
    assert.match(invalid('generate', {}).message, /prompt: .*\(got nothing\)/);
    assert.match(invalid('engine.info', { verbose: true }).message, /^engine\.info: Unrecognized key/);
    assert.match(invalid('jobs.cancel', {}).message, /^jobs\.cancel: id/);
    assert.match(invalid('about', { pack: '/etc' }).message, /^about: Unrecognized key.*pack/);
  });

  it('rejects malformed arguments for every operation, one line each', () => {
    for (const op of operationNames)
      for (const raw of [42, 'x', [1], true, { __unknown__: 1 }])
        assert.match(invalid(op, raw).message, new RegExp(`^${op}: `));
  });

  it('treats a missing argument as an empty object', () => {
    assert.deepEqual(parseArgs('prompt.tokens', { prompt: 'a cat' }), { prompt: 'a cat' });
    assert.match(invalid('prompt.tokens', {}).message, /^prompt\.tokens: prompt/);
    assert.match(
      invalid('prompt.tokens', { prompt: 'x'.repeat(LIMITS.promptChars + 1) }).message,
      /^prompt\.tokens: prompt/,
    );
    assert.deepEqual(parseArgs('engine.info', undefined), {});
    assert.deepEqual(parseArgs('about', undefined), {});
  });
});

describe('contract: names', () => {
  it('maps operations and events to the bridge function names', () => {
    assert.equal(methodName('engine.info'), 'engineInfo');
    assert.equal(methodName('jobs.cancel'), 'jobsCancel');
    assert.equal(methodName('gallery.emptyTrash'), 'galleryEmptyTrash');
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
      about: async () => ({ ok: true, value: { app: { name: 'unCLIP Studio' } } }),
      jobsCancel: async () => ({ ok: true, value: { id: 4, status: 'cancelled' } }),
    } as unknown as Record<string, unknown>;
    for (const op of operationNames) bridge[methodName(op)] ??= async () => ({ ok: true, value: null });
    for (const name of eventNames) bridge[listenerName(name)] = () => () => undefined;
    const api = apiFromBridge(bridge as unknown as StudioBridge);
    assert.equal((await api.jobsCancel({ id: 4 })).status, 'cancelled');
    assert.equal((await api.about()).app.name, 'unCLIP Studio');
    await assert.rejects(api.engineInfo(), (err: unknown) => {
      assert.ok(err instanceof StudioError);
      assert.equal(err.code, 'engine');
      assert.equal(err.message, 'engine: no pack');
      return true;
    });
    assert.deepEqual(
      Object.keys(api).sort(),
      [...operationNames.map(methodName), ...eventNames.map(listenerName)].sort(),
    );
  });

  it('names media paths and parses only those', () => {
    assert.equal(mediaPath('thumb', 12), '/media/thumb/12');
    assert.deepEqual(parseMediaPath('/media/image/12'), { kind: 'image', id: 12 });
    for (const bad of [
      '/media/image/0',
      '/media/image/../1',
      '/media/file/1',
      '/media/image/1/',
      '/media/image/99999999999999999',
    ])
      assert.equal(parseMediaPath(bad), null, bad);
  });

  it('apiFromBridge refuses a bridge that lacks an operation', () => {
    assert.throws(() => apiFromBridge({} as StudioBridge), /lacks engineInfo/);
  });
});
