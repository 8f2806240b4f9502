// PNG text metadata: the recipe the studio writes into every PNG, and what it reads back on import.
// Chunks are split and joined here with node:zlib's crc32 rather than png-chunks-extract/-encode:
// those trust a chunk's length field (4 bytes claiming 4 GiB hang the reader), throw on any bad CRC
// (so one damaged text chunk would hide every other) and copy each IDAT byte through a JS array.
// Text chunks are coded here too: png-chunk-text is Latin-1 tEXt only and prompts are UTF-8, so we
// write iTXt (UTF-8, uncompressed) and read tEXt, zTXt and iTXt. sharp drops text chunks when it
// encodes, so metadata goes in after encoding.

import { crc32, inflateSync } from 'node:zlib';

/** The most text (keywords and decoded values) read from one file, so a hostile PNG cannot balloon memory. */
export const MAX_TEXT_BYTES = 1 << 20;
const SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
const RECIPE_KEYS = new Set(['parameters', 'unclip']);
const TEXT_CHUNKS = new Set(['tEXt', 'zTXt', 'iTXt']);

export interface PngRecipe {
  prompt: string;
  negativePrompt?: string;
  steps?: number;
  guidance?: number;
  seed?: number | null;
  width: number;
  height: number;
  model: string;
  /** Written as `Sampler: ...` when given. */
  sampler?: string;
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

// A1111's settings line separates `Key: value` pairs with ", "; like A1111 we JSON-quote a value that
// would break that (a comma, a colon, a quote, a newline or another control character).
const settingValue = (v: string | number): string => {
  const s = String(v);
  return /[,:"\p{Cc}]/u.test(s) ? JSON.stringify(s) : s;
};
const settingKey = (k: string): string => k.replace(/[,:\p{Cc}]/gu, ' ').trim();

/** The A1111 `parameters` text: the prompt, an optional negative prompt line, then one settings line. */
export function a1111Parameters(r: PngRecipe): string {
  // Readers find the settings line by its leading `Steps: `, so it leads even without steps (0).
  const pairs: [string, string | number][] = [['Steps', r.steps ?? 0]];
  if (r.sampler !== undefined) pairs.push(['Sampler', r.sampler]);
  if (r.guidance !== undefined) pairs.push(['CFG scale', r.guidance]);
  if (r.seed !== undefined && r.seed !== null) pairs.push(['Seed', r.seed]);
  pairs.push(['Size', `${r.width}x${r.height}`], ['Model', r.model]);
  for (const [k, v] of Object.entries(r.extra ?? {})) pairs.push([settingKey(k), v]);
  const lines = [r.prompt];
  if (r.negativePrompt) lines.push(`Negative prompt: ${r.negativePrompt}`);
  lines.push(pairs.map(([k, v]) => `${k}: ${settingValue(v)}`).join(', '));
  return lines.join('\n');
}

const NEGATIVE = 'Negative prompt: ';

/** Reads A1111 parameters back: the settings line is the last line starting `Steps: `. */
export function parseA1111Parameters(text: string): {
  prompt: string;
  negativePrompt?: string;
  settings: Record<string, string>;
} {
  const lines = text.split(/\r?\n/);
  const at = lines.findLastIndex((l) => l.startsWith('Steps: '));
  const settings: Record<string, string> = {};
  if (at >= 0) {
    for (const m of lines[at]!.matchAll(/\s*([^,:]+):\s*("(?:[^"\\]|\\.)*"|[^,]*)(?:,|$)/g)) {
      const value = m[2]!.trim();
      let parsed = value;
      if (value.startsWith('"')) {
        try {
          parsed = JSON.parse(value) as string;
        } catch {
          // not JSON after all: keep it as written
        }
      }
      settings[m[1]!.trim()] = parsed;
    }
  }
  const body = at >= 0 ? lines.slice(0, at) : lines;
  const neg = body.findIndex((l) => l.startsWith(NEGATIVE));
  const prompt = (neg >= 0 ? body.slice(0, neg) : body).join('\n').trim();
  if (neg < 0) return { prompt, settings };
  return { prompt, negativePrompt: body.slice(neg).join('\n').slice(NEGATIVE.length).trim(), settings };
}

interface Chunk {
  type: string;
  /** Where the chunk starts in the file (for messages). */
  at: number;
  data: Uint8Array;
  intact: boolean;
}

const latin1 = new TextDecoder('latin1');
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const utf8 = new TextEncoder();
const isPng = (b: Uint8Array): boolean => b.byteLength >= 8 && SIGNATURE.every((v, i) => b[i] === v);

/**
 * The chunks of a PNG up to IEND, as views into it. Throws one line at the first damage to the
 * structure (after yielding the chunks before it); a bad CRC only marks the chunk not `intact`.
 */
function* chunksOf(png: Uint8Array): Generator<Chunk> {
  if (!isPng(png)) throw new Error('not a PNG file (bad signature)');
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  for (let at = 8, first = true; ; first = false) {
    if (at + 12 > png.length) throw new Error(`damaged PNG: it ends at byte ${png.length} without an IEND chunk`);
    const length = view.getUint32(at);
    const type = latin1.decode(png.subarray(at + 4, at + 8));
    if (!/^[A-Za-z]{4}$/.test(type)) throw new Error(`damaged PNG: no chunk type at byte ${at}`);
    if (first && type !== 'IHDR') throw new Error(`damaged PNG: it starts with ${type}, not IHDR`);
    const end = at + 12 + length;
    if (end > png.length) throw new Error(`damaged PNG: the ${type} chunk at byte ${at} runs past the end of the file`);
    const intact = crc32(png.subarray(at + 4, end - 4)) === view.getUint32(end - 4);
    yield { type, at, data: png.subarray(at + 8, end - 4), intact };
    if (type === 'IEND') return;
    at = end;
  }
}

function joinChunks(chunks: { type: string; data: Uint8Array }[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + 12 + c.data.length, SIGNATURE.length));
  const view = new DataView(out.buffer);
  out.set(SIGNATURE);
  let at = SIGNATURE.length;
  for (const { type, data } of chunks) {
    view.setUint32(at, data.length);
    out.set(utf8.encode(type), at + 4);
    out.set(data, at + 8);
    const end = at + 12 + data.length;
    view.setUint32(end - 4, crc32(out.subarray(at + 4, end - 4)));
    at = end;
  }
  return out;
}

/** An uncompressed iTXt chunk: keyword \0, compression flag 0, method 0, language "" \0, translated keyword "" \0, text. */
function itxt(keyword: string, text: string): { type: string; data: Uint8Array } {
  const key = utf8.encode(keyword);
  const body = utf8.encode(text);
  const data = new Uint8Array(key.length + 5 + body.length);
  data.set(key, 0);
  data.set(body, key.length + 5);
  return { type: 'iTXt', data };
}

const keywordOf = (data: Uint8Array): string | null => {
  const nul = data.indexOf(0);
  return nul >= 1 && nul <= 79 ? latin1.decode(data.subarray(0, nul)) : null;
};

// tEXt and zTXt are Latin-1 by the spec, but some tools write UTF-8 there; bytes that are valid UTF-8
// with any non-ASCII in them are almost never meant as Latin-1, so those are read as UTF-8.
const legacyText = (b: Uint8Array): string => {
  try {
    return strictUtf8.decode(b);
  } catch {
    return latin1.decode(b);
  }
};

/** The keyword and text of a tEXt / zTXt / iTXt chunk and the bytes read; null when damaged or over `budget`. */
function decodeText(c: Chunk, budget: number): { keyword: string; text: string; bytes: number } | null {
  const keyword = keywordOf(c.data);
  if (keyword === null) return null;
  const start = keyword.length + 1;
  if (start >= budget) return null;
  const within = (b: Uint8Array): Uint8Array | null => (b.length + start <= budget ? b : null);
  // maxOutputLength stops a decompression bomb at the budget instead of after inflating it all
  const inflate = (b: Uint8Array): Uint8Array => inflateSync(b, { maxOutputLength: budget - start });
  let raw: Uint8Array | null;
  let decode = legacyText;
  try {
    if (c.type === 'tEXt') raw = within(c.data.subarray(start));
    else if (c.type === 'zTXt') raw = c.data[start] === 0 ? inflate(c.data.subarray(start + 1)) : null;
    else {
      const compressed = c.data[start] === 1;
      const lang = c.data.indexOf(0, start + 2);
      const translated = lang < 0 ? -1 : c.data.indexOf(0, lang + 1);
      const body = c.data.subarray(translated + 1);
      if (translated < 0 || (!compressed && c.data[start] !== 0) || c.data[start + 1] !== 0) raw = null;
      else raw = compressed ? inflate(body) : within(body);
      decode = (b) => strictUtf8.decode(b);
    }
    return raw && { keyword, text: decode(raw), bytes: start + raw.length };
  } catch {
    return null; // a bad deflate stream, over the budget, or iTXt that is not UTF-8
  }
}

/** The PNG with `parameters` and `unclip` iTXt chunks before IEND, replacing any text chunks of those keywords. */
export function embedPngMetadata(png: Uint8Array, meta: { parameters?: string; unclip?: unknown }): Uint8Array {
  const chunks = [...chunksOf(png)];
  const bad = chunks.find((c) => !c.intact);
  if (bad) throw new Error(`damaged PNG: the ${bad.type} chunk at byte ${bad.at} fails its CRC check`);
  const kept = chunks.filter((c) => !TEXT_CHUNKS.has(c.type) || !RECIPE_KEYS.has(keywordOf(c.data) ?? ''));
  const added = [
    ...(meta.parameters !== undefined ? [itxt('parameters', meta.parameters)] : []),
    ...(meta.unclip !== undefined ? [itxt('unclip', JSON.stringify(meta.unclip))] : []),
  ];
  return joinChunks([...kept.slice(0, -1), ...added, kept.at(-1)!]);
}

/**
 * Text metadata of a PNG: {} text for anything else. Never throws: a damaged text chunk is skipped,
 * damage further on keeps what came before it, and reading stops at MAX_TEXT_BYTES.
 */
export function readPngMetadata(bytes: Uint8Array): PngMetadata {
  const text = new Map<string, string>();
  let budget = MAX_TEXT_BYTES;
  try {
    for (const c of chunksOf(bytes)) {
      if (!TEXT_CHUNKS.has(c.type) || !c.intact) continue;
      const kv = decodeText(c, budget);
      if (!kv) continue;
      budget -= kv.bytes;
      if (!text.has(kv.keyword)) text.set(kv.keyword, kv.text);
    }
  } catch {
    // not a PNG, or damaged past the text already read
  }
  // fromEntries defines own properties, so a keyword like `__proto__` or `constructor` is kept as text
  const out: PngMetadata = { text: Object.fromEntries(text) };
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
