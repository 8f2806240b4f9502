import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StudioError, type StudioEvent } from '../../../preload/contract.ts';
import { createStudioService } from '../../../main/service/studio.ts';
import { createScriptedEngine } from '../../integration/web/scripted-engine.ts';

describe('studio service', () => {
  it('generates: images without embeddings, progress tagged with the job id', async () => {
    const service = createStudioService({ engine: createScriptedEngine() });
    const events: StudioEvent[] = [];
    service.subscribe((e) => events.push(e));
    const result = await service.call('generate', { jobId: 'j1', prompt: 'apple', settings: { n: 2, seed: 10 } });
    assert.equal(result.jobId, 'j1');
    assert.deepEqual(
      result.images.map((i) => i.seed),
      [10, 11],
    );
    assert.ok(result.images.every((i) => i.png instanceof Uint8Array && i.png[1] === 0x50 /* 'P' of PNG */));
    assert.ok(!('imageEmbedding' in (result.images[0] ?? {})), 'embeddings stay in main');
    assert.ok(events.length >= 5);
    assert.ok(events.every((e) => e.name === 'progress' && e.payload.jobId === 'j1'));
    await service.close();
  });

  it('cancels a running job and reports it as cancelled', async () => {
    const service = createStudioService({ engine: createScriptedEngine({ stepDelayMs: 20 }) });
    const running = service.call('generate', { jobId: 'j2', prompt: 'apple', settings: { stepsDecoder: 50 } });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(await service.call('generate.cancel', { jobId: 'j2' }), { cancelled: true });
    await assert.rejects(running, (err: unknown) => err instanceof StudioError && err.code === 'cancelled');
    assert.deepEqual(await service.call('generate.cancel', { jobId: 'j2' }), { cancelled: false });
    await service.close();
  });

  it('refuses a second job with the same id', async () => {
    const service = createStudioService({ engine: createScriptedEngine({ stepDelayMs: 10 }) });
    const first = service.call('generate', { jobId: 'same', prompt: 'a', settings: {} });
    await assert.rejects(
      service.call('generate', { jobId: 'same', prompt: 'b', settings: {} }),
      (err: unknown) => err instanceof StudioError && err.code === 'busy',
    );
    await first;
    await service.close();
  });

  it('wraps engine failures in one-line engine errors and closes the engine', async () => {
    const engine = createScriptedEngine();
    engine.info = async () => {
      throw new Error('pack manifest.json: missing "components"\n    at stack line');
    };
    const service = createStudioService({ engine });
    await assert.rejects(service.call('engine.info', {}), (err: unknown) => {
      assert.ok(err instanceof StudioError);
      assert.equal(err.code, 'engine');
      assert.equal(err.message, 'engine: pack manifest.json: missing "components"');
      return true;
    });
    await service.close();
    assert.ok(engine.closed);
  });
});

describe('studio service: engine error kinds', () => {
  for (const [name, code] of [
    ['InputError', 'invalid_argument'],
    ['AbortError', 'cancelled'],
    ['PackError', 'engine'],
  ] as const) {
    it(`maps ${name} to ${code}`, async () => {
      const engine = createScriptedEngine();
      engine.generate = async () => {
        const err = new Error('settings.stepsDecoder: must be an integer in [2, 1000]');
        err.name = name;
        throw err;
      };
      const service = createStudioService({ engine });
      await assert.rejects(
        service.call('generate', { jobId: 'k', prompt: 'p', settings: {} }),
        (err: unknown) => err instanceof StudioError && err.code === code,
      );
      await service.close();
    });
  }
});
