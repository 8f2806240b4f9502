// `unclip gallery …`: the library from the command line. Each subcommand translates its flags to one
// contract operation and calls the service (the same dispatch IPC and web mode use); --json prints
// the operation's result as it is.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  IMAGE_KINDS,
  StudioError,
  type ImageView,
  type JobView,
  type OperationName,
  type Result,
} from '../../preload/contract.ts';
import { backend, num, threads, UsageError } from './args.ts';
import { openCliStudio, type CliStudio } from './studio-session.ts';

export const GALLERY_USAGE = `usage: unclip gallery <command> [--library DIR] [--json]

  list    [--kind K]... [--starred] [--board ID] [--pack NAME] [--trash] [--oldest]
          [--since DATE] [--until DATE] [--limit N] [--cursor C]
  search  "<text>" [list filters]          words of prompts and captions (prefix match)
  similar <id> | --text "<text>" [--k N] [list filters]
                                           nearest by CLIP embedding, within the image's pack
  show    <id>                             everything about an image: settings, latents, lineage, boards
  star <id...> | unstar <id...> | trash <id...> | restore <id...> | empty-trash [id...]
  boards  [list] | create "<name>" | rename <id> "<name>" | delete <id> | add <board> <id...> | remove <board> <id...>
  export  <id...> <dir> | --board ID <dir> | --all <dir>
                                           image files with their metadata (+ .latent.safetensors when inverted)
  import  <file|folder...>                 PNG/JPEG/WebP (+ .latent.safetensors beside them); waits for the
                                           CLIP encoding and inversion unless --no-wait
  check   [--repair] [--verify]            integrity check, missing files, orphans; --repair fixes what it safely can
  jobs    [--all] | run | cancel <id> | retry <id> | move <id> front|back|<before-id>
                                           run: this process works through the queue until it is empty
  info                                     where the library is, how many images, packs, jobs

The library: --library DIR, else $UNCLIP_LIBRARY, else the one saved in the Settings view (settings.json),
else the per-user folder. Jobs that need the engine use $UNCLIP_PACK, $UNCLIP_BACKEND, $UNCLIP_THREADS
(--backend, --threads), else the saved pack, backend and threads.`;

