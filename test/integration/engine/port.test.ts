import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { createPortEngineClient } from '../../../main/engine/client.ts';
import { TINY_PACK_DIR } from '../../../main/engine/packs.ts';
import type { MessagePortLike } from '../../../main/engine/protocol.ts';
import { engineOptionsFromArgv, serveEngine } from '../../../main/engine/serve.ts';

// The engine's loop and client over a bare port pair, as in Electron's utilityProcess (parentPort): every
// message is structured-cloned, so anything that is not plain data would fail here.
function portPair(): [MessagePortLike, MessagePortLike, { messages: number }] {
  const listeners: [((m: unknown) => void)[], ((m: unknown) => void)[]] = [[], []];
  const stats = { messages: 0 };
  const make = (self: 0 | 1): MessagePortLike => ({
    post: (msg) => {
      const copy = structuredClone(msg);
      stats.messages++;
      setImmediate(() => listeners[1 - self]!.forEach((cb) => cb(copy)));
    },
    onMessage: (cb) => listeners[self].push(cb),
  });
  return [make(0), make(1), stats];
}

const [enginePort, callerPort] = portPair();
const { engine } = serveEngine(
  enginePort,
  engineOptionsFromArgv(['--pack', TINY_PACK_DIR, '--threads', '2', '--backend', 'cpu']),
);
const client = createPortEngineClient(callerPort);
after(async () => client.close());

test('utilityProcess argv: --pack, --backend, --threads; junk is ignored, not fatal', () => {
  assert.deepEqual(engineOptionsFromArgv(['--pack', '/p', '--backend', 'cuda', '--threads', '3']), {
    packDir: '/p',
    backend: 'cuda',
    threads: 3,
  });
  assert.deepEqual(engineOptionsFromArgv(['--backend', 'tpu', '--threads', 'x', '--other']), {});
  assert.equal(engine.options.packDir, TINY_PACK_DIR);
});

test('info, generate with progress, errors and cancel over a structured-clone port', async () => {
  const info = await client.info();
  assert.equal(info.pack.name, 'tiny-reference');
  const steps: string[] = [];
  const r = await client.generate(
    { prompt: 'a rocket', settings: { n: 1, seed: 8 } },
    { onProgress: (e) => steps.push(`${e.stage}:${e.step}`) },
  );
  assert.ok(r.images[0]!.png instanceof Uint8Array);
  assert.ok(r.textEmbedding instanceof Float32Array);
  assert.ok(steps.includes('decoder:3') && steps.includes('super_res:3'));
  await assert.rejects(client.generate({ prompt: 'x', settings: { guidanceDecoder: Number.NaN } }), {
    name: 'InputError',
    message: /^settings\.guidanceDecoder: /,
  });
  // two requests queued behind each other: cancelling the second leaves the first alone
  const c = new AbortController();
  const first = client.generate({ prompt: 'first', settings: { n: 1, seed: 1 } });
  const second = client.generate({ prompt: 'second', settings: { n: 1, seed: 2 } }, { signal: c.signal });
  c.abort();
  await assert.rejects(second, { name: 'AbortError' });
  assert.equal((await first).images.length, 1);
});

test('countTokens: the pack tokenizer over the port, the cut at max_length − 2 content tokens', async () => {
  assert.deepEqual(await client.countTokens('a red apple'), { tokens: 3, limit: 75, truncated: false });
  assert.deepEqual(await client.countTokens(''), { tokens: 0, limit: 75, truncated: false });
  const exact = Array.from({ length: 75 }, () => 'a').join(' ');
  assert.deepEqual(await client.countTokens(exact), { tokens: 75, limit: 75, truncated: false });
  const long = await client.countTokens(Array.from({ length: 80 }, (_, i) => `word${i}`).join(' '));
  assert.ok(long.tokens > 75 && long.truncated, JSON.stringify(long));
  await assert.rejects(client.countTokens('x'.repeat(10_001)), {
    name: 'InputError',
    message: /^text: 10001 characters/,
  });
});
