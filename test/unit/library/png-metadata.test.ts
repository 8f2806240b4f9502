import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { describe, it } from 'node:test';
import encodeChunks from 'png-chunks-encode';
import extractChunks from 'png-chunks-extract';
import sharp from 'sharp';
import {
  a1111Parameters,
  embedPngMetadata,
  MAX_TEXT_BYTES,
  parseA1111Parameters,
  readPngMetadata,
} from '../../../main/library/png-metadata.ts';

const png = async (): Promise<Uint8Array> =>
  new Uint8Array(
    await sharp({ create: { width: 4, height: 4, channels: 3, background: '#3366cc' } })
      .png()
      .toBuffer(),
  );

const withChunk = (bytes: Uint8Array, name: string, data: Uint8Array): Uint8Array => {
  const chunks = extractChunks(bytes);
  chunks.splice(chunks.length - 1, 0, { name, data });
  return encodeChunks(chunks);
};
const latin1 = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

const HOSTILE = [
  'a "quoted" cat, with commas: and colons',
  "Robert'); DROP TABLE images;--",
  'emoji 🍎🐱‍👤 and RTL: قطة على الطاولة',
  'line one\nline two\nSteps: 99, inside the prompt',
  'control \u0001\u0007 chars',
];

describe('PNG metadata', () => {
  it('round-trips UTF-8 recipes in iTXt, and the pixels are unchanged', async () => {
    const base = await png();
    for (const prompt of HOSTILE) {
      const parameters = a1111Parameters({
        prompt,
        steps: 25,
        guidance: 8,
        seed: 42,
        width: 4,
        height: 4,
        model: 'emoji-tiny',
      });
      const out = embedPngMetadata(base, { parameters, unclip: { prompt, parents: [{ id: 3 }] } });
      const md = readPngMetadata(out);
      assert.equal(md.parameters, parameters);
      assert.deepEqual(md.unclip, { prompt, parents: [{ id: 3 }] });
      const parsed = parseA1111Parameters(md.parameters!);
      assert.equal(parsed.prompt, prompt.trim());
      assert.equal(parsed.settings.Seed, '42');
      assert.equal(parsed.settings.Model, 'emoji-tiny');
      const [a, b] = await Promise.all([sharp(base).raw().toBuffer(), sharp(out).raw().toBuffer()]);
      assert.ok(a.equals(b));
    }
  });

  it('replaces its own chunks instead of adding more, keeps others', async () => {
    const base = withChunk(await png(), 'tEXt', latin1('Software\0other tool'));
    const once = embedPngMetadata(base, { parameters: 'one' });
    const twice = embedPngMetadata(once, { parameters: 'two', unclip: { v: 2 } });
    const texts = extractChunks(twice).filter((c) => c.name === 'iTXt' || c.name === 'tEXt');
    assert.equal(texts.length, 3);
    const md = readPngMetadata(twice);
    assert.equal(md.parameters, 'two');
    assert.equal(md.text.Software, 'other tool');
  });

  it("reads A1111's own tEXt parameters and zTXt", async () => {
    const a1111 =
      'masterpiece, a castle\nNegative prompt: blurry, lowres\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 512x512, Model hash: abc123, Model: sd15';
    const bytes = withChunk(await png(), 'tEXt', latin1(`parameters\0${a1111}`));
    const md = readPngMetadata(bytes);
    const p = parseA1111Parameters(md.parameters!);
    assert.equal(p.prompt, 'masterpiece, a castle');
    assert.equal(p.negativePrompt, 'blurry, lowres');
    assert.deepEqual(
      [p.settings.Steps, p.settings.Sampler, p.settings['CFG scale'], p.settings.Seed, p.settings.Model],
      ['20', 'Euler a', '7', '1234', 'sd15'],
    );
    const z = withChunk(
      await png(),
      'zTXt',
      new Uint8Array([...latin1('Comment\0\0'), ...deflateSync('compressed note')]),
    );
    assert.equal(readPngMetadata(z).text.Comment, 'compressed note');
  });

  it('sharp drops text chunks when it re-encodes: metadata must go in after encoding', async () => {
    const tagged = embedPngMetadata(await png(), { parameters: 'kept?' });
    const reencoded = new Uint8Array(await sharp(tagged).png().toBuffer());
    assert.equal(readPngMetadata(reencoded).parameters, undefined);
  });

  it('caps decompressed text (a zTXt bomb) and skips damaged chunks', async () => {
    const bomb = deflateSync(Buffer.alloc(8 * MAX_TEXT_BYTES, 0x41));
    const bytes = withChunk(await png(), 'zTXt', new Uint8Array([...latin1('bomb\0\0'), ...bomb]));
    const damaged = withChunk(bytes, 'iTXt', latin1('broken'));
    const md = readPngMetadata(damaged);
    assert.equal(md.text.bomb, undefined);
    assert.deepEqual(md.text, {});
  });

  it('refuses a non-PNG or a bad CRC with one line; reading never throws', async () => {
    assert.throws(() => embedPngMetadata(new TextEncoder().encode('GIF89a....'), {}), /^Error: not a PNG file/);
    const bytes = await png();
    const bad = bytes.slice();
    bad[bytes.length - 20] = bad[bytes.length - 20]! ^ 0xff;
    assert.throws(() => embedPngMetadata(bad, { parameters: 'x' }), /damaged PNG/);
    assert.deepEqual(readPngMetadata(bad), { text: {} });
    assert.deepEqual(readPngMetadata(new Uint8Array([0xff, 0xd8, 0xff])), { text: {} });
  });
});
