// State of the Gallery: the library as one long, virtualised listing (a GridPager reads the rows
// the grid shows, by keyset pages), with its filters (kind, starred, board, dates, pack), sort and
// search (words, or meaning through CLIP), "more like this", the selection and what can be done to
// it at once (star, boards, trash, restore, export), the boards, drag-and-drop import, and the image
// open in the detail panel with its lineage and the edits queued from it. Library events keep what
// is shown current.

/* eslint-disable svelte/prefer-svelte-reactivity -- the Sets here are built and replaced whole
   (selection is $state.raw), never mutated where a template reads them. */

import {
  LARGE_BODY_BYTES,
  MAX_IMPORT_FILE_BYTES,
  MAX_PAGE,
  StudioError,
  type BoardView,
  type ImageDetailView,
  type ImageKind,
  type ImageView,
  type JobView,
  type LibraryChange,
  type StudioApi,
} from '../../preload/contract.ts';
import { randomSeed } from './create.svelte.ts';
import { GridPager, type GalleryFilterArgs, type GalleryItem, type PagerSource } from './pager.svelte.ts';

export type { GalleryItem };

/** Which images the grid shows. */
export type Shelf = 'all' | 'trash';
export type Sort = 'newest' | 'oldest';

/** Results of a similarity search (they come ranked, in one page). */
const SIMILAR_K = 100;
/** Library events are gathered this long before the grid is brought up to date. */
const SETTLE_MS = 150;
/** How long a message about something that worked stays up. */
const MESSAGE_MS = 12_000;
/**
 * What one gallery.import call carries at most: web mode sends the bytes as base64 (4/3 bigger) and
 * takes LARGE_BODY_BYTES a request, so a bigger drop goes in several calls (read one call at a time).
 */
