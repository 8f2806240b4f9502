import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StudioError } from '../../../preload/contract.ts';
import { LibraryError } from '../../../main/library/errors.ts';
import { toStudioError } from '../../../main/service/errors.ts';

describe('service errors', () => {
  for (const [name, code] of [
    ['InputError', 'invalid_argument'],
    ['AbortError', 'cancelled'],
    ['PackError', 'engine'],
    ['Error', 'engine'],
  ] as const) {
    it(`maps the engine's ${name} to ${code}, one line`, () => {
      const err = toStudioError(Object.assign(new Error('settings.n: too big\n    at stack'), { name }));
      assert.ok(err instanceof StudioError);
      assert.equal(err.code, code);
      assert.ok(!err.message.includes('\n'));
      assert.match(err.message, /settings\.n: too big$/);
    });
  }

  for (const [kind, code] of [
    ['not_found', 'not_found'],
    ['invalid', 'invalid_argument'],
    ['conflict', 'conflict'],
    ['io', 'library'],
    ['newer', 'library'],
    ['corrupt', 'library'],
  ] as const) {
    it(`maps the library's ${kind} to ${code}`, () => {
      const err = toStudioError(new LibraryError(kind, 'no such image: 7'));
      assert.equal(err.code, code);
      assert.equal(err.message, 'no such image: 7');
    });
  }

  it('keeps a StudioError as it is', () => {
    const e = new StudioError('busy', 'x');
    assert.equal(toStudioError(e), e);
  });
});
