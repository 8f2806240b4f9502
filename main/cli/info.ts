// `unclip info`: the pack, its networks (FLOPs, backend) and the backends this machine offers.
import { defaultThreadCount } from '../engine/backends.ts';
import { Engine } from '../engine/engine.ts';
import { backend, parseFlags, threads } from './args.ts';

export async function infoCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags({
    args: argv,
    options: {
      pack: { type: 'string' },
      backend: { type: 'string' },
      threads: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const be = backend(values.backend);
  const th = threads(values.threads);
  const engine = new Engine({
    ...(values.pack !== undefined ? { packDir: values.pack } : {}),
    ...(be ? { backend: be } : {}),
    ...(th ? { threads: th } : {}),
    warmup: false,
    warn: (m) => console.error(`warning: ${m}`),
  });
  try {
    const info = await engine.info();
    const pack = await engine.pack();
    const m = pack.manifest;
    const components = Object.fromEntries(
      Object.entries(m.components).map(([role, c]) => [
        role,
        { file: c!.file, gflops: c!.flops / 1e9, backend: info.sessionBackends[role] },
      ]),
    );
    if (values.json) {
      console.log(JSON.stringify({ ...info, threads: pack.threads, components }, null, 2));
      return 0;
    }
    const p = info.pack;
    console.log(`${p.title} (${p.name})`);
    console.log(`  folder      ${p.dir}`);
    console.log(`  licence     ${p.license}`);
    console.log(`  attribution ${p.attribution}`);
    console.log(
      `  resolution  decoder ${m.resolution.decoder}px → output ${p.outputSize}px, CLIP width ${m.embedding_dim}`,
    );
    const d = p.defaults;
    console.log(
      `  defaults    steps ${d.stepsPrior}/${d.stepsDecoder}/${d.stepsSuperRes} (prior/decoder/sr), guidance ${d.guidancePrior}/${d.guidanceDecoder}`,
    );
    console.log('  networks');
    for (const [role, c] of Object.entries(components)) {
      console.log(
        `    ${role.padEnd(16)} ${c.file.padEnd(22)} ${c.gflops.toFixed(3).padStart(9)} GFLOP/call  on ${c.backend}`,
      );
    }
    console.log(
      `  backends here: ${info.availableBackends.join(', ')}; threads ${pack.threads} (physical cores: ${defaultThreadCount()})`,
    );
    return 0;
  } finally {
    await engine.close();
  }
}
