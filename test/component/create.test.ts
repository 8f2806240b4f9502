// CreateState (renderer/lib/create.svelte.ts): the prompt and settings form, Generate, "use these settings".
import { beforeEach, describe, expect, test, vi } from 'vitest';
import type { EngineInfo } from '../../preload/contract.ts';
import { CreateState, settingsProblems, type SettingsForm } from '../../renderer/lib/create.svelte.ts';
import { QueueState } from '../../renderer/lib/queue.svelte.ts';
import { deferred, detail, engineInfo, FakeStudio, image, job } from './fake-api.ts';

/** crypto.getRandomValues answering 101, 102, 103, … (randomSeed's source). */
function countingSeeds(from = 100): void {
  let next = from;
  vi.spyOn(crypto, 'getRandomValues').mockImplementation(<T extends ArrayBufferView | null>(array: T): T => {
    if (array instanceof Uint32Array) array[0] = ++next;
    return array;
  });
}

describe('CreateState', () => {
  let fake: FakeStudio;
  let queue: QueueState;
  let create: CreateState;

  beforeEach(async () => {
    countingSeeds();
    fake = new FakeStudio();
    queue = new QueueState(fake.api);
    create = new CreateState(fake.api, queue);
    let id = 0;
    fake.on('generate', (args) => job({ id: ++id, args }));
  });

  async function loaded(info: EngineInfo = engineInfo()): Promise<void> {
    fake.on('engine.info', info);
    await create.loadEngine();
  }

  test('loading the engine fills the form with the pack’s defaults', async () => {
    await loaded(engineInfo({ stepsDecoder: 40, guidanceDecoder: 5 }));
    expect(create.settings).toMatchObject({ stepsPrior: 10, stepsDecoder: 40, guidanceDecoder: 5, n: 4 });
    expect(create.info?.pack.name).toBe('emoji-tiny');
  });

  test('settings typed while the engine loads are not overwritten by the pack’s defaults', async () => {
    const info = deferred<EngineInfo>();
    fake.on('engine.info', () => info.promise);
    const loading = create.loadEngine();
    create.settings.stepsDecoder = 77;
    create.settings.guidancePrior = 1.5;
    info.resolve(engineInfo({ stepsDecoder: 40, guidancePrior: 2 }));
    await loading;
    expect(create.settings.stepsDecoder).toBe(77);
    expect(create.settings.guidancePrior).toBe(1.5);
    // The fields nobody touched take the pack's values.
    expect(create.settings.stepsPrior).toBe(10);
    expect(create.settings.guidanceDecoder).toBe(3);
  });

  test('“use these settings” while the engine loads keeps the image’s settings when the defaults arrive', async () => {
    const info = deferred<EngineInfo>();
    fake.on('engine.info', () => info.promise);
    const loading = create.loadEngine();
    // The image's value equals the form's placeholder: it is still the image's choice.
    create.useSettings(image({ id: 7, prompt: 'a fox', seed: 5, settings: { stepsDecoder: 25, stepsPrior: 30 } }));
    info.resolve(engineInfo({ stepsDecoder: 40, stepsPrior: 10 }));
    await loading;
    expect(create.settings).toMatchObject({ stepsDecoder: 25, stepsPrior: 30, seed: 5, stepsSuperRes: 3 });
  });

  test('an engine that cannot load says why, and a retry clears it', async () => {
    fake.on('engine.info', () => {
      throw new Error('no model pack at /packs');
    });
    await create.loadEngine();
    expect(create.engineError).toBe('no model pack at /packs');
    expect(create.canGenerate).toBe(false);
    await loaded();
    expect(create.engineError).toBeNull();
  });

  test('each Generate takes a new random seed unless the seed is locked', async () => {
    await loaded();
    create.prompt = 'a red fox';
    const first = create.settings.seed;
    await create.generate();
    const second = create.settings.seed;
    expect(second).not.toBe(first);
    await create.generate();
    const sent = fake.calls('generate').map((a) => a.settings?.seed);
    expect(sent).toEqual([first, second]);

    create.lockSeed = true;
    const locked = create.settings.seed;
    await create.generate();
    await create.generate();
    expect(
      fake
        .calls('generate')
        .map((a) => a.settings?.seed)
        .slice(2),
    ).toEqual([locked, locked]);
    expect(create.settings.seed).toBe(locked);
  });

  test('typing a seed locks it', () => {
    create.seedTyped();
    expect(create.lockSeed).toBe(true);
  });

  test('Generate sends the form with previews, the prior only when the pack has two, rerank only when it can', async () => {
    const info = engineInfo();
    info.pack.capabilities = { superRes: true, imageEncoder: false, arPrior: true };
    await loaded(info);
    create.prompt = 'a fox';
    create.prior = 'ar';
    create.rerank = true;
    const queued = await create.generate();
    const [args] = fake.calls('generate');
    expect(args?.prompt).toBe('a fox');
    expect(args?.settings).toMatchObject({ prior: 'ar', previewEvery: 1, n: 4, stepsDecoder: 12 });
    expect(args?.settings).not.toHaveProperty('rerank');
    // The queue panel follows the job at once.
    expect(queue.active.map((j) => j.id)).toEqual([queued?.id]);
    expect(create.submitting).toBe(0);
  });

  test('Generate is refused without a prompt or with a bad field, and says why the service refused', async () => {
    await loaded();
    expect(await create.generate()).toBeNull();
    create.prompt = 'a fox';
    create.settings.n = 0;
    expect(create.canGenerate).toBe(false);
    expect(await create.generate()).toBeNull();
    expect(fake.calls('generate')).toEqual([]);
    create.settings.n = 2;
    fake.on('generate', () => {
      throw new Error('the queue is full');
    });
    expect(await create.generate()).toBeNull();
    expect(create.error).toBe('the queue is full');
    expect(create.submitting).toBe(0);
  });

  test('an emptied or out-of-range number field gets a sentence a person reads', () => {
    // An emptied <input type=number> bound with bind:value holds null (undefined in some versions).
    create.settings.n = null as unknown as number;
    create.settings.stepsPrior = 0;
    create.settings.guidanceDecoder = undefined as unknown as number;
    create.settings.stepsDecoder = 12.5;
    expect(create.problems).toEqual([
      'Images: enter a number from 1 to 64.',
      'Prior steps must be from 2 to 1000 (it is 0).',
      'Decoder steps: enter a whole number from 2 to 1000.',
      'Decoder guidance: enter a number from 0 to 100.',
    ]);
    expect(create.canGenerate).toBe(false);
    const ok: SettingsForm = {
      n: 1,
      seed: 0,
      stepsPrior: 2,
      stepsDecoder: 1000,
      stepsSuperRes: 7,
      guidancePrior: 0,
      guidanceDecoder: 7.5,
    };
    expect(settingsProblems(ok)).toEqual([]);
    expect(settingsProblems({ ...ok, seed: 2 ** 32 })).toEqual([
      'Seed must be from 0 to 4294967295 (it is 4294967296).',
    ]);
  });

  describe('use these settings', () => {
    const source = image({
      id: 12,
      prompt: 'a blue bird',
      seed: 4242,
      settings: { stepsPrior: 30, guidanceDecoder: 6, prior: 'ar', n: 9 },
    });

    test('with nothing typed, fills prompt, seed (locked) and the stage settings it records', () => {
      expect(create.useSettings(source)).toBe(true);
      expect(create.prompt).toBe('a blue bird');
      expect(create.settings).toMatchObject({ seed: 4242, stepsPrior: 30, guidanceDecoder: 6, n: 4 });
      expect(create.lockSeed).toBe(true);
      expect(create.prior).toBe('ar');
      expect(create.notice).toBe('Filled in from image 12: prompt, seed 4242 (locked), prior steps, decoder guidance.');
      expect(create.typedPrompt).toBe(false);
    });

    test('over a typed prompt, waits for confirmation and changes nothing until then', () => {
      create.prompt = 'my own words';
      const before = { ...create.settings };
      expect(create.useSettings(source)).toBe(false);
      expect(create.pendingSettings?.id).toBe(12);
      expect(create.prompt).toBe('my own words');
      expect(create.settings).toEqual(before);
      create.cancelUseSettings();
      expect(create.pendingSettings).toBeNull();

      expect(create.useSettings(source, { confirmed: true })).toBe(true);
      expect(create.prompt).toBe('a blue bird');
      expect(create.pendingSettings).toBeNull();
    });
  });

  test('a finished generation shows its images; an older one finishing later does not replace it', async () => {
    fake.on('gallery.get', ({ id }) => detail(image({ id, seed: id * 10, settings: { score: 0.31 } })));
    fake.emit('job', job({ id: 5, status: 'done', imageIds: [50, 51], startedAt: 1000, finishedAt: 3500 }));
    await vi.waitFor(() => expect(create.shown?.jobId).toBe(5));
    expect(create.shown?.images.map((i) => [i.id, i.seed, i.score])).toEqual([
      [50, 500, 0.31],
      [51, 510, 0.31],
    ]);
    expect(create.shown?.seconds).toBe(2.5);
    expect(create.shown?.images[0]?.url).toMatch(/\/media\/thumb\/50/);
    fake.emit('job', job({ id: 4, status: 'done', imageIds: [40] }));
    await Promise.resolve();
    expect(fake.calls('gallery.get').map((a) => a.id)).toEqual([50, 51]);
    expect(create.shown?.jobId).toBe(5);
  });
});
