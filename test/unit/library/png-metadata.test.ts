import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32, deflateSync } from 'node:zlib';
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

const bytes = (...parts: (string | Uint8Array | number[])[]): Uint8Array =>
  new Uint8Array(
    Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Uint8Array.from(p)))),
  );
const u32 = (n: number): number[] => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
/** One raw chunk: length, type, data, CRC (a wrong one when `badCrc`). */
const chunk = (type: string, data: Uint8Array, badCrc = false): Uint8Array => {
  const body = bytes(type, data);
  return bytes(u32(data.length), body, u32((crc32(body) ^ (badCrc ? 1 : 0)) >>> 0));
};
/** The PNG with raw chunks inserted just before its IEND (the last 12 bytes). */
const before = (png: Uint8Array, ...chunks: Uint8Array[]): Uint8Array =>
  bytes(png.subarray(0, -12), ...chunks, png.subarray(-12));
/** The types and keywords of a PNG's text chunks, in order. */
const textChunks = (png: Uint8Array): string[] => {
  const found: string[] = [];
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  for (let at = 8; at < png.length; at += 12 + view.getUint32(at)) {
    const type = String.fromCharCode(...png.subarray(at + 4, at + 8));
    const data = png.subarray(at + 8, at + 8 + view.getUint32(at));
    if (type.endsWith('Xt')) found.push(`${type} ${String.fromCharCode(...data.subarray(0, data.indexOf(0)))}`);
  }
  return found;
};
const raw = (b: Uint8Array): Promise<Buffer> => sharp(b).raw().toBuffer();

const HOSTILE = [
  'a "quoted" cat, with commas: and colons',
  "Robert'); DROP TABLE images;--",
  'emoji 🍎🐱‍👤 and RTL: قطة على الطاولة',
  'line one\nline two\nSteps: 99, inside the prompt',
  'control \u0001\u0007\t chars',
];

describe('A1111 parameters', () => {
  it('lead the settings line with Steps and round-trip awkward values', () => {
    const text = a1111Parameters({
      prompt: 'a cat',
      negativePrompt: 'blurry,\nlowres',
      width: 64,
      height: 64,
      model: 'emoji-tiny',
      sampler: 'DDIM',
      seed: null,
      extra: { 'Text diff to': 'a dog, "sitting": here\nnow', 'Odd, key: name': 3, Eta: 0.5 },
    });
    const lines = text.split('\n');
    assert.match(lines.at(-1)!, /^Steps: 0, Sampler: DDIM, Size: 64x64, Model: emoji-tiny, /);
    assert.doesNotMatch(lines.at(-1)!, /Seed/);
    const p = parseA1111Parameters(text);
    assert.equal(p.prompt, 'a cat');
    assert.equal(p.negativePrompt, 'blurry,\nlowres');
    assert.deepEqual(p.settings, {
      Steps: '0',
      Sampler: 'DDIM',
      Size: '64x64',
      Model: 'emoji-tiny',
      'Text diff to': 'a dog, "sitting": here\nnow',
      'Odd  key  name': '3',
      Eta: '0.5',
    });
  });

  it('read plain text as a prompt with no settings, and CRLF lines', () => {
    assert.deepEqual(parseA1111Parameters('just a prompt, Steps: 3'), {
      prompt: 'just a prompt, Steps: 3',
      settings: {},
    });
    const p = parseA1111Parameters('a\r\nNegative prompt: b\r\nSteps: 5, Seed: 9');
    assert.deepEqual(p, { prompt: 'a', negativePrompt: 'b', settings: { Steps: '5', Seed: '9' } });
  });
});

