import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { parseWebArgs } from '../../../main/web/serve.ts';

describe('web mode flags', () => {
  it('reads port, library, pack, backend and threads', () => {
    assert.deepEqual(
      parseWebArgs(['--port', '8123', '--library', 'lib', '--pack', 'p', '--backend', 'cuda', '--threads', '2']),
      { port: 8123, libraryDir: resolve('lib'), packDir: resolve('p'), backend: 'cuda', threads: 2 },
    );
    const defaults = parseWebArgs([]);
    assert.equal(defaults.port, 0);
    assert.match(defaults.libraryDir, /unclip-studio[\\/]library$/);
    assert.equal(defaults.packDir, undefined);
  });

  it('refuses bad values with one line naming the flag', () => {
    const bad: [string[], RegExp][] = [
      [['--port', '70000'], /^--port: expected an integer 0–65535 \(got 70000\)$/],
      [['--port', 'x'], /^--port: /],
      [['--threads', '0'], /^--threads: expected a positive integer \(got 0\)$/],
      [['--backend', 'tpu'], /^--backend: expected one of cpu, webgpu, cuda, dml, coreml \(got tpu\)$/],
      [['--colour', 'red'], /Unknown option '--colour'/],
    ];
    for (const [argv, message] of bad) {
      assert.throws(
        () => parseWebArgs(argv),
        (err: unknown) => err instanceof Error && message.test(err.message) && !err.message.includes('\n'),
        argv.join(' '),
      );
    }
  });
});
