import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, truncateSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { EngineClient, ProgressEvent } from '../../../main/engine/api.ts';
import { createWorkerEngine } from '../../../main/engine/host.ts';
import { TINY_PACK_DIR } from '../../../main/engine/packs.ts';

let engine: EngineClient;
before(() => {
  engine = createWorkerEngine({ packDir: TINY_PACK_DIR });
});
after(async () => engine.close());

test('info reports the pack, the backends here and where each network runs', async () => {
  const info = await engine.info();
  assert.equal(info.pack.name, 'tiny-reference');
  assert.equal(info.pack.outputSize, 64);
  assert.ok(info.availableBackends.includes('cpu'));
  for (const role of ['text_encoder', 'prior', 'text_proj', 'decoder', 'super_res_first', 'super_res_last']) {
    assert.ok(info.sessionBackends[role], `${role} has a backend`);
  }
});

test("the caller's event loop keeps ticking while the worker generates", async () => {
  await engine.info(); // pack loaded and warmed up
  const gaps: number[] = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const t = performance.now();
    gaps.push(t - last);
    last = t;
  }, 10);
  const t0 = performance.now();
  const result = await engine.generate({
    prompt: 'a busy worker',
    settings: { n: 2, stepsDecoder: 8, stepsSuperRes: 4 },
  });
  const took = performance.now() - t0;
  clearInterval(timer);
  assert.equal(result.images.length, 2);
  // in-thread inference would freeze the loop for whole network calls; here it keeps running throughout
  assert.ok(gaps.length >= took / 10 / 4, `${gaps.length} ticks in ${took.toFixed(0)} ms`);
  assert.ok(Math.max(...gaps) < 1000, `longest gap ${Math.max(...gaps).toFixed(0)} ms`);
});

test('bad requests reject with one-line InputErrors and the worker stays usable', async () => {
  const bad: [unknown, RegExp][] = [
    [{ prompt: '   ', settings: {} }, /^prompt: must not be empty$/],
    [{ prompt: 'x', settings: { stepsDecoder: 0 } }, /^settings\.stepsDecoder: /],
    [{ prompt: 'x', settings: { stepsPrior: 10000 } }, /^settings\.stepsPrior: /],
    [{ prompt: 'x', settings: { guidancePrior: Number.NaN } }, /^settings\.guidancePrior: /],
    [{ prompt: 'x', settings: { n: 1000 } }, /^settings\.n: /],
    [{ prompt: 'x', settings: { n: 0 } }, /^settings\.n: /],
    [{ prompt: '', settings: {}, image: new Uint8Array([1, 2, 3]) }, /^image: not a readable picture/],
  ];
  for (const [request, message] of bad) {
    await assert.rejects(engine.generate(request as never), (err: Error) => {
      assert.equal(err.name, 'InputError');
      assert.match(err.message, message);
      assert.ok(!err.message.includes('\n'));
      return true;
    });
  }
  const ok = await engine.generate({ prompt: 'still here', settings: { n: 1, seed: 2 } });
  assert.equal(ok.images.length, 1);
});

test('over-long prompts are truncated to 77 tokens and say so', async () => {
  const r = await engine.generate({ prompt: 'rocket '.repeat(120), settings: { n: 1, seed: 1 } });
  assert.equal(r.truncated, true);
  const short = await engine.generate({ prompt: 'rocket', settings: { n: 1, seed: 1 } });
  assert.equal(short.truncated, false);
});

test('cancel through AbortSignal: rejects promptly, no events after it, next request runs', async () => {
  // the request run after the cancel, timed here on its own (the faster of two runs)
  const small = { prompt: 'next one', settings: { n: 1, seed: 4, stepsPrior: 2, stepsDecoder: 2, stepsSuperRes: 2 } };
  await engine.info(); // pack loaded and warmed up
  let smallMs = Infinity;
  for (let i = 0; i < 2; i++) {
    const t = performance.now();
    await engine.generate(small);
    smallMs = Math.min(smallMs, performance.now() - t);
  }
  const controller = new AbortController();
  const events: ProgressEvent[] = [];
  let afterAbort = 0;
  let abortedAt = 0;
  // cancelled at its first decoder step, with 4 × 100 − 1 decoder and 4 × 10 super-resolution calls left,
  // about 60 times the small request's network calls
  const pending = engine.generate(
    { prompt: 'cancel me', settings: { n: 4, stepsDecoder: 100, stepsSuperRes: 10 } },
    {
      signal: controller.signal,
      onProgress: (e) => {
        if (controller.signal.aborted) afterAbort++;
        events.push(e);
        if (e.stage === 'decoder' && e.step === 1) {
          abortedAt = performance.now();
          controller.abort();
        }
      },
    },
  );
  await assert.rejects(pending, { name: 'AbortError' });
  const rejectedMs = performance.now() - abortedAt;
  assert.equal(afterAbort, 0);
  // promptly: the caller does not wait for the worker (the rejection comes before the worker's next call ends)
  assert.ok(rejectedMs < smallMs, `rejected ${rejectedMs.toFixed(0)} ms after abort`);
  // and the worker dropped the cancelled work: the small request is answered in about its own time, not after
  // the ~60 times as many calls the cancelled request had left
  const t = performance.now();
  const next = await engine.generate(small);
  const nextMs = performance.now() - t;
  assert.equal(next.images.length, 1);
  assert.ok(
    nextMs < 10 * smallMs + 100,
    `the next request took ${nextMs.toFixed(0)} ms after the cancel, ${smallMs.toFixed(0)} ms alone`,
  );
  // an already-aborted signal never starts work
  const dead = new AbortController();
  dead.abort();
  await assert.rejects(engine.generate({ prompt: 'x', settings: {} }, { signal: dead.signal }), { name: 'AbortError' });
});

test('a missing or corrupt graph is a clear PackError naming the file; the worker answers again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'unclip-pack-'));
  try {
    const missing = join(dir, 'missing');
    cpSync(TINY_PACK_DIR, missing, { recursive: true });
    unlinkSync(join(missing, 'prior.onnx'));
    const e1 = createWorkerEngine({ packDir: missing });
    try {
      await assert.rejects(
        e1.info(),
        (err: Error) => err.name === 'PackError' && /prior\.onnx: missing/.test(err.message),
      );
      await assert.rejects(e1.generate({ prompt: 'x', settings: {} }), { name: 'PackError' });
    } finally {
      await e1.close();
    }
    const corrupt = join(dir, 'corrupt');
    cpSync(TINY_PACK_DIR, corrupt, { recursive: true });
    truncateSync(join(corrupt, 'decoder.onnx'), 1000);
    const e2 = createWorkerEngine({ packDir: corrupt });
    try {
      await assert.rejects(
        e2.info(),
        (err: Error) => err.name === 'PackError' && /decoder\.onnx: sha256 does not match/.test(err.message),
      );
    } finally {
      await e2.close();
    }
    const e3 = createWorkerEngine({ packDir: corrupt, verify: false });
    try {
      await assert.rejects(
        e3.info(),
        (err: Error) => err.name === 'PackError' && /decoder\.onnx: onnxruntime cannot load/.test(err.message),
      );
      await assert.rejects(e3.info(), { name: 'PackError' }); // still answering
    } finally {
      await e3.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
