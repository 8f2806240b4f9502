// The gallery's rows as a sparse, index-addressed store, so a grid can show any stretch of a
// library of 100,000 images without holding or rendering the rest. The view says which indexes are
// on screen (want); the pager fetches them with keyset pages (gallery.list cursors), one request
// at a time, always for the latest stretch asked for. A jump far past what is loaded (a dragged
// scrollbar) does not walk every page in between: it finds, by counting, a creation time whose
// position is just before the wanted index and reads the page from there (exact, because the
// count of images on the near side of that time is that page's first index). Ranked results
// (similarity) come whole and are simply held.

/* eslint-disable svelte/prefer-svelte-reactivity -- the arrays and Maps here are the store itself,
   never read by a template directly: readers go through at(), which depends on `version`. */

import { MAX_PAGE, type Args, type ImageView, type StudioApi } from '../../preload/contract.ts';

/** The gallery's filters as gallery.list and gallery.count take them. */
export type GalleryFilterArgs = Args<'gallery.count'>;

export type GalleryItem = ImageView & { score?: number };

/** What the pager lists: a filtered, sorted listing, or a fixed ranked list. */
export type PagerSource =
  { kind: 'list'; filter: GalleryFilterArgs; sort: 'newest' | 'oldest' } | { kind: 'ranked'; items: GalleryItem[] };