const IMPORT_BATCH_BYTES = Math.floor((LARGE_BODY_BYTES * 0.7) / 2 ** 20) * 2 ** 20;
/** The most files one drop takes. */
const MAX_DROP_FILES = 100;
const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
/** A message as a sentence (the service's one-liners have no full stop). */
const sentence = (text: string): string => (/[.!?]$/.test(text) ? text : `${text}.`);
/** The most images one bulk action takes (the contract's limit). */
export const MAX_BULK = 10_000;

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A date field's value (YYYY-MM-DD) as local midnight, ms since the epoch; null when empty or invalid. */
export function dayStart(value: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!m) return null;
  const t = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3])).getTime();
  return Number.isFinite(t) && t >= 0 ? t : null;
}
/** The last millisecond of a date field's day. */
export function dayEnd(value: string): number | null {
  const start = dayStart(value);
  if (start === null) return null;
  const [y, mo, d] = value.split('-').map(Number) as [number, number, number];
  return new Date(y, mo - 1, d + 1).getTime() - 1;
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n.toLocaleString()} ${n === 1 ? one : many}`;

export class GalleryState {
  shelf = $state<Shelf>('all');
  /** What the search box holds. */
  query = $state('');
  /** Search by meaning (the prompt's CLIP embedding against the images') instead of by words. */
  semantic = $state(false);
  starredOnly = $state(false);
  /** Kinds shown (none ticked: every kind). */
  kinds = $state.raw<ImageKind[]>([]);
  /** The board the grid is narrowed to. */
  boardId = $state<number | null>(null);
  /** Date fields (YYYY-MM-DD, inclusive; empty: unbounded). */
  fromDate = $state('');
  toDate = $state('');
  /** A pack's manifest sha256 (empty: any pack). */
  pack = $state('');
  sort = $state<Sort>('newest');
  /** "More like this": the image the grid is ranked against. */
  similarTo = $state<number | null>(null);
  /** The search the grid shows (query as it was submitted). */
  searched = $state('');

  /** The rows of the grid. */
  pager: GridPager;
  /** The Gallery has been shown (its first listing asked for). */
  started = $state(false);

  /** Selected image ids (replaced whole on every change). */
  selected = $state.raw<ReadonlySet<number>>(new Set());
  /** Where a shift-click range starts (an index of the grid). */
  anchor = $state<number | null>(null);
  /** The grid's keyboard position (an index). */
  focusIndex = $state(0);
  /** The first image on screen, in which listing (scrolled back to when the Gallery is shown again). Not reactive. */
  scrollMemory = { epoch: -1, index: 0 };

  boards = $state.raw<BoardView[]>([]);
  packs = $state.raw<{ name: string; sha256: string; count: number }[]>([]);
  /** How many images the library and its trash hold (the sidebar's counts; null until read). */
  counts = $state.raw<{ images: number; trashed: number } | null>(null);
  /** The jobs the last drop queued (encode + invert of each new image). */
  importJobs = $state.raw<JobView[]>([]);
  importing = $state(false);

  selectedId = $state<number | null>(null);
  detail = $state.raw<ImageDetailView | null>(null);
  detailError = $state<string | null>(null);
  /** The image a tile click picks as the other end of an interpolation (while picking). */
  pickingFor = $state<number | null>(null);
  interpolateWith = $state<number | null>(null);
  frames = $state(5);
  diffTo = $state('');
  /** What the last action did, or why it could not (read by an aria-live region). */
  message = $state<string | null>(null);
  messageIsError = $state(false);

  ranked = $derived(this.similarTo !== null || (this.semantic && this.searched.trim().length > 0));
  /** Some filter besides the shelf and the board narrows the grid. */
  filtered = $derived(
    this.starredOnly || this.kinds.length > 0 || this.fromDate !== '' || this.toDate !== '' || this.pack !== '',
  );
  board = $derived(this.boards.find((b) => b.id === this.boardId) ?? null);

  #api: StudioApi;
  #pending: LibraryChange = { added: [], changed: [], removed: [] };
  #timer: ReturnType<typeof setTimeout> | null = null;
  #detailGeneration = 0;
  #rankedGeneration = 0;
  #messageTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(api: StudioApi) {
    this.#api = api;
    this.pager = new GridPager(api);
    api.onLibrary((change) => this.#changed(change));
  }

  /** The filter every query of the grid shares (without the words searched). */
  filterArgs(): GalleryFilterArgs {
    const from = dayStart(this.fromDate);
    const to = dayEnd(this.toDate);
    return {
      ...(this.shelf === 'trash' ? { trashed: true } : {}),
      ...(this.starredOnly ? { starred: true } : {}),
      ...(this.kinds.length ? { kinds: [...this.kinds] } : {}),
      ...(this.boardId !== null ? { boardId: this.boardId } : {}),
      ...(from !== null ? { from } : {}),
      ...(to !== null ? { to } : {}),
      ...(this.pack ? { pack: this.pack } : {}),
    };
  }

  /** Loads the first page, the boards and the packs once (the Gallery's first showing). */
  ensureLoaded = (): void => {
    if (this.started) return;
    this.started = true;
    void this.reload();
    void this.loadBoards();
    void this.loadPacks();
  };

  /** Reads the grid again from the top (keep: a refresh in place, the old rows shown until replaced). */
  reload = async (options: { keep?: boolean } = {}): Promise<void> => {
    const generation = ++this.#rankedGeneration;
    const text = this.searched.trim();
    const filter = this.filterArgs();
    if (!options.keep) {
      this.focusIndex = 0;
      this.anchor = null;
    }
    let source: PagerSource;
    if (this.similarTo !== null || (this.semantic && text)) {
      try {
        const items =
          this.similarTo !== null
            ? await this.#api.gallerySimilar({ id: this.similarTo, k: SIMILAR_K, filter })
            : await this.#api.gallerySimilar({ text, k: SIMILAR_K, filter });
        if (generation !== this.#rankedGeneration) return;
        source = { kind: 'ranked', items };
      } catch (err) {
        if (generation !== this.#rankedGeneration) return;
        source = { kind: 'ranked', items: [] };
        await this.pager.reset(source);
        this.pager.error = messageOf(err);
        return;
      }
    } else {
      source = { kind: 'list', filter: { ...filter, ...(text ? { text } : {}) }, sort: this.sort };
    }
    await this.pager.reset(source, options);
  };

  search = (): void => {
    this.searched = this.query;
    this.similarTo = null;
    void this.reload();
  };

  clearSearch = (): void => {
    this.query = '';
    this.searched = '';
    this.similarTo = null;
    void this.reload();
  };

  showShelf = (shelf: Shelf): void => {
    if (this.shelf === shelf && this.boardId === null) return;
    this.shelf = shelf;
    this.boardId = null;
    this.similarTo = null;
    this.clearSelection();
    this.close();
    void this.reload();
  };

  setStarredOnly = (on: boolean): void => {
    this.starredOnly = on;
    void this.reload();
  };

  setSemantic = (on: boolean): void => {
    this.semantic = on;
    if (this.searched.trim()) void this.reload();
  };

  toggleKind = (kind: ImageKind, on: boolean): void => {
    this.kinds = on ? [...new Set([...this.kinds, kind])] : this.kinds.filter((k) => k !== kind);
    void this.reload();
  };

  setBoard = (id: number | null): void => {
    this.boardId = id;
    this.shelf = 'all';
    this.similarTo = null;
    this.clearSelection();
    void this.reload();
  };

  setDates = (from: string, to: string): void => {
    this.fromDate = from;
    this.toDate = to;
    void this.reload();
  };

  setPack = (pack: string): void => {
    this.pack = pack;
    void this.reload();
  };

  setSort = (sort: Sort): void => {
    this.sort = sort;
    void this.reload();
  };

  clearFilters = (): void => {
    this.starredOnly = false;
    this.kinds = [];
    this.fromDate = '';
    this.toDate = '';
    this.pack = '';
    void this.reload();
  };

  /** "More like this": the gallery ranked by closeness to the image's CLIP embedding. */
  moreLike = (id: number): void => {
    this.shelf = 'all';
    this.similarTo = id;
    void this.reload();
  };

  clearSimilar = (): void => {
    this.similarTo = null;
    void this.reload();
  };

  loadBoards = async (): Promise<void> => {
    try {
      this.boards = await this.#api.boardsList();
      if (this.boardId !== null && !this.boards.some((b) => b.id === this.boardId)) this.setBoard(null);
    } catch (err) {
      this.#say(`Could not read the boards: ${messageOf(err)}`, true);
    }
  };

  loadPacks = async (): Promise<void> => {
    try {
      const info = await this.#api.libraryInfo();
      this.packs = info.packs;
      this.counts = { images: info.images, trashed: info.trashed };
    } catch {
      // The pack filter just offers no packs.
    }
  };

  // ---------------------------------------------------------------------------------------------
  // Selection

  /** A click on the tile at index i: plain (select it and open it), shift (range), ctrl/cmd (toggle). */
  click = (index: number, id: number, mods: { shift?: boolean; toggle?: boolean } = {}): void => {
    this.focusIndex = index;
    if (this.pickingFor !== null) {
      this.choose(id);
      return;
    }
    if (mods.shift && this.anchor !== null) {
      this.selectRange(this.anchor, index, mods.toggle === true);
      return;
    }
    if (mods.toggle) {
      this.toggleSelected(id);
      this.anchor = index;
      return;
    }
    this.selected = new Set([id]);
    this.anchor = index;
    this.open(id);
  };

  toggleSelected = (id: number): void => {
    const next = new Set(this.selected);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    this.selected = next;
  };

  /** Selects every loaded image between two indexes (added to the selection when `add`). */
  selectRange = (a: number, b: number, add = false): void => {
    const next = new Set(add ? this.selected : []);
    for (let i = Math.min(a, b); i <= Math.max(a, b); i++) {
      const item = this.pager.at(i);
      if (item) next.add(item.id);
    }
    this.selected = next;
  };

  /** Selects every image the grid has loaded (at most MAX_BULK). */
  selectAllShown = (): void => {
    const ids = this.pager.loaded().map((i) => i.id);
    this.selected = new Set(ids.slice(0, MAX_BULK));
    if (ids.length > MAX_BULK)
      this.#say(`Selected the first ${MAX_BULK.toLocaleString()} images (the most one action takes).`);
  };

  /** Reading every id of the listing for "select all" (pages of MAX_PAGE). */
  selectingAll = $state(false);

  /** Selects every image the grid lists (as filtered and searched), loaded or not, up to MAX_BULK. */
  selectAll = async (): Promise<void> => {
    if (this.pager.ranked) return this.selectAllShown();
    const text = this.searched.trim();
    const filter = { ...this.filterArgs(), ...(text ? { text } : {}) };
    const generation = this.pager.epoch;
    const ids: number[] = [];
    let cursor: string | null = null;
    this.selectingAll = true;
    try {
      do {
        const page = await this.#api.galleryList({ ...filter, sort: this.sort, limit: MAX_PAGE, cursor });
        ids.push(...page.items.map((i) => i.id));
        cursor = page.nextCursor;
      } while (cursor !== null && ids.length < MAX_BULK);
      if (generation !== this.pager.epoch) return; // another listing meanwhile
      this.selected = new Set(ids.slice(0, MAX_BULK));
      this.#say(
        cursor !== null || ids.length > MAX_BULK
          ? `Selected the first ${MAX_BULK.toLocaleString()} images (the most one action takes).`
          : `Selected all ${plural(ids.length, 'image')}.`,
      );
    } catch (err) {
      this.#say(`Could not select them all: ${messageOf(err)}`, true);
    } finally {
      this.selectingAll = false;
    }
  };

  clearSelection = (): void => {
    if (this.selected.size) this.selected = new Set();
    this.anchor = null;
  };

  #ids(): number[] {
    return [...this.selected].slice(0, MAX_BULK);
  }

  starSelected = (starred: boolean): Promise<void> => {
    const ids = this.#ids();
    return this.#act(
      () => this.#api.galleryStar({ ids, starred }),
      `${starred ? 'Starred' : 'Unstarred'} ${plural(ids.length, 'image')}.`,
    );
  };

  trashSelected = (): Promise<void> => {
    const ids = this.#ids();
    return this.#act(
      async () => {
        await this.#api.galleryTrash({ ids });
        this.clearSelection();
      },
      `Moved ${plural(ids.length, 'image')} to the trash.`,
    );
  };

  restoreSelected = (): Promise<void> => {
    const ids = this.#ids();
    return this.#act(
      async () => {
        await this.#api.galleryRestore({ ids });
        this.clearSelection();
      },
      `Restored ${plural(ids.length, 'image')}.`,
    );
  };

  addSelectedToBoard = (boardId: number): Promise<void> => {
    const ids = this.#ids();
    const name = this.boards.find((b) => b.id === boardId)?.name ?? `board ${boardId}`;
    return this.#act(async () => {
      const { changed } = await this.#api.boardsAdd({ boardId, ids });
      await this.loadBoards();
      this.#say(
        changed === ids.length
          ? `Added ${plural(ids.length, 'image')} to “${name}”.`
          : `Added ${plural(changed, 'image')} to “${name}” (${ids.length - changed} already there).`,
      );
    });
  };

  /** Puts one image on a board (from its details). */
  addToBoard = (boardId: number, id: number): Promise<void> => {
    const name = this.boards.find((b) => b.id === boardId)?.name ?? `board ${boardId}`;
    return this.#act(async () => {
      await this.#api.boardsAdd({ boardId, ids: [id] });
      await this.loadBoards();
    }, `Added image ${id} to “${name}”.`);
  };

  removeSelectedFromBoard = (): Promise<void> => {
    const boardId = this.boardId;
    const ids = this.#ids();
    if (boardId === null) return Promise.resolve();
    const name = this.board?.name ?? `board ${boardId}`;
    return this.#act(
      async () => {
        await this.#api.boardsRemove({ boardId, ids });
        this.clearSelection();
        await this.loadBoards();
      },
      `Took ${plural(ids.length, 'image')} off “${name}”.`,
    );
  };

  /** Writes the selected images, with their metadata, into a folder on this computer. */
  exportSelected = async (dir: string): Promise<boolean> => {
    const ids = this.#ids();
    const folder = dir.trim();
    if (!folder) {
      this.#say('Export: type the folder to write the images into.', true);
      return false;
    }
    try {
      const { written, skipped, dir: where } = await this.#api.galleryExport({ ids, dir: folder });
      this.#say(`Exported ${plural(written, 'image')} to ${where}${skipped ? ` (${skipped} already there)` : ''}.`);
      return true;
    } catch (err) {
      this.#say(`Export failed: ${messageOf(err)}`, true);
      return false;
    }
  };

  // ---------------------------------------------------------------------------------------------
  // Boards

  createBoard = async (name: string): Promise<BoardView | null> => {
    try {
      const board = await this.#api.boardsCreate({ name });
      await this.loadBoards();
      this.#say(`Board “${board.name}” created.`);
      return board;
    } catch (err) {
      this.#say(`Could not create the board: ${messageOf(err)}`, true);
      return null;
    }
  };

  renameBoard = async (id: number, name: string): Promise<boolean> => {
    try {
      const board = await this.#api.boardsRename({ id, name });
      await this.loadBoards();
      this.#say(`Board renamed to “${board.name}”.`);
      return true;
    } catch (err) {
      this.#say(`Could not rename the board: ${messageOf(err)}`, true);
      return false;
    }
  };

  deleteBoard = async (id: number): Promise<void> => {
    const name = this.boards.find((b) => b.id === id)?.name ?? `board ${id}`;
    try {
      await this.#api.boardsDelete({ id });
      if (this.boardId === id) this.setBoard(null);
      await this.loadBoards();
      this.#say(`Board “${name}” deleted (its images are still in the gallery).`);
    } catch (err) {
      this.#say(`Could not delete the board: ${messageOf(err)}`, true);
    }
  };

  // ---------------------------------------------------------------------------------------------
  // Import (files dropped on the gallery)

  importFiles = async (files: File[]): Promise<void> => {
    if (!files.length) {
      this.#say('Nothing to import: drop image files.', true);
      return;
    }
    // What cannot be imported is named here, with why, before a byte is read: the rest still goes.
    const refused: string[] = [];
    const images: File[] = [];
    for (const f of files) {
      if (!(/^image\/(png|jpeg|webp)$/.test(f.type) || /\.(png|jpe?g|webp)$/i.test(f.name)))
        refused.push(`${f.name}: not a PNG, JPEG or WebP picture`);
      else if (f.size === 0) refused.push(`${f.name}: the file is empty`);
      else if (f.size > MAX_IMPORT_FILE_BYTES)
        refused.push(`${f.name}: ${mib(f.size)}, over the ${MAX_IMPORT_FILE_BYTES / 2 ** 20} MiB limit per file`);
      else images.push(f);
    }
    if (images.length > MAX_DROP_FILES) {
      this.#say(`Drop at most ${MAX_DROP_FILES} files at a time (you dropped ${images.length}).`, true);
      return;
    }
    if (!images.length) {
      this.#say(`Nothing imported: ${refused.join('; ')}. Only PNG, JPEG and WebP pictures can be imported.`, true);
      return;
    }
    const batches: File[][] = [];
    for (const f of images) {
      const last = batches.at(-1);
      if (last && last.reduce((n, g) => n + g.size, 0) + f.size <= IMPORT_BATCH_BYTES) last.push(f);
      else batches.push([f]);
    }
    this.importing = true;
    const out = { imported: 0, duplicates: 0, jobs: [] as JobView[] };
    let failed: string | null = null;
    try {
      for (const batch of batches) {
        try {
          const payload = await Promise.all(
            batch.map(async (f) => ({
              name: f.name.slice(0, 255) || 'image',
              bytes: new Uint8Array(await f.arrayBuffer()),
            })),
          );
          const got = await this.#api.galleryImport({ files: payload });
          out.imported += got.imported.length;
          out.duplicates += got.duplicates.length;
          out.jobs.push(...got.jobs);
          refused.push(...got.refused.map((r) => r.error));
        } catch (err) {
          // Every file of the call refused: the reasons name them. Anything else stops the drop.
          if (err instanceof StudioError && err.code === 'invalid_argument') refused.push(messageOf(err));
          else {
            failed = messageOf(err);
            break;
          }
        }
      }
    } finally {
      this.importing = false;
    }
    this.importJobs = out.jobs;
    const said: string[] = [];
    if (out.imported || out.duplicates) {
      const parts = [`Imported ${plural(out.imported, 'image')}`];
      if (out.duplicates) parts.push(`${plural(out.duplicates, 'file')} already in the library`);
      const jobs = out.jobs.length ? `; ${plural(out.jobs.length, 'encoding job')} queued` : '';
      said.push(`${parts.join(', ')}${jobs}.`);
      if (failed) said.push(`Then the import failed: ${sentence(failed)}`);
    } else if (failed) said.push(`Import failed: ${sentence(failed)}`);
    if (refused.length) said.push(`${said.length ? 'Not imported' : 'Nothing imported'}: ${refused.join('; ')}.`);
    const text = said.join(' ');
    this.#say(text, failed !== null || refused.length > 0);
  };

  // ---------------------------------------------------------------------------------------------
  // Star, trash, restore (one image)

  #act = async (what: () => Promise<unknown>, done?: string): Promise<void> => {
    try {
      await what();
      if (done) this.#say(done);
    } catch (err) {
      this.#say(messageOf(err), true);
    }
  };

  toggleStar = (image: ImageView): Promise<void> =>
    this.#act(() => this.#api.galleryStar({ ids: [image.id], starred: !image.starred }));

  trash = (id: number): Promise<void> =>
    this.#act(() => this.#api.galleryTrash({ ids: [id] }), `Image ${id} moved to the trash.`);

  restore = (id: number): Promise<void> =>
    this.#act(() => this.#api.galleryRestore({ ids: [id] }), `Image ${id} restored.`);

  /** Deletes for good the whole trash, or (`selected`) only the selected images in it. */
  emptyTrash = async (selected = false): Promise<void> => {
    try {
      const { deleted } = await this.#api.galleryEmptyTrash(selected ? { ids: this.#ids() } : {});
      this.#say(`Deleted ${plural(deleted, 'image')} for good.`);
      this.clearSelection();
      if (this.shelf === 'trash') void this.reload();
    } catch (err) {
      this.#say(messageOf(err), true);
    }
  };

  // ---------------------------------------------------------------------------------------------
  // Detail panel

  /** Opens an image in the detail panel (or, while picking, takes it as the interpolation's other end). */
  choose = (id: number): void => {
    if (this.pickingFor !== null) {
      if (id !== this.pickingFor) {
        this.interpolateWith = id;
        this.pickingFor = null;
      }
      return;
    }
    this.open(id);
  };

  /** Opens a parent or child from the lineage; a selection of just the image left follows to it. */
  walkTo = (id: number): void => {
    const from = this.selectedId;
    if (from !== null && this.selected.size === 1 && this.selected.has(from)) {
      this.selected = new Set([id]);
      const i = this.pager.indexOf(id);
      if (i >= 0) {
        this.anchor = i;
        this.focusIndex = i;
      }
    }
    this.open(id);
  };

  open = (id: number): void => {
    if (this.selectedId !== id) {
      this.diffTo = '';
      this.interpolateWith = null;
      this.pickingFor = null;
      this.message = null;
    }
    this.selectedId = id;
    void this.#loadDetail();
  };

  close = (): void => {
    this.#detailGeneration++;
    this.selectedId = null;
    this.detail = null;
    this.detailError = null;
    this.pickingFor = null;
    this.interpolateWith = null;
  };

  async #loadDetail(): Promise<void> {
    const id = this.selectedId;
    if (id === null) return;
    const generation = ++this.#detailGeneration;
    try {
      const detail = await this.#api.galleryGet({ id });
      if (generation !== this.#detailGeneration) return;
      this.detail = detail;
      this.detailError = null;
    } catch (err) {
      if (generation !== this.#detailGeneration) return;
      this.detail = null;
      this.detailError = messageOf(err);
    }
  }

  startPicking = (): void => {
    if (this.selectedId === null) return;
    this.pickingFor = this.selectedId;
    this.interpolateWith = null;
  };

  stopPicking = (): void => {
    this.pickingFor = null;
  };

  #queued(job: JobView, what: string): void {
    this.#say(`${what} queued (job ${job.id}); the new images will appear in the gallery.`);
  }

  vary = (): Promise<void> =>
    this.#act(async () => {
      const id = this.selectedId;
      if (id === null) return;
      // A new seed each time: the same seed would make the same variations again.
      this.#queued(await this.#api.vary({ id, n: 4, eta: 1, seed: randomSeed() }), `Variations of image ${id}`);
    });

  textdiff = (): Promise<void> =>
    this.#act(async () => {
      const id = this.selectedId;
      const to = this.diffTo.trim();
      if (id === null) return;
      if (!to) throw new Error('Say what the image should become (the “to” description).');
      this.#queued(await this.#api.textdiff({ id, to }), `Text diff of image ${id}`);
    });

  interpolate = (): Promise<void> =>
    this.#act(async () => {
      const a = this.selectedId;
      const b = this.interpolateWith;
      if (a === null || b === null) return;
      if (!Number.isInteger(this.frames) || this.frames < 2 || this.frames > 32)
        throw new Error('Frames: enter a whole number from 2 to 32.');
      this.#queued(await this.#api.interpolate({ a, b, frames: this.frames }), `Interpolation ${a} → ${b}`);
    });

  #say(text: string, isError = false): void {
    this.message = text;
    this.messageIsError = isError;
    if (this.#messageTimer !== null) clearTimeout(this.#messageTimer);
    // What went right fades after a while; what went wrong stays until dismissed or replaced.
    this.#messageTimer = isError ? null : setTimeout(() => this.dismissMessage(), MESSAGE_MS);
  }

  dismissMessage = (): void => {
    if (this.#messageTimer !== null) clearTimeout(this.#messageTimer);
    this.#messageTimer = null;
    this.message = null;
  };

  // ---------------------------------------------------------------------------------------------
  // Library events

  #changed(change: LibraryChange): void {
    this.#pending.added.push(...change.added);
    this.#pending.changed.push(...change.changed);
    this.#pending.removed.push(...change.removed);
    if (this.#timer === null) this.#timer = setTimeout(() => void this.#settle(), SETTLE_MS);
  }

  async #settle(): Promise<void> {
    this.#timer = null;
    const change = this.#pending;
    this.#pending = { added: [], changed: [], removed: [] };
    const removed = new Set(change.removed);
    if (this.selectedId !== null) {
      if (removed.has(this.selectedId)) this.close();
      else void this.#loadDetail(); // its star, trash, inversion or children may have changed
    }
    if (removed.size && [...this.selected].some((id) => removed.has(id)))
      this.selected = new Set([...this.selected].filter((id) => !removed.has(id)));
    if (!this.started) return;
    void this.loadBoards();
    void this.loadPacks();
    if (this.pager.ranked) {
      // Ranked results are a snapshot: only what they already hold is kept current.
      await this.#patchRanked(
        [...new Set(change.changed)].filter((id) => !removed.has(id)),
        removed,
      );
    } else {
      // The listing's membership or order may have changed anywhere: read the rows shown again.
      void this.reload({ keep: true });
    }
  }

  async #patchRanked(changed: number[], removed: Set<number>): Promise<void> {
    const loaded = new Set(this.pager.loaded().map((i) => i.id));
    const here = changed.filter((id) => loaded.has(id));
    const generation = this.#rankedGeneration;
    const got = await Promise.allSettled(here.map((id) => this.#api.galleryGet({ id })));
    if (generation !== this.#rankedGeneration) return;
    const fresh = new Map<number, ImageView>();
    for (const r of got) if (r.status === 'fulfilled') fresh.set(r.value.image.id, r.value.image);
    const trash = this.shelf === 'trash';
    this.pager.patch((item) => {
      if (removed.has(item.id)) return null;
      const now = fresh.get(item.id);
      if (!now) return item;
      const belongs = trash ? now.trashedAt !== null : now.trashedAt === null && (!this.starredOnly || now.starred);
      return belongs ? { ...now, ...(item.score !== undefined ? { score: item.score } : {}) } : null;
    });
  }
}
