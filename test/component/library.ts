// A fake library behind the FakeStudio: `count` images with ids 1..count (image k made at time k),
// answering gallery.list (keyset pages, both sorts, filters by time, starred, trash, words),
// gallery.count and gallery.get the way the service does, without holding them all.

import type { Args, ImageView, Page } from '../../preload/contract.ts';
import { detail, image, type FakeStudio } from './fake-api.ts';

export interface FakeLibrary {
  /** Ids starred or trashed so far (the fake applies gallery.star / trash / restore to them). */
  starred: Set<number>;
  trashed: Set<number>;
  row: (id: number) => ImageView;
}

export function fakeLibrary(fake: FakeStudio, count: number): FakeLibrary {
  const starred = new Set<number>();
  const trashed = new Set<number>();
  const row = (id: number): ImageView =>
    image({
      id,
      createdAt: id,
      prompt: id % 2 ? `a red fox ${id}` : `a blue bird ${id}`,
      starred: starred.has(id),
      trashedAt: trashed.has(id) ? 1 : null,
    });
  const matches = (id: number, f: Args<'gallery.count'>): boolean =>
    id >= (f.from ?? 0) &&
    id <= (f.to ?? Infinity) &&
    (!f.starred || starred.has(id)) &&
    (f.trashed === true) === trashed.has(id) &&
    (!f.text || row(id).prompt.includes(f.text));
  /** Ids in listing order, lazily (a full walk only when a filter needs it). */
  function* ordered(f: Args<'gallery.list'>): Generator<number> {
    const newest = (f.sort ?? 'newest') === 'newest';
    const after = f.cursor ? Number(f.cursor) : null;
    for (let k = 0; k < count; k++) {
      const id = newest ? count - k : k + 1;
      if (after !== null && (newest ? id >= after : id <= after)) continue;
      if (matches(id, f)) yield id;
    }
  }
  fake.on('gallery.list', (args): Page<ImageView> => {
    const limit = args.limit ?? 100;
    const items: ImageView[] = [];
    let last: number | null = null;
    for (const id of ordered(args)) {
      if (items.length === limit) return { items, nextCursor: String(last) };
      items.push(row(id));
      last = id;
    }
    return { items, nextCursor: null };
  });
  fake.on('gallery.count', (f) => {
    if (!f.starred && !f.text && !f.trashed && trashed.size === 0) {
      const lo = Math.max(1, Math.ceil(f.from ?? 1));
      const hi = Math.min(count, Math.floor(f.to ?? count));
      return { count: Math.max(0, hi - lo + 1) };
    }
    let n = 0;
    for (let id = 1; id <= count; id++) if (matches(id, f)) n++;
    return { count: n };
  });
  fake.on('gallery.get', ({ id }) => detail(row(id)));
  fake.on('gallery.star', ({ ids, starred: on }) => {
    for (const id of ids) {
      if (on) starred.add(id);
      else starred.delete(id);
    }
    return { changed: ids.length };
  });
  fake.on('gallery.trash', ({ ids }) => {
    for (const id of ids) trashed.add(id);
    return { changed: ids.length };
  });
  fake.on('gallery.restore', ({ ids }) => {
    for (const id of ids) trashed.delete(id);
    return { changed: ids.length };
  });
  return { starred, trashed, row };
}
