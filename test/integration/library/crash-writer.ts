// The crash harness's victim: opens the library in argv[2] and does random saves (generated and
// imported), trash, restore, empty-trash and job work, printing one line after each operation has
// committed. The parent SIGKILLs it at random moments and checks that nothing it reported is lost.

import sharp from 'sharp';
import { mulberry32 } from '../../../main/engine/rng.ts';
import { Library } from '../../../main/library/library.ts';

const [dir, seedText] = process.argv.slice(2);
const rand = mulberry32(Number(seedText) >>> 0 || 1); // reproducible from the printed seed
const say = (line: string): void => void process.stdout.write(`${line}\n`);

const lib = Library.open(dir!);
const pack = { name: 'crash', sha256: 'c'.repeat(64) };
const mine: number[] = [];
// What is in the trash now (a trash a killed run did not get to report).
for (const image of lib.list({ trashed: true, limit: 500 }).items) say(`trashed ${image.id}`);
say('ready');

for (;;) {
  const r = rand();
  if (r < 0.5) {
    const n = 1 + Math.floor(rand() * 3);
    const items = await Promise.all(
      Array.from({ length: n }, async () => {
        const colour = { r: Math.floor(rand() * 256), g: Math.floor(rand() * 256), b: Math.floor(rand() * 256) };
        const bytes = new Uint8Array(
          await sharp({ create: { width: 16, height: 16, channels: 3, background: colour } })
            .png()
            .toBuffer(),
        );
        const zi = Float32Array.from({ length: 8 }, () => rand() - 0.5);
        return {
          kind: rand() < 0.7 ? ('generated' as const) : ('import' as const),
          prompt: `crash ${colour.r} ${colour.g} ${colour.b}`,
          settings: {},
          pack,
          width: 16,
          height: 16,
          bytes,
          embedding: { zi },
        };
      }),
    );
    const ids = await lib.save(items);
    for (const [k, id] of ids.entries()) {
      mine.push(id);
      say(`saved ${id} ${lib.get(id).sha256} ${k}`);
    }
  } else if (r < 0.65 && mine.length) {
    const id = mine[Math.floor(rand() * mine.length)]!;
    if (lib.exists(id) && lib.trash([id])) say(`trashed ${id}`);
  } else if (r < 0.72 && mine.length) {
    const id = mine[Math.floor(rand() * mine.length)]!;
    if (lib.exists(id) && lib.restore([id])) say(`restored ${id}`);
  } else if (r < 0.78) {
    lib.emptyTrash();
    say('emptied');
  } else {
    // Keep the queue under its bound (MAX_QUEUED) across many rounds: work some off first.
    while (lib.jobs.counts().queued >= 100) {
      const done = lib.jobs.claim();
      if (done) lib.jobs.complete(done.id, { ok: true });
    }
    const job = lib.jobs.enqueue('generate', { prompt: 'crash' });
    say(`enqueued ${job.id}`);
    const claimed = lib.jobs.claim();
    if (claimed && rand() < 0.5) lib.jobs.complete(claimed.id, { ok: true });
  }
}
