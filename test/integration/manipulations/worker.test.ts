import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { EngineClient, ProgressEvent } from '../../../main/engine/api.ts';
import { createWorkerEngine } from '../../../main/engine/host.ts';
import { decodeLatent } from '../../../main/engine/manipulations/latent.ts';
import { REPO_ROOT, TINY_PACK_DIR } from '../../../main/engine/packs.ts';

const picture = readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'manip-images', 'twemoji-1f419.png'));
let engine: EngineClient;
before(() => {
  engine = createWorkerEngine({ packDir: TINY_PACK_DIR, threads: 1 });
});
after(async () => engine.close());

test('worker protocol: invert returns the latent file and reconstruction; vary/textdiff take the latent bytes back', async () => {
  const events: ProgressEvent[] = [];
  const inv = await engine.manipulate!(
    { op: 'invert', image: picture, steps: 3, caption: 'an octopus' },
    { onProgress: (e) => events.push(e) },
  );
  assert.equal(inv.frames.length, 1);
  assert.equal(inv.sources.length, 1);
  const latent = decodeLatent(inv.sources[0]!.latent);
  assert.equal(latent.caption, 'an octopus');
  assert.equal(latent.inversion.steps, 3);
  assert.equal(inv.sources[0]!.psnr, latent.psnr);
  assert.deepEqual(
    events.filter((e) => e.manipulation?.phase === 'invert').map((e) => e.step),
    [1, 2, 3],
  );
  const v = await engine.manipulate!({ op: 'vary', source: inv.sources[0]!.latent, n: 1, eta: 0 });
  assert.deepEqual(Buffer.from(v.frames[0]!.png), Buffer.from(inv.frames[0]!.png));
  assert.equal(v.sources[0]!.inverted, false);
  const td = await engine.manipulate!({
    op: 'textdiff',
    source: inv.sources[0]!.latent,
    to: 'a squid',
    thetas: [0, 0.4],
  });
  assert.deepEqual(Buffer.from(td.frames[0]!.png), Buffer.from(inv.frames[0]!.png));
  assert.deepEqual(
    td.frames.map((f) => f.theta),
    [0, 0.4],
  );
  assert.ok(td.gif && td.strip);
  await assert.rejects(
    engine.manipulate!({ op: 'textdiff', source: inv.sources[0]!.latent, to: 'x', thetas: [2] }),
    (e: Error) => e.name === 'InputError' && /^thetas\.0: /.test(e.message),
  );
});
