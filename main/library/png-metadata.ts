// PNG text metadata: the recipe the studio writes into every PNG, and what it reads back on import.
// Chunks are split and joined by png-chunks-extract / png-chunks-encode (they check the signature and
// every CRC); the text chunks themselves are coded here, because the maintained tEXt library
// (png-chunk-text) is Latin-1 only and prompts are UTF-8: we write iTXt (UTF-8, uncompressed) and
// read tEXt, zTXt and iTXt. sharp drops text chunks when it encodes, so metadata goes in after encoding.

import extractChunks from 'png-chunks-extract';
import encodeChunks from 'png-chunks-encode';
import { inflateSync } from 'node:zlib';

/** The most text read from one file (a hostile PNG cannot balloon memory through zTXt/iTXt). */
export const MAX_TEXT_BYTES = 1 << 20;
const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const RECIPE_KEYS = ['parameters', 'unclip'];

export interface PngRecipe {
  prompt: string;
  negativePrompt?: string;
  steps?: number;
  guidance?: number;
  seed?: number | null;
  width: number;
  height: number;
  model: string;
  /** More `Key: value` pairs for the settings line. */
  extra?: Record<string, string | number>;
}

export interface PngMetadata {
  /** Every readable text chunk, by keyword (the first of a repeated keyword wins). */
  text: Record<string, string>;
  /** A1111-style generation parameters (ours, A1111's, InvokeAI's legacy ones). */
  parameters?: string;
  /** The studio's JSON recipe. */
  unclip?: unknown;
}

export const isPng = (b: Uint8Array): boolean => b.byteLength >= 8 && SIGNATURE.every((v, i) => b[i] === v);

// A1111's settings line separates `Key: value` pairs with ", "; a value holding a comma or a colon is quoted.
const setting = (v: string | number): string => {
  const s = String(v).replace(/\n/g, ' ');
  return /[,:"]/.test(s) ? JSON.stringify(s) : s;
};

/** The A1111 `parameters` text: the prompt, an optional negative prompt line, then one settings line. */
export function a1111Parameters(r: PngRecipe): string {
  const pairs: [string, string | number][] = [];
  if (r.steps !== undefined) pairs.push(['Steps', r.steps]);
  pairs.push(['Sampler', 'DDIM']);
  if (r.guidance !== undefined) pairs.push(['CFG scale', r.guidance]);
  if (r.seed !== undefined && r.seed !== null) pairs.push(['Seed', r.seed]);
  pairs.push(['Size', `${r.width}x${r.height}`], ['Model', r.model]);
  for (const [k, v] of Object.entries(r.extra ?? {})) pairs.push([k, v]);
  const lines = [r.prompt];
  if (r.negativePrompt) lines.push(`Negative prompt: ${r.negativePrompt}`);
  lines.push(pairs.map(([k, v]) => `${k}: ${setting(v)}`).join(', '));
  return lines.join('\n');
}

/** Reads A1111 parameters back: the settings line is the last line starting `Steps: `. */
export function parseA1111Parameters(text: string): {
  prompt: string;
  negativePrompt?: string;
  settings: Record<string, string>;
} {
  const lines = text.split('\n');
  let at = -1;
  for (let i = lines.length - 1; i >= 0; i--)
    if (/^Steps: /.test(lines[i]!)) {
      at = i;
      break;
    }
  const settings: Record<string, string> = {};
  if (at >= 0) {
    for (const m of lines[at]!.matchAll(/\s*([^,:]+):\s*("(?:[^"\\]|\\.)*"|[^,]*)(?:,|$)/g)) {
      const value = m[2]!.trim();
      let parsed = value;
      if (value.startsWith('"')) {
        try {
          parsed = JSON.parse(value) as string;
        } catch {
          parsed = value;
        }
      }
      settings[m[1]!.trim()] = parsed;
    }
  }
  const body = at >= 0 ? lines.slice(0, at) : lines;
  const neg = body.findIndex((l) => l.startsWith('Negative prompt: '));
  const prompt = (neg >= 0 ? body.slice(0, neg) : body).join('\n').trim();
  return {
    prompt,
    ...(neg >= 0 ? { negativePrompt: body.slice(neg).join('\n').slice('Negative prompt: '.length).trim() } : {}),
    settings,
  };
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });
const latin1 = new TextDecoder('latin1');

