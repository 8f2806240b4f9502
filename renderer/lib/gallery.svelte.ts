// State of the Gallery: one page of the library after another (newest first, by cursor; only
// what has been loaded is in the DOM), the search (words, or meaning through CLIP), "more like
// this", the starred and trash filters, and the image open in the detail panel with its lineage
// and the edits queued from it. Library events keep what is loaded current.

/* eslint-disable svelte/prefer-svelte-reactivity -- the Sets and Maps here are working sets and lookups,
   never read by a template or a $derived: what the UI reads is $state.raw, replaced whole. */

import {
  MAX_PAGE,
  type ImageDetailView,
  type ImageView,
  type JobView,
  type LibraryChange,
  type StudioApi,
} from '../../preload/contract.ts';
import { randomSeed } from './create.svelte.ts';

export type GalleryItem = ImageView & { score?: number };

/** Which images the grid shows. */
export type Shelf = 'all' | 'trash';

/** The part of the gallery's filter the shelf and the starred box set. */
type Filter = { trashed?: true; starred?: true };

/** Images per page. */
export const PAGE = 60;
/** Results of a similarity search (they come ranked, in one page). */
const SIMILAR_K = 100;
/** Library events are gathered this long before the grid is brought up to date. */
const SETTLE_MS = 150;
/** More changed images than this and the loaded pages are read again instead of one by one. */
const MAX_SINGLE_UPDATES = 40;

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class GalleryState {
  shelf = $state<Shelf>('all');
  /** What the search box holds. */
  query = $state('');
  /** Search by meaning (the prompt's CLIP embedding against the images') instead of by words. */
  semantic = $state(false);
  starredOnly = $state(false);
  /** "More like this": the image the grid is ranked against. */
  similarTo = $state<number | null>(null);

  items = $state.raw<GalleryItem[]>([]);
  nextCursor = $state<string | null>(null);
  loading = $state(false);
  /** The first page has arrived at least once. */
  loaded = $state(false);
  error = $state<string | null>(null);
  /** The search the grid shows (query as it was submitted). */
  searched = $state('');
  confirmingEmpty = $state(false);

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

  #api: StudioApi;
  #generation = 0;
  #pending: LibraryChange = { added: [], changed: [], removed: [] };
  #timer: ReturnType<typeof setTimeout> | null = null;
  #detailGeneration = 0;

  constructor(api: StudioApi) {
    this.#api = api;
    api.onLibrary((change) => this.#changed(change));
  }

  /** The filter every query of the grid shares. */
  #filter(): Filter {
    return this.shelf === 'trash' ? { trashed: true } : this.starredOnly ? { starred: true } : {};
  }

  /** Whether an image belongs on the grid as filtered now (after a star or trash changed it). */
  #belongs(image: ImageView): boolean {
    if (this.shelf === 'trash') return image.trashedAt !== null;
    return image.trashedAt === null && (!this.starredOnly || image.starred);
  }

  /** Loads the first page once (the Gallery's first showing). */
  ensureLoaded = (): void => {
    if (!this.loaded && !this.loading) void this.reload();
  };

  /** Reads the grid from its first page. */
  reload = async (): Promise<void> => {
    const generation = ++this.#generation;
    this.loading = true;
    this.error = null;
    try {
      const text = this.searched.trim();
      let items: GalleryItem[];
      let next: string | null = null;
      if (this.similarTo !== null) {
        items = await this.#api.gallerySimilar({ id: this.similarTo, k: SIMILAR_K, filter: this.#filter() });
      } else if (this.semantic && text) {
        items = await this.#api.gallerySimilar({ text, k: SIMILAR_K, filter: this.#filter() });
      } else {
        const page = await this.#api.galleryList({ ...this.#filter(), ...(text ? { text } : {}), limit: PAGE });
        items = page.items;
        next = page.nextCursor;
      }
      if (generation !== this.#generation) return;
      this.items = items;
      this.nextCursor = next;
      this.loaded = true;
    } catch (err) {
      if (generation === this.#generation) {
        this.error = messageOf(err);
        this.items = [];
        this.nextCursor = null;
      }
    } finally {
      if (generation === this.#generation) this.loading = false;
    }
  };

  loadMore = async (): Promise<void> => {
    if (this.nextCursor === null || this.loading || this.ranked) return;
    const generation = this.#generation;
    const text = this.searched.trim();
    this.loading = true;
    try {
      const page = await this.#api.galleryList({
        ...this.#filter(),
        ...(text ? { text } : {}),
        limit: PAGE,
        cursor: this.nextCursor,
      });
      if (generation !== this.#generation) return;
      const have = new Set(this.items.map((i) => i.id));
      this.items = [...this.items, ...page.items.filter((i) => !have.has(i.id))];
      this.nextCursor = page.nextCursor;
    } catch (err) {
      if (generation === this.#generation) this.error = messageOf(err);
    } finally {
      if (generation === this.#generation) this.loading = false;
    }
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
    if (this.shelf === shelf) return;
    this.shelf = shelf;
    this.similarTo = null;
    this.confirmingEmpty = false;
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

  // ---------------------------------------------------------------------------------------------
  // Star, trash, restore

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

  emptyTrash = async (): Promise<void> => {
    this.confirmingEmpty = false;
    try {
      const { deleted } = await this.#api.galleryEmptyTrash();
      this.#say(`Deleted ${deleted} ${deleted === 1 ? 'image' : 'images'} for good.`);
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
  }

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
    if (this.selectedId !== null) {
      if (change.removed.includes(this.selectedId)) this.close();
      else void this.#loadDetail(); // its star, trash, inversion or children may have changed
    }
    if (!this.loaded) return;

    const removed = new Set(change.removed);
    if (removed.size) this.items = this.items.filter((i) => !removed.has(i.id));
    const loaded = new Set(this.items.map((i) => i.id));
    const changed = [...new Set(change.changed)].filter((id) => !removed.has(id));
    const changedHere = changed.filter((id) => loaded.has(id));
    // Ranked results are a snapshot: only what they already hold is kept current.
    const mayAppear =
      !this.ranked && ((this.shelf === 'all' && change.added.length > 0) || changed.some((id) => !loaded.has(id)));

    if (mayAppear || changedHere.length > MAX_SINGLE_UPDATES) {
      await this.#reread();
    } else if (changedHere.length) {
      const generation = this.#generation;
      const got = await Promise.allSettled(changedHere.map((id) => this.#api.galleryGet({ id })));
      if (generation !== this.#generation) return;
      const fresh = new Map<number, ImageView>();
      for (const r of got) if (r.status === 'fulfilled') fresh.set(r.value.image.id, r.value.image);
      this.items = this.items.flatMap((item) => {
        const now = fresh.get(item.id);
        if (!now) return [item];
        return this.#belongs(now) ? [{ ...now, ...(item.score !== undefined ? { score: item.score } : {}) }] : [];
      });
    }
  }

  /** Reads the loaded pages again (as many images as are shown now), keeping the grid's length. */
  async #reread(): Promise<void> {
    const generation = ++this.#generation;
    const text = this.searched.trim();
    const want = Math.max(this.items.length, PAGE);
    const items: GalleryItem[] = [];
    let cursor: string | null = null;
    try {
      do {
        const page = await this.#api.galleryList({
          ...this.#filter(),
          ...(text ? { text } : {}),
          limit: Math.min(MAX_PAGE, want - items.length),
          cursor,
        });
        items.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor !== null && items.length < want);
      if (generation !== this.#generation) return;
      this.items = items;
      this.nextCursor = cursor;
    } catch (err) {
      if (generation === this.#generation) this.error = messageOf(err);
    } finally {
      // It took over from any page still on its way.
      if (generation === this.#generation) this.loading = false;
    }
  }
}