/** Rows per ordinary page while scrolling. */
const PAGE = 200;
/** Further than this past a known cursor, a jump (count + one page) beats walking pages. */
const WALK_LIMIT = 1000;
/** A jump lands at most this many rows before the wanted index. */
const SLACK = 300;

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class GridPager {
  /** Bumped whenever rows arrive or go: what at() returns depends on it. */
  version = $state(0);
  /** How many rows the listing has (counted; for a word search, what is known so far plus a page while there is more). */
  total = $state(0);
  /** The first answer (rows or count) has arrived since the last reset. */
  ready = $state(false);
  loading = $state(false);
  error = $state<string | null>(null);
  /** `total` is exact (counted, or the listing's end was reached); else rows known so far plus a page. */
  exact = $state(true);
  /** Rows that have arrived (for a word search's "N+ so far"). */
  known = $state(0);
  /** Bumped when a new listing starts (not on a refresh in place): the grid goes back to the top. */
  epoch = $state(0);

  #api: StudioApi;
  #source: PagerSource = { kind: 'ranked', items: [] };
  #rows: (GalleryItem | undefined)[] = [];
  /** Rows shown until fresh ones replace them (a refresh keeps the grid from flashing empty). */
  #stale: (GalleryItem | undefined)[] | null = null;
  /** cursorAt.get(i): the cursor that lists rows from index i on (null: from the start). */
  #cursorAt = new Map<number, string | null>();
  /** Whether `total` is a count (false for word searches, which the count does not cover). */
  #counted = false;
  /** The listing ends at `total` (its last page came back without a cursor). */
  #ended = false;
  /** Creation times of the newest and oldest row (bounds for jumps). */
  #bounds: { newest: number; oldest: number } | null = null;
  #want: [number, number] = [0, PAGE];
  #generation = 0;
  /** The generation whose count and bounds have arrived (the pump waits for them). */
  #primed = -1;
  #pumping = false;

  constructor(api: StudioApi) {
    this.#api = api;
  }

  /** The row at index i (undefined while it is being fetched). Reactive through `version`. */
  at(i: number): GalleryItem | undefined {
    void this.version;
    return this.#rows[i] ?? this.#stale?.[i];
  }

  /** The rows loaded now, in order (for "select all shown"). */
  loaded(): GalleryItem[] {
    void this.version;
    return this.#rows.filter((r): r is GalleryItem => r !== undefined);
  }

  /** The index of a loaded row, or -1. */
  indexOf(id: number): number {
    return this.#rows.findIndex((r) => r?.id === id);
  }

  get ranked(): boolean {
    return this.#source.kind === 'ranked';
  }

  /** Starts over with another listing (keep: show the old rows until their indexes are read again). */
  reset = async (source: PagerSource, options: { keep?: boolean } = {}): Promise<void> => {
    const generation = ++this.#generation;
    this.#stale = options.keep ? this.#rows : null;
    this.#source = source;
    this.#rows = [];
    this.#cursorAt = new Map([[0, null]]);
    this.#bounds = null;
    this.#ended = false;
    this.exact = true;
    this.known = 0;
    this.error = null;
    if (!options.keep) {
      this.ready = false;
      this.total = 0;
      this.epoch++;
      // The grid goes back to the top: do not fetch the old scroll position's rows of the new listing.
      this.#want = [0, PAGE];
    }
    this.version++;
    if (source.kind === 'ranked') {
      this.#primed = generation;
      this.loading = false;
      this.#rows = [...source.items];
      this.#counted = true;
      this.#ended = true;
      this.#stale = null;
      this.total = source.items.length;
      this.known = source.items.length;
      this.ready = true;
      this.version++;
      return;
    }
    this.loading = true;
    const text = source.filter.text?.trim();
    this.#counted = !text;
    this.exact = !text;
    try {
      if (!text) {
        const [{ count }, first, last] = await Promise.all([
          this.#api.galleryCount(source.filter),
          this.#api.galleryList({ ...source.filter, sort: source.sort, limit: 1 }),
          this.#api.galleryList({ ...source.filter, sort: source.sort === 'newest' ? 'oldest' : 'newest', limit: 1 }),
        ]);
        if (generation !== this.#generation) return;
        this.total = count;
        const a = first.items[0]?.createdAt;
        const b = last.items[0]?.createdAt;
        if (a !== undefined && b !== undefined) this.#bounds = { newest: Math.max(a, b), oldest: Math.min(a, b) };
      }
    } catch (err) {
      if (generation !== this.#generation) return;
      this.error = messageOf(err);
      this.loading = false;
      return;
    }
    this.#primed = generation;
    void this.#pump(generation);
  };

  /** The view shows rows [start, end): fetch what of them is missing. */
  want = (start: number, end: number): void => {
    this.#want = [Math.max(0, start), Math.max(start, end)];
    if (!this.#pumping && this.#source.kind === 'list') void this.#pump(this.#generation);
  };

  /** Drops rows from what is loaded (trash emptied, images gone) without a refetch; ranked lists only. */
  patch = (fn: (item: GalleryItem) => GalleryItem | null): void => {
    this.#rows = this.#rows.flatMap((r) => {
      if (r === undefined) return [r];
      const next = fn(r);
      return next ? [next] : [];
    });
    this.total = this.#rows.length;
    this.version++;
  };

  /** The first index in [start, end) with no row, or -1. */
  #missing(start: number, end: number): number {
    const stop = this.#counted || this.#ended ? Math.min(end, this.total) : end;
    for (let i = start; i < stop; i++) if (this.#rows[i] === undefined) return i;
    return -1;
  }

  /** The largest index ≤ i with a known cursor. */
  #nearestCursor(i: number): number {
    let best = -1;
    for (const k of this.#cursorAt.keys()) if (k <= i && k > best) best = k;
    return best;
  }

  async #pump(generation: number): Promise<void> {
    if (this.#pumping || this.#primed !== generation) return;
    this.#pumping = true;
    this.loading = true;
    /** The index the last jump was for: a second jump for it would land in the same place. */
    let jumpedFor = -1;
    try {
      for (;;) {
        if (generation !== this.#generation) return;
        const [start, end] = this.#want;
        const m = this.#missing(start, end);
        if (m < 0) break;
        const k = this.#nearestCursor(m);
        if (k >= 0 && (m - k <= WALK_LIMIT || !this.#counted || !this.#bounds || jumpedFor === m)) {
          await this.#walk(generation, k, Math.min(MAX_PAGE, Math.max(PAGE, end - k)));
        } else {
          jumpedFor = m;
          await this.#jump(generation, m);
        }
      }
      if (generation === this.#generation) {
        this.#stale = null;
        this.ready = true;
        this.version++;
      }
    } catch (err) {
      if (generation === this.#generation) this.error = messageOf(err);
    } finally {
      this.#pumping = false;
      if (generation === this.#generation) this.loading = false;
      // A reset while this was pumping: the new listing needs its own pump.
      else if (this.#source.kind === 'list' && !this.#pumping) void this.#pump(this.#generation);
    }
  }

  #store(generation: number, at: number, items: GalleryItem[], next: string | null): void {
    if (generation !== this.#generation) return;
    for (let j = 0; j < items.length; j++) {
      if (this.#rows[at + j] === undefined) this.known++;
      this.#rows[at + j] = items[j];
    }
    if (next !== null) this.#cursorAt.set(at + items.length, next);
    else {
      this.#ended = true;
      this.exact = true;
      if (!this.#counted || at + items.length < this.total) this.total = at + items.length;
    }
    if (!this.#counted && next !== null) this.total = Math.max(this.total, at + items.length + PAGE);
    if (this.#counted && at + items.length > this.total) this.total = at + items.length;
    this.ready = true;
    this.version++;
  }

  async #walk(generation: number, k: number, limit: number): Promise<void> {
    const source = this.#source;
    if (source.kind !== 'list') return;
    const cursor = this.#cursorAt.get(k) ?? null;
    const page = await this.#api.galleryList({ ...source.filter, sort: source.sort, limit, cursor });
    this.#store(generation, k, page.items, page.nextCursor);
    if (page.items.length === 0 && page.nextCursor === null && generation === this.#generation) {
      this.total = k;
      this.version++;
    }
  }

  /** Reads the page that starts a little before index m, found by counting images either side of a time. */
  async #jump(generation: number, m: number): Promise<void> {
    const source = this.#source;
    const bounds = this.#bounds;
    if (source.kind !== 'list' || !bounds) return;
    const f = source.filter;
    const newest = source.sort === 'newest';
    // before(t): how many rows come before the first row on t's far side (newest: created after t).
    const before = async (t: number): Promise<number> => {
      if (!newest && t <= 0) return 0;
      const q = newest ? { ...f, from: Math.max(f.from ?? 0, t + 1) } : { ...f, to: Math.min(f.to ?? Infinity, t - 1) };
      return (await this.#api.galleryCount(q)).count;
    };
    // Newest first, before() falls as t rises: near = the end where it is 0, far = where it is the total.
    let near = newest ? bounds.newest : bounds.oldest;
    let far = newest ? bounds.oldest - 1 : bounds.newest + 1;
    let nearN = 0;
    let farN = this.total;
    let t = near;
    let n = 0;
    for (let round = 0; round < 40; round++) {
      if (Math.abs(far - near) <= 1) {
        t = near;
        n = nearN;
        break;
      }
      const frac = farN > nearN ? (m - nearN) / (farN - nearN) : 0.5;
      let guess = Math.round(near + (far - near) * Math.min(0.98, Math.max(0.02, frac)));
      if (guess === near) guess += Math.sign(far - near);
      if (guess === far) guess -= Math.sign(far - near);
      const c = await before(guess);
      if (generation !== this.#generation) return;
      if (c <= m && m - c <= SLACK) {
        t = guess;
        n = c;
        break;
      }
      if (c > m) {
        far = guess;
        farN = c;
      } else {
        near = guess;
        nearN = c;
      }
      t = near;
      n = nearN;
    }
    const at = newest ? { to: Math.min(f.to ?? Infinity, t) } : { from: Math.max(f.from ?? 0, t) };
    const page = await this.#api.galleryList({ ...f, ...at, sort: source.sort, limit: MAX_PAGE });
    this.#store(generation, n, page.items, page.nextCursor);
  }
}