describe('PNG metadata', () => {
  it('round-trips UTF-8 recipes in iTXt, and the pixels are unchanged', async () => {
    const base = await png();
    for (const prompt of HOSTILE) {
      const parameters = a1111Parameters({
        prompt,
        negativePrompt: 'ugly 👎',
        steps: 25,
        guidance: 8,
        seed: 42,
        width: 4,
        height: 4,
        model: 'emoji-tiny',
      });
      const unclip = { prompt, parents: [{ id: 3, sha256: 'ab'.repeat(32) }] };
      const out = embedPngMetadata(base, { parameters, unclip });
      assert.deepEqual(textChunks(out), ['iTXt parameters', 'iTXt unclip']);
      const md = readPngMetadata(out);
      assert.equal(md.parameters, parameters);
      assert.deepEqual(md.unclip, unclip);
      const parsed = parseA1111Parameters(md.parameters!);
      assert.equal(parsed.prompt, prompt.trim());
      assert.equal(parsed.negativePrompt, 'ugly 👎');
      assert.deepEqual(
        [parsed.settings.Steps, parsed.settings['CFG scale'], parsed.settings.Seed, parsed.settings.Model],
        ['25', '8', '42', 'emoji-tiny'],
      );
      assert.ok((await raw(base)).equals(await raw(out)));
    }
  });

  it("reads A1111's tEXt parameters, zTXt, compressed iTXt and UTF-8 written into tEXt", async () => {
    const a1111 =
      'masterpiece, a castle\nSteps: in the prompt\nNegative prompt: blurry, lowres\n' +
      'Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 512x512, Model hash: abc123, Model: sd15, ' +
      'Lora hashes: "detail: 1a2b, style: 3c4d", Version: v1.7.0';
    const md = readPngMetadata(
      before(
        await png(),
        chunk('tEXt', bytes('parameters\0', a1111)),
        chunk('zTXt', bytes('Comment\0\0', deflateSync('compressed note'))),
        chunk('iTXt', bytes('Title\0\x01\0en\0Titel\0', deflateSync('チャット 💬'))),
        chunk('tEXt', bytes('Author\0', new TextEncoder().encode('Zoë'))),
        chunk('tEXt', bytes('Software\0caf\xe9')),
        chunk('tEXt', bytes('__proto__\0kept as text')),
      ),
    );
    assert.deepEqual(Object.keys(md.text), ['parameters', 'Comment', 'Title', 'Author', 'Software', '__proto__']);
    assert.equal(md.text.Comment, 'compressed note');
    assert.equal(md.text.Title, 'チャット 💬');
    assert.equal(md.text.Author, 'Zoë');
    assert.equal(md.text.Software, 'café');
    assert.equal(md.text['__proto__'], 'kept as text');
    assert.equal(md.unclip, undefined);
    const p = parseA1111Parameters(md.parameters!);
    assert.equal(p.prompt, 'masterpiece, a castle\nSteps: in the prompt');
    assert.equal(p.negativePrompt, 'blurry, lowres');
    assert.deepEqual(p.settings, {
      Steps: '20',
      Sampler: 'Euler a',
      'CFG scale': '7',
      Seed: '1234',
      Size: '512x512',
      'Model hash': 'abc123',
      Model: 'sd15',
      'Lora hashes': 'detail: 1a2b, style: 3c4d',
      Version: 'v1.7.0',
    });
  });

  it('replaces recipe chunks of any text type instead of adding more, and keeps the others', async () => {
    const base = before(
      await png(),
      chunk('tEXt', bytes('parameters\0from A1111')),
      chunk('zTXt', bytes('unclip\0\0', deflateSync('{"old":true}'))),
      chunk('tEXt', bytes('Software\0other tool')),
    );
    const once = embedPngMetadata(base, { parameters: 'one' });
    assert.deepEqual(textChunks(once), ['tEXt Software', 'iTXt parameters']);
    const twice = embedPngMetadata(once, { parameters: 'two', unclip: { v: 2 } });
    assert.deepEqual(textChunks(twice), ['tEXt Software', 'iTXt parameters', 'iTXt unclip']);
    assert.deepEqual(readPngMetadata(twice), {
      text: { Software: 'other tool', parameters: 'two', unclip: '{"v":2}' },
      parameters: 'two',
      unclip: { v: 2 },
    });
    assert.ok((await raw(base)).equals(await raw(twice)));
  });

  it('sharp drops text chunks when it encodes, even asked to keep metadata: ours go in after', async () => {
    const tagged = embedPngMetadata(await png(), { parameters: 'kept', unclip: { v: 1 } });
    assert.equal(readPngMetadata(tagged).parameters, 'kept');
    for (const reencoded of [await sharp(tagged).png().toBuffer(), await sharp(tagged).keepMetadata().png().toBuffer()])
      assert.deepEqual(readPngMetadata(reencoded), { text: {} });
  });

  it('caps decompressed and total text, and skips damaged text chunks', async () => {
    const bomb = deflateSync(Buffer.alloc(16 * MAX_TEXT_BYTES, 0x41));
    assert.ok(bomb.length < MAX_TEXT_BYTES / 8);
    const big = 'b'.repeat(MAX_TEXT_BYTES * 0.6);
    const md = readPngMetadata(
      before(
        await png(),
        chunk('zTXt', bytes('bomb\0\0', bomb)),
        chunk('iTXt', bytes('ibomb\0\x01\0\0\0', bomb)),
        chunk('iTXt', bytes('broken')),
        chunk('iTXt', bytes('notutf8\0\0\0\0\0\xff\xfe')),
        chunk('zTXt', bytes('notdeflate\0\0garbage')),
        chunk('tEXt', bytes('badcrc\0text'), true),
        chunk('tEXt', bytes('first\0', big)),
        chunk('tEXt', bytes('second\0', big)),
        chunk('tEXt', bytes('small\0fits')),
      ),
    );
    assert.deepEqual(Object.keys(md.text), ['first', 'small']);
    assert.equal(md.text.first, big);
  });

  it('refuses damaged input with one line; reading keeps what came before the damage and never throws', async () => {
    const good = await png();
    const oneLine = (re: RegExp) => (err: unknown) =>
      err instanceof Error && re.test(err.message) && !/\n/.test(err.message);
    assert.throws(() => embedPngMetadata(new TextEncoder().encode('GIF89a....'), {}), oneLine(/^not a PNG file/));
    const bad = good.slice();
    bad[bad.length - 20]! ^= 0xff; // inside IDAT
    assert.throws(() => embedPngMetadata(bad, {}), oneLine(/^damaged PNG: the IDAT chunk at byte \d+ fails its CRC/));
    assert.throws(() => embedPngMetadata(good.subarray(0, -12), {}), oneLine(/without an IEND chunk/));
    assert.throws(() => embedPngMetadata(bytes(good.subarray(0, 8), good.subarray(33)), {}), oneLine(/not IHDR/));
    // a length claiming 4 GiB: refused at once, not allocated or read byte by byte
    const hostile = bytes(good.subarray(0, 33), chunk('tEXt', bytes('ok\0before')), u32(0xfffffff0), 'tEXtabcdefgh');
    const t0 = performance.now();
    assert.throws(() => embedPngMetadata(hostile, {}), oneLine(/the tEXt chunk at byte \d+ runs past the end/));
    assert.deepEqual(readPngMetadata(hostile), { text: { ok: 'before' } });
    assert.ok(performance.now() - t0 < 1000);
    assert.deepEqual(readPngMetadata(bad), { text: {} });
    for (const other of [
      await sharp(good).jpeg().toBuffer(),
      await sharp(good).webp().toBuffer(),
      new Uint8Array(0),
      good.subarray(0, 8),
    ])
      assert.deepEqual(readPngMetadata(other), { text: {} });
  });
});
