// JSON for the web transport that keeps the contract's binary fields binary: a Uint8Array travels
// as {"$bytes": base64} and a Float32Array as {"$f32": base64}, and comes back as the same typed
// array, so web mode hands the renderer exactly what IPC's structured clone would.
// Pure module: runs in Node (web server) and in the browser (web client).

const CHUNK = 0x8000;

export function bytesToBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += CHUNK) {
    binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  }
  return btoa(binary);
}

export function base64ToBytes(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function isTagged(value: object, tag: string): value is Record<string, string> {
  const keys = Object.keys(value);
  return keys.length === 1 && keys[0] === tag && typeof (value as Record<string, unknown>)[tag] === 'string';
}

export function toWire(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof Uint8Array) return { $bytes: bytesToBase64(v) };
    if (v instanceof Float32Array) {
      return { $f32: bytesToBase64(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)) };
    }
    return v;
  });
}

export function fromWire(text: string): unknown {
  return JSON.parse(text, (_key, v: unknown) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      if (isTagged(v, '$bytes')) return base64ToBytes(v.$bytes);
      if (isTagged(v, '$f32')) {
        const bytes = base64ToBytes(v.$f32);
        return new Float32Array(bytes.buffer, 0, bytes.byteLength / 4);
      }
    }
    return v;
  });
}