const OPTIONS = {
  library: { type: 'string' },
  json: { type: 'boolean' },
  kind: { type: 'string', multiple: true },
  starred: { type: 'boolean' },
  board: { type: 'string' },
  pack: { type: 'string' },
  trash: { type: 'boolean' },
  oldest: { type: 'boolean' },
  since: { type: 'string' },
  until: { type: 'string' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
  text: { type: 'string' },
  k: { type: 'string' },
  all: { type: 'boolean' },
  repair: { type: 'boolean' },
  verify: { type: 'boolean' },
  'no-wait': { type: 'boolean' },
  backend: { type: 'string' },
  threads: { type: 'string' },
  'engine-pack': { type: 'string' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

const id = (what: string, v: string | undefined): number => {
  const n = num(what, v);
  if (n === undefined) throw new UsageError(`${what}: missing (an image id, see \`unclip gallery list\`)`);
  return n;
};
const ids = (what: string, vs: string[]): number[] => {
  if (vs.length === 0) throw new UsageError(`${what}: give at least one image id`);
  return vs.map((v) => id(what, v));
};

function date(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new UsageError(`--${flag}: not a date (got "${v}"; e.g. 2026-12-01)`);
  return t;
}

function filters(v: Values): Record<string, unknown> {
  const kinds = v.kind?.map((k) => {
    if (!(IMAGE_KINDS as readonly string[]).includes(k))
      throw new UsageError(`--kind: one of ${IMAGE_KINDS.join(', ')} (got "${k}")`);
    return k;
  });
  const out: Record<string, unknown> = {};
  if (kinds) out.kinds = kinds;
  if (v.starred) out.starred = true;
  if (v.board !== undefined) out.boardId = id('--board', v.board);
  if (v.pack !== undefined) out.pack = v.pack;
  if (v.trash) out.trashed = true;
  const from = date('since', v.since);
  const to = date('until', v.until);
  if (from !== undefined) out.from = from;
  if (to !== undefined) out.to = to;
  return out;
}

/** Folders expand to the image and latent files directly inside them. */
function importFiles(paths: string[]): { name: string; bytes: Uint8Array }[] {
  if (paths.length === 0) throw new UsageError('import: give image files or folders');
  const files: string[] = [];
  for (const p of paths) {
    const abs = resolve(p);
    const st = statSync(abs, { throwIfNoEntry: false });
    if (!st) throw new UsageError(`import: ${p}: no such file`);
    if (st.isDirectory())
      files.push(
        ...readdirSync(abs)
          .filter((n) => /\.(png|jpe?g|webp)$|\.latent\.safetensors$/i.test(n))
          .sort()
          .map((n) => join(abs, n)),
      );
    else files.push(abs);
  }
  return files.map((f) => ({ name: f.split(/[\\/]/).pop()!, bytes: new Uint8Array(readFileSync(f)) }));
}

const when = (t: number): string => new Date(t).toISOString().replace('T', ' ').slice(0, 16);
const short = (text: string, n = 60): string => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

function imageLine(i: ImageView & { score?: number }): string {
  const flags = `${i.starred ? '★' : ' '}${i.inverted ? 'x' : i.hasEmbedding ? 'z' : ' '}`;
  const score = i.score !== undefined ? ` ${i.score.toFixed(3)}` : '';
  return `${String(i.id).padStart(6)} ${flags} ${when(i.createdAt)}  ${i.kind.padEnd(13)}${score}  ${JSON.stringify(short(i.prompt))}`;
}

function jobLine(j: JobView): string {
  const p = j.progress ? ` ${j.progress.stage} ${j.progress.step}/${j.progress.total}` : '';
  const err = j.error ? `  ${j.error}` : '';
  const imgs = j.imageIds.length ? `  → ${j.imageIds.join(' ')}` : '';
  return `${String(j.id).padStart(6)} ${j.status.padEnd(9)} ${j.kind.padEnd(11)}${p}${imgs}${err}`;
}

export async function galleryCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h') {
    console.log(GALLERY_USAGE);
    return sub === undefined ? 2 : 0;
  }
  const { values: v, positionals: pos } = parseArgs({
    args: rest,
    options: OPTIONS,
    allowPositionals: true,
    strict: true,
  });
  const engine = {
    ...(v['engine-pack'] !== undefined ? { packDir: resolve(v['engine-pack']) } : {}),
    ...(v.backend !== undefined ? { backend: backend(v.backend)! } : {}),
    ...(v.threads !== undefined ? { threads: threads(v.threads)! } : {}),
  };
  let studio: CliStudio;
  try {
    const runQueue = sub === 'jobs' && pos[0] === 'run';
    studio = openCliStudio({
      ...(v.library !== undefined ? { library: v.library } : {}),
      engine,
      ...(runQueue ? { runScope: 'all' as const } : {}),
    });
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`--library: ${(err as Error).message}`, { cause: err });
  }
  const print = (value: unknown, human: () => string): void =>
    console.log(v.json ? JSON.stringify(value, null, 2) : human());
  const run = async <K extends OperationName>(
    op: K,
    raw: unknown,
    human: (r: Result<K>) => string,
  ): Promise<Result<K>> => {
    const r = await studio.call(op, raw);
    print(r, () => human(r));
    return r;
  };
  const limit = v.limit !== undefined ? { limit: num('limit', v.limit) } : {};
  try {
    switch (sub) {
      case 'list':
      case 'search': {
        if (sub === 'search' && !pos[0]) throw new UsageError('search: give the words to look for (quote them)');
        await run(
          'gallery.list',
          {
            ...filters(v),
            ...(sub === 'search' ? { text: pos.join(' ') } : {}),
            ...(v.oldest ? { sort: 'oldest' } : {}),
            ...limit,
            ...(v.cursor !== undefined ? { cursor: v.cursor } : {}),
          },
          (page) =>
            [
              ...page.items.map(imageLine),
              page.items.length === 0 ? 'no images' : '',
              page.nextCursor ? `more: --cursor ${page.nextCursor}` : '',
            ]
              .filter(Boolean)
              .join('\n'),
        );
        return 0;
      }
      case 'similar': {
        const by = v.text !== undefined ? { text: v.text } : { id: id('similar', pos[0]) };
        await run(
          'gallery.similar',
          { ...by, ...(v.k !== undefined ? { k: num('k', v.k) } : {}), filter: filters(v) },
          (hits) => (hits.length ? hits.map(imageLine).join('\n') : 'no images with an embedding in that pack'),
        );
        return 0;
      }
      case 'show': {
        await run('gallery.get', { id: id('show', pos[0]) }, (d) => {
          const i = d.image;
          const edge = (e: { id: number; role: string; op: string; params: Record<string, unknown> }) =>
            `${e.id} (${e.op}${e.role !== 'source' ? ` ${e.role}` : ''} ${JSON.stringify(e.params)})`;
          return [
            `image ${i.id}: ${i.kind}, ${i.width}×${i.height} ${i.mime}, ${when(i.createdAt)}${i.starred ? ', starred' : ''}${i.trashedAt ? ', in the trash' : ''}`,
            `prompt:   ${JSON.stringify(i.prompt)}`,
            `seed:     ${i.seed ?? '—'}`,
            `pack:     ${i.pack.name} (${i.pack.sha256.slice(0, 12)})`,
            `settings: ${JSON.stringify(i.settings)}`,
            `file:     ${i.sha256} (${i.bytes} bytes)`,
            `latents:  ${i.hasEmbedding ? 'z_i' : 'no z_i yet'}${d.inversion ? `, x_T (${d.inversion.steps} steps, refine ${d.inversion.refine}, PSNR ${d.inversion.psnr?.toFixed(1) ?? '—'} dB)` : ', not inverted yet'}`,
            `parents:  ${d.parents.map(edge).join(', ') || '—'}`,
            `children: ${d.children.map(edge).join(', ') || '—'}`,
            `boards:   ${d.boards.map((b) => `${b.id} ${JSON.stringify(b.name)}`).join(', ') || '—'}`,
          ].join('\n');
        });
        return 0;
      }
      case 'star':
      case 'unstar':
        await run(
          'gallery.star',
          { ids: ids(sub, pos), starred: sub === 'star' },
          (r) => `${sub === 'star' ? 'starred' : 'unstarred'} ${r.changed}`,
        );
        return 0;
      case 'trash':
        await run(
          'gallery.trash',
          { ids: ids(sub, pos) },
          (r) => `moved ${r.changed} to the trash (restore brings them back)`,
        );
        return 0;
      case 'restore':
        await run('gallery.restore', { ids: ids(sub, pos) }, (r) => `restored ${r.changed}`);
        return 0;
      case 'empty-trash':
        await run(
          'gallery.emptyTrash',
          pos.length ? { ids: ids(sub, pos) } : {},
          (r) => `deleted ${r.deleted} images for good (${r.filesRemoved} files removed)`,
        );
        return 0;
      case 'boards': {
        const [action = 'list', ...args] = pos;
        const board = (b: { id: number; name: string; count: number }) =>
          `${String(b.id).padStart(4)} ${JSON.stringify(b.name)} (${b.count})`;
        if (action === 'list') await run('boards.list', {}, (bs) => bs.map(board).join('\n') || 'no boards');
        else if (action === 'create') await run('boards.create', { name: args.join(' ') }, board);
        else if (action === 'rename')
          await run('boards.rename', { id: id('boards rename', args[0]), name: args.slice(1).join(' ') }, board);
        else if (action === 'delete')
          await run(
            'boards.delete',
            { id: id('boards delete', args[0]) },
            () => 'deleted (its images stay in the gallery)',
          );
        else if (action === 'add' || action === 'remove')
          await run(
            action === 'add' ? 'boards.add' : 'boards.remove',
            { boardId: id(`boards ${action}`, args[0]), ids: ids(`boards ${action}`, args.slice(1)) },
            (r) => `${action === 'add' ? 'added' : 'removed'} ${r.changed}`,
          );
        else throw new UsageError(`boards: unknown action "${action}" (list, create, rename, delete, add, remove)`);
        return 0;
      }
      case 'export': {
        const dir = pos.at(-1);
        if (!dir) throw new UsageError('export: give the folder to write to (last)');
        const target = v.all
          ? { all: true }
          : v.board !== undefined
            ? { boardId: id('--board', v.board) }
            : { ids: ids('export', pos.slice(0, -1)) };
        await run(
          'gallery.export',
          { ...target, dir },
          (r) => `wrote ${r.written} images to ${r.dir}${r.skipped ? ` (${r.skipped} already there)` : ''}`,
        );
        return 0;
      }
      case 'import': {
        const r = await studio.call('gallery.import', { files: importFiles(pos) });
        const jobs = v['no-wait'] ? r.jobs : await Promise.all(r.jobs.map((j) => studio.service.waitForJob(j.id)));
        print({ ...r, jobs }, () =>
          [
            `imported ${r.imported.length}${r.imported.length ? `: ${r.imported.join(' ')}` : ''}`,
            r.duplicates.length ? `already in the library: ${r.duplicates.join(' ')}` : '',
            ...r.refused.map((f) => `not imported: ${f.error}`),
            ...jobs.filter((j) => j.status === 'failed').map((j) => `could not encode: ${jobLine(j)}`),
          ]
            .filter(Boolean)
            .join('\n'),
        );
        return r.refused.length || jobs.some((j) => j.status === 'failed') ? 1 : 0;
      }
      case 'check': {
        const r = await run('gallery.check', { repair: Boolean(v.repair), verifyHashes: Boolean(v.verify) }, (c) =>
          [
            `integrity: ${c.integrity}`,
            `missing files: ${c.missingFiles.length}${c.missingFiles.length ? ` (images ${c.missingFiles.map((m) => m.id).join(' ')}${c.repaired ? ', moved to the trash' : '; --repair moves them to the trash'})` : ''}`,
            `damaged files: ${c.damagedFiles.length}`,
            `orphan files: ${c.orphanFiles.length}${c.orphanFiles.length && c.repaired ? ' (removed)' : ''}`,
            `missing thumbnails: ${c.missingThumbs}${c.missingThumbs && c.repaired ? ' (remade)' : ''}`,
            `temp files removed: ${c.tempFilesRemoved}; interrupted jobs re-queued: ${c.jobsRequeued.length}, failed: ${c.jobsFailed.length}`,
          ].join('\n'),
        );
        const bad = r.integrity !== 'ok' || (!r.repaired && (r.missingFiles.length > 0 || r.damagedFiles.length > 0));
        return bad ? 1 : 0;
      }
      case 'jobs': {
        const [action, ...args] = pos;
        if (action === undefined)
          await run(
            'jobs.list',
            v.all ? { ...limit } : { status: ['queued', 'running'], ...limit },
            (js) => js.map(jobLine).join('\n') || 'no jobs waiting or running (--all shows finished ones)',
          );
        else if (action === 'run') {
          // This process serves the whole queue (as the desktop app would) until nothing is waiting.
          for (;;) {
            const active = await studio.call('jobs.list', { status: ['queued', 'running'] });
            const mine = active.find((j) => j.status === 'queued') ?? active[0];
            if (!mine) break;
            const end = await studio.service.waitForJob(mine.id);
            if (!v.json) console.log(jobLine(end));
          }
          if (v.json) print(await studio.call('jobs.list', { limit: 50 }), () => '');
        } else if (action === 'cancel') await run('jobs.cancel', { id: id('jobs cancel', args[0]) }, jobLine);
        else if (action === 'retry') await run('jobs.retry', { id: id('jobs retry', args[0]) }, jobLine);
        else if (action === 'move') {
          const to = args[1] === 'front' || args[1] === 'back' ? args[1] : { before: id('jobs move', args[1]) };
          await run('jobs.move', { id: id('jobs move', args[0]), to }, jobLine);
        } else throw new UsageError(`jobs: unknown action "${action}" (run, cancel, retry, move)`);
        return 0;
      }
      case 'info':
        await run('library.info', {}, (i) =>
          [
            `library: ${i.dir} (schema ${i.schemaVersion})`,
            `images: ${i.images} (+${i.trashed} in the trash)`,
            ...i.packs.map((p) => `  ${p.name} (${p.sha256.slice(0, 12)}): ${p.count}`),
            `jobs: ${Object.entries(i.jobs)
              .map(([k, n]) => `${n} ${k}`)
              .join(', ')}`,
          ].join('\n'),
        );
        return 0;
      default:
        throw new UsageError(`gallery: unknown command "${sub}" (see \`unclip gallery help\`)`);
    }
  } catch (err) {
    if (err instanceof StudioError) {
      console.error(`unclip gallery ${sub}: ${err.message}`);
      return err.code === 'invalid_argument' || err.code === 'not_found' ? 2 : 1;
    }
    throw err;
  } finally {
    await studio.close();
  }
}
