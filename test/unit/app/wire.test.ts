import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { base64ToBytes, bytesToBase64, fromWire, toWire } from '../../../preload/wire.ts';

describe('wire: JSON with binary fields', () => {
  it('round-trips Uint8Array and Float32Array inside nested data', () => {
    const png = new Uint8Array(70_000).map((_, i) => (i * 31) % 256);
    const embedding = new Float32Array([0.5, -1.25, 3e-8, Number.MAX_VALUE]);
    const value = { images: [{ seed: 3, png }], embedding, note: 'ok' };
    const back = fromWire(toWire(value)) as typeof value;
    assert.ok(back.images[0]?.png instanceof Uint8Array);
    assert.deepEqual(back.images[0].png, png);
    assert.ok(back.embedding instanceof Float32Array);
    assert.deepEqual(Array.from(back.embedding), Array.from(embedding));
    assert.equal(back.note, 'ok');
  });

  it('encodes a typed-array view, not its whole buffer', () => {
    const buffer = new Float32Array([1, 2, 3, 4]);
    const view = buffer.subarray(1, 3);
    assert.deepEqual(Array.from(fromWire(toWire(view)) as Float32Array), [2, 3]);
  });

  it('matches Node base64', () => {
    const bytes = new Uint8Array([0, 1, 2, 250, 251, 255]);
    assert.equal(bytesToBase64(bytes), Buffer.from(bytes).toString('base64'));
    assert.deepEqual(base64ToBytes(Buffer.from(bytes).toString('base64')), bytes);
  });

  it('leaves look-alike objects with other keys alone', () => {
    assert.deepEqual(fromWire('{"$bytes":"AA==","x":1}'), { $bytes: 'AA==', x: 1 });
  });
});
