// `unclip packs …`: the model packs from the command line, through the same contract operations the
// Models view calls (list, verify, import, use). `use` loads the pack to check it and saves it as the
// studio's choice: the next start of the desktop app, web mode and every CLI command loads it (unless
// --pack or $UNCLIP_PACK names another). `list` marks with * the pack this rule picks.

import { StudioError, type PackView } from '../../preload/contract.ts';
import { sourceName } from '../service/startup.ts';
import { parseFlags, UsageError } from './args.ts';
import { openCliStudio } from './studio-session.ts';

export const PACKS_USAGE = `usage: unclip packs <command> [--json]

  list                 installed packs (bundled and imported), their networks, size and licence;
                       * marks the one loaded: $UNCLIP_PACK, else the saved choice, else the first shipped pack
  verify <name>        re-hashes every file of the pack against its manifest (exit 1 when one fails)
  import <folder>      validates a pack folder and copies it into the user's packs (<app data>/models)
  use <name>           loads the pack and saves it as the pack the studio and the CLI load from now on`;

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

function packLine(p: PackView): string {
  const extras = [
    p.optional.arPrior ? 'AR prior' : null,
    p.optional.imageEncoder ? 'image encoder' : null,
    p.optional.superRes ? 'super-resolution' : null,
  ].filter(Boolean);
  return [
    `${p.active ? '*' : ' '} ${p.name.padEnd(20)} ${p.title}`,
    `    ${p.source}, ${mib(p.bytes)}, schema v${p.schemaVersion}, exporter ${p.exporterVersion}, ${p.precision}, ${p.resolution.decoder}→${p.resolution.output} px`,
    `    networks: ${p.networks.join(', ')}${extras.length ? ` (with ${extras.join(', ')})` : ''}`,
    `    licence: ${p.license}`,
    `    ${p.dir}`,
  ].join('\n');
}

export async function packsCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h') {
    console.log(PACKS_USAGE);
    return sub === undefined ? 2 : 0;
  }
  const { values: v, positionals: pos } = parseFlags({
    args: rest,
    options: { json: { type: 'boolean' } },
    allowPositionals: true,
    strict: true,
  });
  const arg = (what: string): string => {
    if (pos.length !== 1) throw new UsageError(`packs ${sub}: give one ${what}`);
    return pos[0]!;
  };
  const print = (value: unknown, human: string): void => console.log(v.json ? JSON.stringify(value, null, 2) : human);
  if (!['list', 'verify', 'import', 'use'].includes(sub))
    throw new UsageError(`packs: unknown command "${sub}" (list, verify, import, use)`);
  const studio = openCliStudio({});
  try {
    switch (sub) {
      case 'list': {
        const r = await studio.call('packs.list', {});
        const lines = [
          ...r.packs.map(packLine),
          ...r.broken.map((b) => `! ${b.dir}: ${b.error}`),
          `(* the pack the studio and the CLI load, chosen by ${sourceName('pack', studio.startup.from.pack)}; imports go to ${r.userDir})`,
        ];
        if (r.engineError) lines.push(`engine: ${r.engineError}`);
        print(r, r.packs.length ? lines.join('\n') : `no packs found (imports go to ${r.userDir})`);
        return 0;
      }
      case 'verify': {
        const r = await studio.call('packs.verify', { name: arg('pack name') });
        print(
          r,
          [
            ...r.files.map((f) => `${f.ok ? 'ok  ' : 'FAIL'} ${f.name}${f.problem ? `: ${f.problem}` : ''}`),
            r.summary,
          ].join('\n'),
        );
        return r.ok ? 0 : 1;
      }
      case 'import': {
        const r = await studio.call('packs.import', { dir: arg('pack folder') });
        print(r, `imported ${r.name} (${r.title}) into ${r.dir}`);
        return 0;
      }
      default: {
        const r = await studio.call('packs.use', { name: arg('pack name') });
        print(
          r,
          `the studio and the CLI use ${r.pack.name} (${r.pack.title}) from their next start` +
            (studio.startup.from.pack === 'env' ? ' (while $UNCLIP_PACK is set, the CLI loads that one)' : ''),
        );
        return 0;
      }
    }
  } catch (err) {
    if (err instanceof StudioError) {
      console.error(`unclip packs ${sub}: ${err.message}`);
      return err.code === 'invalid_argument' || err.code === 'not_found' || err.code === 'conflict' ? 2 : 1;
    }
    throw err;
  } finally {
    await studio.close();
  }
}
