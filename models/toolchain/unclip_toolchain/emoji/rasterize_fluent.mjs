// Rasterise @iconify-json/fluent-emoji-flat (MIT, Microsoft) to 64x64 RGBA with @resvg/resvg-js.
// usage: node rasterize_fluent.mjs <npm-prefix> <out.rgba> <out.json>
// Writes every icon named in chars.json (key -> icon name), aliases resolved (hFlip mirrored), as raw RGBA
// (N x 64 x 64 x 4 bytes, in the order of out.json's "keys").
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const [prefix, outRgba, outJson] = process.argv.slice(2);
if (!prefix || !outRgba || !outJson) {
  console.error('usage: node rasterize_fluent.mjs <npm-prefix> <out.rgba> <out.json>');
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(prefix), 'package.json'));
const { Resvg } = require('@resvg/resvg-js');
const setDir = path.join(prefix, 'node_modules', '@iconify-json', 'fluent-emoji-flat');
const icons = JSON.parse(fs.readFileSync(path.join(setDir, 'icons.json'), 'utf8'));
const chars = JSON.parse(fs.readFileSync(path.join(setDir, 'chars.json'), 'utf8'));
const SIZE = 64;

function resolve(name) {
  let hFlip = false;
  let cur = name;
  for (let depth = 0; depth < 8; depth++) {
    if (icons.icons[cur]) return { icon: icons.icons[cur], hFlip };
    const alias = icons.aliases?.[cur];
    if (!alias) return null;
    if (alias.hFlip) hFlip = !hFlip;
    cur = alias.parent;
  }
  return null;
}

const keys = Object.keys(chars).sort();
const out = Buffer.alloc(keys.length * SIZE * SIZE * 4);
const written = [];
let n = 0;
for (const key of keys) {
  const name = chars[key];
  const r = resolve(name);
  if (!r) { console.error(`fluent: ${name} (${key}) has no icon body, skipped`); continue; }
  const w = r.icon.width ?? icons.width ?? 32;
  const h = r.icon.height ?? icons.height ?? 32;
  const body = r.hFlip ? `<g transform="translate(${w} 0) scale(-1 1)">${r.icon.body}</g>` : r.icon.body;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${SIZE}" height="${SIZE}" viewBox="0 0 ${w} ${h}">${body}</svg>`;
  const img = new Resvg(svg, { fitTo: { mode: 'width', value: SIZE } }).render();
  if (img.width !== SIZE || img.height !== SIZE) { console.error(`fluent: ${name} rendered ${img.width}x${img.height}, skipped`); continue; }
  img.pixels.copy(out, n * SIZE * SIZE * 4);
  written.push({ key, name });
  n++;
}
fs.writeFileSync(outRgba, out.subarray(0, n * SIZE * SIZE * 4));
fs.writeFileSync(outJson, JSON.stringify({ size: SIZE, count: n, icons: written }) + '\n');
console.log(`fluent: rasterised ${n} of ${keys.length}`);
