import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createIpcHandler } from '../../../main/app/ipc-handler.ts';
import { APP_ENTRY_URL } from '../../../main/app/origins.ts';
import type { EngineInfo } from '../../../main/engine/api.ts';
import { TINY_PACK_DIR } from '../../../main/engine/packs.ts';
import { MAX_PACK_LICENSES, readCapped } from '../../../main/service/about.ts';
import { createStudioService } from '../../../main/service/studio.ts';
import { ABOUT_DOCUMENT_MAX_BYTES } from '../../../preload/contract.ts';
import { UNOPENED_LIBRARY } from '../../integration/service/dirs.ts';
import { createScriptedEngine, scriptedInfo } from '../../integration/web/scripted-engine.ts';

const scratch = mkdtempSync(join(tmpdir(), 'studio-about-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let made = 0;

/** A pack folder holding a copy of the tiny pack's manifest.json plus `files`. */
function makePack(files: Record<string, string | Buffer> = {}): string {
  const dir = join(scratch, `pack-${made++}`);
  mkdirSync(dir);
  copyFileSync(join(TINY_PACK_DIR, 'manifest.json'), join(dir, 'manifest.json'));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return dir;
}

/** An app folder with package.json, THIRD_PARTY_NOTICES.md and LICENSE (each only when given). */
function makeApp(files: Record<string, string> = {}): string {
  const dir = join(scratch, `app-${made++}`);
  mkdirSync(dir);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return dir;
}

const APP_FILES = {
  'package.json': JSON.stringify({
    name: 'unclip-studio',
    productName: 'Test Studio',
    version: '9.8.7',
    license: 'MIT',
  }),
  'THIRD_PARTY_NOTICES.md': '# Third-party notices\nzod (MIT)\n',
  LICENSE: 'Apache License\nVersion 2.0\n',
};

/** The engine info a real engine would answer for `dir` (name, title, licence from its manifest). */
function infoFor(dir: string): EngineInfo {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Record<string, string>;
  return {
    ...scriptedInfo,
    pack: {
      ...scriptedInfo.pack,
      dir,
      name: manifest.name!,
      title: manifest.title!,
      license: manifest.license!,
      attribution: manifest.attribution!,
    },
  };
}

async function about(packDir: string | Error, appDir: string) {
  const engine = createScriptedEngine();
  engine.info = async () => {
    if (packDir instanceof Error) throw packDir;
    return infoFor(packDir);
  };
  const service = createStudioService({ engine, appDir, libraryDir: UNOPENED_LIBRARY });
  try {
    return await service.call('about', {});
  } finally {
    await service.close();
  }
}

describe('about: the app, the pack and their notices', () => {
  it('lists ATTRIBUTION.md, NOTICE.md, LICENSE-*.txt sorted, then the app’s notices and licence', async () => {
    const pack = makePack({
      'LICENSE-MIT.txt': 'MIT License\n',
      'NOTICE.md': 'notice text\n',
      'LICENSE-Apache-2.0.txt': 'Apache text\n',
      'ATTRIBUTION.md': '# Attribution\nweights by someone\n',
      'MODEL_CARD.md': 'not an attribution file',
      'LICENSE.txt': 'no dash: not a pack licence file',
      'LICENSE-NOEXT': 'not .txt',
      'notice.md': 'wrong case',
    });
    const view = await about(pack, makeApp(APP_FILES));
    assert.deepEqual(view.app, { name: 'Test Studio', version: '9.8.7', license: 'MIT' });
    assert.equal(view.pack?.name, 'tiny-reference');
    assert.equal(view.pack?.license, 'Apache-2.0');
    assert.equal(view.packError, undefined);
    assert.deepEqual(
      view.documents.map((d) => `${d.source}:${d.name}`),
      [
        'pack:ATTRIBUTION.md',
        'pack:NOTICE.md',
        'pack:LICENSE-Apache-2.0.txt',
        'pack:LICENSE-MIT.txt',
        'app:THIRD_PARTY_NOTICES.md',
        'app:LICENSE',
      ],
    );
    assert.equal(view.documents[0]?.text, '# Attribution\nweights by someone\n');
    assert.equal(view.documents[3]?.text, 'MIT License\n');
    assert.equal(view.documents[4]?.text, APP_FILES['THIRD_PARTY_NOTICES.md']);
    assert.ok(view.documents.every((d) => !d.truncated));
    // Plain data: survives structured clone (IPC) unchanged.
    assert.deepEqual(structuredClone(view), view);
  });

  it('caps each text at ABOUT_DOCUMENT_MAX_BYTES and says so', async () => {
    const huge = 'A'.repeat(ABOUT_DOCUMENT_MAX_BYTES + 5000);
    const exact = 'B'.repeat(ABOUT_DOCUMENT_MAX_BYTES);
    const pack = makePack({ 'ATTRIBUTION.md': huge, 'LICENSE-X.txt': exact });
    const view = await about(pack, makeApp(APP_FILES));
    const [attribution, license] = view.documents;
    assert.equal(attribution?.name, 'ATTRIBUTION.md');
    assert.equal(attribution?.text.length, ABOUT_DOCUMENT_MAX_BYTES);
    assert.equal(attribution?.truncated, true);
    assert.equal(license?.name, 'LICENSE-X.txt');
    assert.equal(license?.text, exact, 'a file of exactly the cap is whole');
    assert.equal(license?.truncated, false);
  });

  it('never cuts a UTF-8 character in half at the cap', async () => {
    const file = join(makePack(), 'cut.txt');
    writeFileSync(file, 'ab€cd'); // € is 3 bytes: a b [e2 82 ac] c d
    assert.deepEqual(await readCapped(file, 3), { text: 'ab', truncated: true });
    assert.deepEqual(await readCapped(file, 5), { text: 'ab€', truncated: true });
    assert.deepEqual(await readCapped(file, 7), { text: 'ab€cd', truncated: false });
    assert.equal(await readCapped(join(scratch, 'missing.txt')), null);
  });

  it('a pack with no attribution file gets no pack documents; the app’s still show', async () => {
    const view = await about(makePack(), makeApp(APP_FILES));
    assert.equal(view.pack?.name, 'tiny-reference');
    assert.deepEqual(
      view.documents.map((d) => `${d.source}:${d.name}`),
      ['app:THIRD_PARTY_NOTICES.md', 'app:LICENSE'],
    );
  });

  it('an app folder without package.json or notices falls back instead of failing', async () => {
    const view = await about(makePack({ 'NOTICE.md': 'n' }), makeApp());
    assert.deepEqual(view.app, { name: 'unCLIP Studio', version: 'unknown', license: 'unknown' });
    assert.deepEqual(
      view.documents.map((d) => d.name),
      ['NOTICE.md'],
    );
  });

  it('still answers when the engine has no pack, naming why', async () => {
    const view = await about(new Error('pack manifest.json: missing\n  at stack'), makeApp(APP_FILES));
    assert.equal(view.pack, null);
    assert.equal(view.packError, 'engine: pack manifest.json: missing');
    assert.deepEqual(
      view.documents.map((d) => d.name),
      ['THIRD_PARTY_NOTICES.md', 'LICENSE'],
    );
  });

  it('skips what a hostile pack puts in place of a text file', async () => {
    const outside = join(scratch, 'secret.txt');
    writeFileSync(outside, 'secret');
    const pack = makePack({ 'LICENSE-ok.txt': 'ok' });
    mkdirSync(join(pack, 'NOTICE.md')); // a folder
    symlinkSync(outside, join(pack, 'ATTRIBUTION.md')); // a link out of the pack
    symlinkSync(join(pack, 'LICENSE-ok.txt'), join(pack, 'LICENSE-same.txt')); // a link inside is fine
    const fifo = spawnSync('mkfifo', [join(pack, 'LICENSE-fifo.txt')]).status === 0;
    const view = await about(pack, makeApp());
    assert.deepEqual(
      view.documents.map((d) => d.name),
      ['LICENSE-ok.txt', 'LICENSE-same.txt'],
      fifo ? 'with a FIFO' : 'no mkfifo here',
    );
    assert.ok(view.documents.every((d) => d.text === 'ok'));
  });

  it(`shows at most ${MAX_PACK_LICENSES} licence files`, async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < MAX_PACK_LICENSES + 8; i++) files[`LICENSE-${String(i).padStart(3, '0')}.txt`] = `l${i}`;
    const view = await about(makePack(files), makeApp());
    assert.equal(view.documents.length, MAX_PACK_LICENSES);
    assert.equal(view.documents[0]?.name, 'LICENSE-000.txt');
    assert.equal(view.documents.at(-1)?.name, `LICENSE-${String(MAX_PACK_LICENSES - 1).padStart(3, '0')}.txt`);
  });

  it('by default reads the repository’s package.json and notices, and the tiny pack’s NOTICE.md', async () => {
    const engine = createScriptedEngine();
    engine.info = async () => infoFor(TINY_PACK_DIR);
    const service = createStudioService({ engine, libraryDir: UNOPENED_LIBRARY });
    const view = await service.call('about', {});
    await service.close();
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      productName: string;
      version: string;
    };
    assert.deepEqual(view.app, { name: pkg.productName, version: pkg.version, license: 'Apache-2.0' });
    assert.deepEqual(
      view.documents.map((d) => `${d.source}:${d.name}`),
      ['pack:NOTICE.md', 'app:THIRD_PARTY_NOTICES.md', 'app:LICENSE'],
    );
    assert.match(view.documents[0]?.text ?? '', /^# Notices for this model pack/);
  });

  it('travels through the guarded IPC handler and refuses arguments', async () => {
    const service = createStudioService({ engine: createScriptedEngine(), libraryDir: UNOPENED_LIBRARY });
    const handler = createIpcHandler('about', service, null);
    const frame = { senderFrame: { url: APP_ENTRY_URL, parent: null } };
    const reply = await handler(frame, {});
    assert.ok(reply.ok);
    assert.equal((reply.value as { pack: { name: string } }).pack.name, 'scripted');
    const bad = await handler(frame, { pack: '/etc' });
    assert.ok(!bad.ok && bad.error.code === 'invalid_argument');
    assert.ok(!(await handler({ senderFrame: { url: 'https://example.com/', parent: null } }, {})).ok);
    await service.close();
  });
});
