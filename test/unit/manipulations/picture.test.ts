import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { decodeImage, MAX_INPUT_PIXELS } from '../../../main/engine/image.ts';
import { psnr, readPicture, squareRgb } from '../../../main/engine/manipulations/picture.ts';

/** A real 8×8 PNG whose IHDR is patched to claim w×h (CRC fixed): a header without the pixel data. */
async function pngClaiming(w: number, h: number): Promise<Uint8Array> {
  const png = Buffer.from(
    await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } })
      .png()
      .toBuffer(),
  );
  png.writeUInt32BE(w, 16);
  png.writeUInt32BE(h, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
  return png;
}

const px = (img: { rgb: Uint8Array; width: number }, x: number, y: number) =>
  Array.from(img.rgb.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));

test('pictures: alpha flattened onto white, grey/16-bit/palette/CMYK become 8-bit sRGB', async () => {
  const transparent = await sharp({
    create: { width: 4, height: 2, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 0 } },
  })
    .png()
    .toBuffer();
  const t = await readPicture(transparent);
  assert.deepEqual([t.width, t.height, ...px(t, 0, 0)], [4, 2, 255, 255, 255]);
  const grey = await sharp(new Uint8Array(9).fill(128), { raw: { width: 3, height: 3, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toBuffer();
  assert.equal((await sharp(grey).metadata()).channels, 1);
  assert.deepEqual(px(await readPicture(grey), 1, 1), [128, 128, 128]);
  const deep = await sharp({ create: { width: 3, height: 3, channels: 3, background: '#00ff00' } })
    .toColourspace('rgb16')
    .png()
    .toBuffer();
  assert.equal((await sharp(deep).metadata()).depth, 'ushort');
  const d = await readPicture(deep);
  assert.equal(d.rgb.length, 27);
  assert.deepEqual(px(d, 0, 0), [0, 255, 0]);
  const palette = await sharp({ create: { width: 3, height: 3, channels: 3, background: '#0000ff' } })
    .png({ palette: true })
    .toBuffer();
  assert.deepEqual(px(await readPicture(palette), 2, 2), [0, 0, 255]);
  const cmyk = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#ffffff' } })
    .toColourspace('cmyk')
    .jpeg()
    .toBuffer();
  assert.equal((await sharp(cmyk).metadata()).space, 'cmyk');
  const c = await readPicture(cmyk);
  assert.ok(
    px(c, 4, 4).every((v) => v > 240),
    `white from CMYK: ${px(c, 4, 4)}`,
  );
});

test('pictures: EXIF orientation is applied; an animation gives its first frame', async () => {
  // 16×8: left half red, right half blue; EXIF orientation 6 (display rotated 90° clockwise) → 8×16, red on top
  const raw = new Uint8Array(16 * 8 * 3);
  for (let p = 0; p < 16 * 8; p++) raw.set(p % 16 < 8 ? [255, 0, 0] : [0, 0, 255], p * 3);
  const rotated = await sharp(raw, { raw: { width: 16, height: 8, channels: 3 } })
    .withMetadata({ orientation: 6 })
    .jpeg({ quality: 100, chromaSubsampling: '4:4:4' })
    .toBuffer();
  const r = await readPicture(rotated);
  assert.deepEqual([r.width, r.height], [8, 16]);
  assert.ok(px(r, 4, 1)[0]! > 200 && px(r, 4, 1)[2]! < 60, `top ${px(r, 4, 1)}`);
  assert.ok(px(r, 4, 14)[2]! > 200 && px(r, 4, 14)[0]! < 60, `bottom ${px(r, 4, 14)}`);
  const frames = new Uint8Array(2 * 2 * 2 * 3);
  frames.fill(255, 0, 12); // frame 0 white, frame 1 black
  const gif = await sharp(frames, { raw: { width: 2, height: 4, channels: 3, pageHeight: 2 } })
    .gif()
    .toBuffer();
  assert.equal((await sharp(gif).metadata()).pages, 2);
  const g = await readPicture(gif);
  assert.deepEqual([g.width, g.height, ...px(g, 0, 0)], [2, 2, 255, 255, 255]);
});

test('pictures: bad files fail with one line naming the file and what to do', async () => {
  await assert.rejects(
    readPicture(new Uint8Array(0), 'empty.png'),
    /^InputError: empty.png: the file is empty \(0 bytes\); give a PNG/,
  );
  await assert.rejects(
    readPicture(Buffer.from('hello, not a picture'), 'notes.txt'),
    /notes.txt: not a picture format this app reads; convert it to PNG/,
  );
  const png = await sharp({
    create: {
      width: 64,
      height: 64,
      channels: 3,
      background: '#000',
      noise: { type: 'gaussian', mean: 128, sigma: 40 },
    },
  })
    .png()
    .toBuffer();
  await assert.rejects(
    readPicture(png.subarray(0, png.length >> 1), 'cut.png'),
    /cut.png: the picture is truncated or corrupt .*; re-export it as PNG/,
  );
  // a decompression bomb: a PNG whose header says 30000×30000; refused from the header, nothing decoded
  await assert.rejects(
    readPicture(await pngClaiming(30000, 30000), 'bomb.png'),
    /bomb.png: 30000×30000 is over the 40 Mpx limit \(a decompression bomb\?\); downscale it first/,
  );
});

test('pictures: both decoders refuse the same pixel count, from the header', async () => {
  assert.equal(MAX_INPUT_PIXELS, 40_000_000);
  const bomb = await pngClaiming(8000, 8000); // 64 Mpx: once under generate's limit, 18 s and 0.7 GB to decode
  const over = /8000×8000 is over the 40 Mpx limit \(a decompression bomb\?\); downscale it first/;
  await assert.rejects(decodeImage(bomb), { name: 'InputError', message: new RegExp(`^image: ${over.source}`) });
  await assert.rejects(readPicture(bomb, 'bomb.png'), {
    name: 'InputError',
    message: new RegExp(`^bomb.png: ${over.source}`),
  });
  // at the limit: both go on to decode (and find this header's pixel data missing)
  const edge = await pngClaiming(8000, 5000);
  await assert.rejects(decodeImage(edge), /^InputError: image: not a readable picture/);
  await assert.rejects(readPicture(edge, 'edge.png'), /edge.png: the picture is truncated or corrupt/);
});

test('squareRgb centre-crops and resizes; psnr', () => {
  const img = { rgb: new Uint8Array(4 * 2 * 3).fill(10), width: 4, height: 2 };
  img.rgb.set([200, 200, 200], (0 * 4 + 1) * 3); // inside the centre 2×2
  const sq = squareRgb(img, 2);
  assert.deepEqual(Array.from(sq.subarray(0, 3)), [200, 200, 200]);
  assert.equal(psnr(sq, sq), Infinity);
  const other = sq.slice();
  other[0] = other[0]! - 10;
  assert.ok(Math.abs(psnr(sq, other) - 10 * Math.log10((255 * 255 * 12) / 100)) < 1e-9);
});