function itxt(keyword: string, text: string): { name: string; data: Uint8Array } {
  const key = utf8.encode(keyword);
  const body = utf8.encode(text);
  // keyword \0, compression flag 0, method 0, language tag "" \0, translated keyword "" \0, text
  const data = new Uint8Array(key.length + 5 + body.length);
  data.set(key, 0);
  data.set(body, key.length + 5);
  return { name: 'iTXt', data };
}

/** The keyword and text of a tEXt / zTXt / iTXt chunk; null when it is damaged or over `budget`. */
function decodeText(name: string, data: Uint8Array, budget: number): [string, string] | null {
  const nul = data.indexOf(0);
  if (nul < 1 || nul > 79) return null;
  const keyword = latin1.decode(data.subarray(0, nul));
  const inflate = (b: Uint8Array): Uint8Array => inflateSync(b, { maxOutputLength: budget });
  try {
    if (name === 'tEXt') return [keyword, latin1.decode(data.subarray(nul + 1))];
    if (name === 'zTXt') return data[nul + 1] === 0 ? [keyword, latin1.decode(inflate(data.subarray(nul + 2)))] : null;
    // iTXt
    const compressed = data[nul + 1] === 1;
    const lang = data.indexOf(0, nul + 3);
    const translated = lang < 0 ? -1 : data.indexOf(0, lang + 1);
    if (translated < 0) return null;
    const body = data.subarray(translated + 1);
    return [keyword, fromUtf8.decode(compressed ? inflate(body) : body)];
  } catch {
    return null; // bad deflate stream, over the budget, or not UTF-8
  }
}

function chunksOf(png: Uint8Array): { name: string; data: Uint8Array }[] {
  if (!isPng(png)) throw new Error('not a PNG file (bad signature)');
  try {
    return extractChunks(png);
  } catch (err) {
    throw new Error(`damaged PNG: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
}

const TEXT_CHUNKS = new Set(['tEXt', 'zTXt', 'iTXt']);

/** The PNG with `parameters` and `unclip` iTXt chunks before IEND, replacing any it had. */
export function embedPngMetadata(png: Uint8Array, meta: { parameters?: string; unclip?: unknown }): Uint8Array {
  const kept = chunksOf(png).filter((c) => {
    if (!TEXT_CHUNKS.has(c.name)) return true;
    const nul = c.data.indexOf(0);
    return !RECIPE_KEYS.includes(latin1.decode(c.data.subarray(0, Math.max(nul, 0))));
  });
  const added = [
    ...(meta.parameters !== undefined ? [itxt('parameters', meta.parameters)] : []),
    ...(meta.unclip !== undefined ? [itxt('unclip', JSON.stringify(meta.unclip))] : []),
  ];
  const end = kept.findIndex((c) => c.name === 'IEND');
  if (end < 0) throw new Error('damaged PNG: no IEND chunk');
  return encodeChunks([...kept.slice(0, end), ...added, ...kept.slice(end)]);
}

/** Text metadata of a PNG ({} text for anything else or a damaged file: import keeps going without it). */
export function readPngMetadata(bytes: Uint8Array): PngMetadata {
  const out: PngMetadata = { text: {} };
  let chunks;
  try {
    chunks = chunksOf(bytes);
  } catch {
    return out;
  }
  let budget = MAX_TEXT_BYTES;
  for (const c of chunks) {
    if (!TEXT_CHUNKS.has(c.name) || budget <= 0) continue;
    const kv = decodeText(c.name, c.data, budget);
    if (!kv) continue;
    budget -= kv[1].length;
    if (!(kv[0] in out.text)) out.text[kv[0]] = kv[1];
  }
  if (out.text.parameters !== undefined) out.parameters = out.text.parameters;
  if (out.text.unclip !== undefined) {
    try {
      out.unclip = JSON.parse(out.text.unclip);
    } catch {
      // a damaged recipe is left out; the text stays in `text`
    }
  }
  return out;
}
