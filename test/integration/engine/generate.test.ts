import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { readFileSync } from 'node:fs';
import type { ProgressEvent } from '../../../main/engine/api.ts';
import { Engine } from '../../../main/engine/engine.ts';
import { generate } from '../../../main/engine/pipeline.ts';
import { TINY_PACK_DIR } from '../../../main/engine/packs.ts';
import { decodeImage } from '../../../main/engine/image.ts';

let engine: Engine;
before(() => {
  engine = new Engine({ packDir: TINY_PACK_DIR });
});
after(async () => engine.close());

test('same seed and settings give byte-identical PNGs; image i is reproducible alone from seed+i', async () => {
  const request = { prompt: 'a red rocket, twemoji style', settings: { n: 2, seed: 1234 } };
  const a = await engine.generate(request);
  const b = await engine.generate(request);
  assert.deepEqual(
    a.images.map((i) => i.seed),
    [1234, 1235],
  );
  for (let i = 0; i < 2; i++) assert.deepEqual(Buffer.from(a.images[i]!.png), Buffer.from(b.images[i]!.png));
  assert.notDeepEqual(Buffer.from(a.images[0]!.png), Buffer.from(a.images[1]!.png));
  const alone = await engine.generate({ prompt: request.prompt, settings: { n: 1, seed: 1235 } });
  assert.deepEqual(Buffer.from(alone.images[0]!.png), Buffer.from(a.images[1]!.png));
  const other = await engine.generate({ prompt: request.prompt, settings: { n: 1, seed: 99 } });
  assert.notDeepEqual(Buffer.from(other.images[0]!.png), Buffer.from(a.images[0]!.png));
  // the PNG really is a 64×64 RGB picture
  const px = await decodeImage(a.images[0]!.png);
  assert.deepEqual([px.width, px.height], [64, 64]);
  assert.equal(a.textEmbedding.length, 16);
  assert.equal(a.images[0]!.imageEmbedding.length, 16);
});

test('progress: per-step events for every stage, elapsed grows, ETA reaches 0; previews are PNGs', async () => {
  const events: ProgressEvent[] = [];
  await engine.generate(
    { prompt: 'a cat', settings: { n: 1, seed: 3, stepsPrior: 2, stepsDecoder: 4, stepsSuperRes: 2, previewEvery: 2 } },
    { onProgress: (e) => events.push(e) },
  );
  const of = (stage: string) => events.filter((e) => e.stage === stage);
  assert.deepEqual(
    of('prior').map((e) => `${e.step}/${e.total}`),
    ['1/2', '2/2'],
  );
  assert.deepEqual(
    of('decoder').map((e) => `${e.step}/${e.total}`),
    ['1/4', '2/4', '3/4', '4/4'],
  );
  assert.deepEqual(
    of('super_res').map((e) => `${e.step}/${e.total}`),
    ['1/2', '2/2'],
  );
  for (let i = 1; i < events.length; i++) assert.ok(events[i]!.elapsedMs >= events[i - 1]!.elapsedMs);
  assert.equal(events.at(-1)!.etaMs, 0);
  const previews = of('decoder').filter((e) => e.preview);
  assert.deepEqual(
    previews.map((e) => e.step),
    [2, 4],
  );
  const png = await decodeImage(previews[0]!.preview!);
  assert.deepEqual([png.width, png.height], [32, 32]);
});

test('rerank orders images by CLIP cosine and reports the scores', async () => {
  const r = await engine.generate({ prompt: 'a rocket', settings: { n: 3, seed: 10, rerank: true } });
  const scores = r.images.map((i) => i.score!);
  assert.ok(scores.every((s) => Number.isFinite(s) && s >= -1 && s <= 1));
  assert.deepEqual(
    [...scores].sort((x, y) => y - x),
    scores,
  );
  assert.deepEqual(new Set(r.images.map((i) => i.seed)), new Set([10, 11, 12]));
});

test('image variation from a picture: deterministic, conditioned on its CLIP embedding', async () => {
  const image = readFileSync(new URL('../../fixtures/tiny-fixture/variation_input.png', import.meta.url));
  const a = await engine.generate({ prompt: '', settings: { n: 1, seed: 5 }, image });
  const b = await engine.generate({ prompt: '', settings: { n: 1, seed: 5 }, image });
  assert.deepEqual(Buffer.from(a.images[0]!.png), Buffer.from(b.images[0]!.png));
  const t2i = await engine.generate({ prompt: 'a red rocket', settings: { n: 1, seed: 5 } });
  assert.notDeepEqual(Array.from(a.images[0]!.imageEmbedding), Array.from(t2i.images[0]!.imageEmbedding));
});

test('cancellation stops before the next network call: nothing runs after abort', async () => {
  const pack = await engine.pack();
  let runsAfterAbort = 0;
  const controller = new AbortController();
  const sessions = Object.values(pack.nets).map((n) => n.session);
  const originals = sessions.map((s) => s.run.bind(s));
  sessions.forEach((s, i) => {
    s.run = ((...args: Parameters<typeof s.run>) => {
      if (controller.signal.aborted) runsAfterAbort++;
      return originals[i]!(...args);
    }) as typeof s.run;
  });
  const events: ProgressEvent[] = [];
  try {
    await assert.rejects(
      generate(
        pack,
        { prompt: 'stop me', settings: { n: 2, stepsDecoder: 20 } },
        {
          signal: controller.signal,
          onProgress: (e) => {
            events.push(e);
            if (e.stage === 'decoder' && e.step === 2) controller.abort();
          },
        },
      ),
      { name: 'AbortError' },
    );
  } finally {
    sessions.forEach((s, i) => (s.run = originals[i]! as typeof s.run));
  }
  assert.equal(runsAfterAbort, 0);
  assert.equal(events.at(-1)!.stage, 'decoder');
  assert.equal(events.at(-1)!.step, 2);
  // and the engine takes the next request
  const r = await engine.generate({ prompt: 'next', settings: { n: 1, seed: 1 } });
  assert.equal(r.images.length, 1);
});

test('backends: a preferred accelerator falls back to CPU when it cannot make a session; unknown ones are refused', async () => {
  const { availableBackends } = await import('../../../main/engine/backends.ts');
  const available = availableBackends();
  assert.ok(available.includes('cpu'));
  const accel = available.find((b) => b !== 'cpu');
  if (accel) {
    const warnings: string[] = [];
    const e = new Engine({ packDir: TINY_PACK_DIR, backend: accel, warn: (m) => warnings.push(m) });
    try {
      const info = await e.info();
      for (const b of Object.values(info.sessionBackends)) assert.ok(b === accel || b === 'cpu');
      // whatever ran where, the engine reports it and still generates
      if (Object.values(info.sessionBackends).includes('cpu'))
        assert.ok(warnings.length >= 1 && !warnings[0]!.includes('\n'));
      const r = await e.generate({ prompt: 'x', settings: { n: 1, seed: 1 } });
      assert.equal(r.images.length, 1);
    } finally {
      await e.close();
    }
  }
  const missing = (['dml', 'coreml', 'cuda', 'webgpu'] as const).find((b) => !available.includes(b));
  if (missing) {
    const e = new Engine({ packDir: TINY_PACK_DIR, backend: missing });
    await assert.rejects(
      e.info(),
      (err: Error) => err.name === 'PackError' && err.message.includes(`${missing} is not available here`),
    );
    await e.close();
  }
});
