// `unclip info`: the pack, its networks (FLOPs, backend) and the backends this machine offers.
import { defaultThreadCount } from '../engine/backends.ts';
import { Engine } from '../engine/engine.ts';
import { sourceName } from '../service/startup.ts';
import { backend, parseFlags, threads } from './args.ts';
import { cliStartup, engineOptionsOf } from './startup.ts';

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
  // The pack, backend and threads the studio would start with (flag, environment, settings.json, default).
  const startup = cliStartup({ pack: values.pack, backend: be, threads: th });
  const chosenBy = {
    pack: sourceName('pack', startup.from.pack),
    backend: sourceName('backend', startup.from.backend),
    threads: sourceName('threads', startup.from.threads),
  };
  const engine = new Engine({
    ...engineOptionsOf(startup),
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
      console.log(JSON.stringify({ ...info, threads: pack.threads, components, chosenBy }, null, 2));
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
    console.log(`  chosen by   pack: ${chosenBy.pack}, backend: ${chosenBy.backend}, threads: ${chosenBy.threads}`);
    return 0;
  } finally {
    await engine.close();
  }
}
