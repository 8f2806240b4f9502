// GridPager and GalleryState (renderer/lib/pager.svelte.ts, gallery.svelte.ts): paging a large
// library, filters, selection, and what is done to it (star, trash, restore).
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { dayEnd, dayStart, GalleryState } from '../../renderer/lib/gallery.svelte.ts';
import { GridPager } from '../../renderer/lib/pager.svelte.ts';
import { StudioError } from '../../preload/contract.ts';
import { FakeStudio, image } from './fake-api.ts';
import { fakeLibrary } from './library.ts';

/** Waits until the pager has nothing more to fetch. */
async function idle(pager: GridPager): Promise<void> {
  await vi.waitFor(() => expect(pager.loading).toBe(false));
}

describe('GridPager', () => {
  let fake: FakeStudio;
  let pager: GridPager;

  beforeEach(() => {
    fake = new FakeStudio();
    pager = new GridPager(fake.api);
  });

  test('a listing counts its rows and reads the first page; rows further down arrive by walking cursors', async () => {
    fakeLibrary(fake, 1000);
    await pager.reset({ kind: 'list', filter: {}, sort: 'newest' });
    await idle(pager);
    expect(pager.total).toBe(1000);
    expect(pager.exact).toBe(true);
    expect(pager.at(0)?.id).toBe(1000);
    expect(pager.at(199)?.id).toBe(801);
    expect(pager.at(200)).toBeUndefined();

    pager.want(400, 450);
    await idle(pager);
    expect(pager.at(420)?.id).toBe(580);
    const cursors = fake.calls('gallery.list').map((a) => a.cursor);
    expect(cursors.filter((c) => c !== undefined && c !== null)).not.toHaveLength(0);
  });

  test('a jump far down (a dragged scrollbar) reads one page from a counted time instead of every page between', async () => {
    fakeLibrary(fake, 100_000);
    await pager.reset({ kind: 'list', filter: {}, sort: 'newest' });
    await idle(pager);
    const before = fake.calls('gallery.list').length;
    pager.want(70_000, 70_040);
    await idle(pager);
    for (let i = 70_000; i < 70_040; i++) expect(pager.at(i)?.id).toBe(100_000 - i);
    // Pages walked from the top would be 350; a jump is one list (and a few counts).
    expect(fake.calls('gallery.list').length - before).toBeLessThanOrEqual(2);
    expect(fake.calls('gallery.count').length).toBeLessThan(45);
    // Nothing between the first page and the jump was read.
    expect(pager.at(30_000)).toBeUndefined();
  });

  test('oldest first lists from the other end, and the jump lands exactly there too', async () => {
    fakeLibrary(fake, 20_000);
    await pager.reset({ kind: 'list', filter: {}, sort: 'oldest' });
    await idle(pager);
    expect(pager.at(0)?.id).toBe(1);
    pager.want(15_000, 15_010);
    await idle(pager);
    expect(pager.at(15_005)?.id).toBe(15_006);
  });

  test('a word search is not counted: the total is what is known plus a page, exact once the end is read', async () => {
    fakeLibrary(fake, 500);
    await pager.reset({ kind: 'list', filter: { text: 'fox' }, sort: 'newest' });
    await idle(pager);
    expect(fake.calls('gallery.count')).toEqual([]);
    expect(pager.exact).toBe(false);
    expect(pager.known).toBe(200);
    expect(pager.total).toBe(400);
    pager.want(0, 400);
    await idle(pager);
    expect(pager.exact).toBe(true);
    expect(pager.total).toBe(250);
  });

  test('ranked results are held whole; patch drops rows without a refetch', async () => {
    await pager.reset({ kind: 'ranked', items: [image({ id: 3 }), image({ id: 9 }), image({ id: 4 })] });
    expect(pager.ranked).toBe(true);
    expect([pager.total, pager.ready]).toEqual([3, true]);
    expect(pager.loaded().map((i) => i.id)).toEqual([3, 9, 4]);
    pager.patch((item) => (item.id === 9 ? null : item));
    expect(pager.loaded().map((i) => i.id)).toEqual([3, 4]);
    expect(pager.total).toBe(2);
    expect(pager.indexOf(4)).toBe(1);
  });

  test('a failed count says why', async () => {
    fake.on('gallery.count', () => {
      throw new Error('library is locked');
    });
    fake.on('gallery.list', { items: [], nextCursor: null });
    await pager.reset({ kind: 'list', filter: {}, sort: 'newest' });
    expect(pager.error).toBe('library is locked');
    expect(pager.loading).toBe(false);
  });
});

describe('GalleryState', () => {
  let fake: FakeStudio;
  let gallery: GalleryState;

  beforeEach(() => {
    fake = new FakeStudio();
    fake.on('boards.list', [{ id: 2, name: 'Foxes', count: 1, createdAt: 0, coverId: null }]);
    fake.on('library.info', {
      dir: '/lib',
      schemaVersion: 1,
      images: 30,
      trashed: 0,
      packs: [],
      jobs: { queued: 0, running: 0, done: 0, failed: 0, cancelled: 0 },
    });
    gallery = new GalleryState(fake.api);
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  test('the filters become the listing’s arguments (and the trash shelf lists only the trash)', async () => {
    fakeLibrary(fake, 30);
    gallery.ensureLoaded();
    await idle(gallery.pager);
    gallery.setStarredOnly(true);
    gallery.toggleKind('variation', true);
    gallery.setPack('b'.repeat(64));
    gallery.setDates('2024-03-01', '2024-03-02');
    gallery.setBoard(2);
    await idle(gallery.pager);
    expect(gallery.filtered).toBe(true);
    expect(gallery.board?.name).toBe('Foxes');
    expect(fake.calls('gallery.count').at(-1)).toEqual({
      starred: true,
      kinds: ['variation'],
      boardId: 2,
      from: dayStart('2024-03-01'),
      to: dayEnd('2024-03-02'),
      pack: 'b'.repeat(64),
    });
    expect(dayEnd('2024-03-02')! - dayStart('2024-03-01')!).toBe(2 * 86_400_000 - 1);

    gallery.clearFilters();
    gallery.showShelf('trash');
    await idle(gallery.pager);
    expect(fake.calls('gallery.count').at(-1)).toEqual({ trashed: true });
    expect(gallery.boardId).toBeNull();
  });

  test('a search by words lists matches; by meaning asks for a ranked similarity search', async () => {
    fakeLibrary(fake, 30);
    fake.on('gallery.similar', [{ ...image({ id: 8 }), score: 0.9 }]);
    gallery.query = 'fox';
    gallery.search();
    await idle(gallery.pager);
    expect(fake.calls('gallery.list').at(-1)).toMatchObject({ text: 'fox' });
    expect(gallery.pager.loaded().every((i) => i.prompt.includes('fox'))).toBe(true);

    gallery.setSemantic(true);
    await vi.waitFor(() => expect(gallery.pager.ranked).toBe(true));
    expect(fake.calls('gallery.similar')).toEqual([{ text: 'fox', k: 100, filter: {} }]);
    expect(gallery.pager.at(0)?.score).toBe(0.9);
  });

  test('a click selects and opens; Shift+click selects a range; Ctrl/Cmd+click toggles one', async () => {
    fakeLibrary(fake, 30);
    gallery.ensureLoaded();
    await idle(gallery.pager);
    gallery.click(2, 28);
    expect([...gallery.selected]).toEqual([28]);
    await vi.waitFor(() => expect(gallery.detail?.image.id).toBe(28));
    gallery.click(5, 25, { shift: true });
    expect([...gallery.selected].sort()).toEqual([25, 26, 27, 28]);
    gallery.click(9, 21, { toggle: true });
    gallery.click(3, 27, { toggle: true });
    expect([...gallery.selected].sort()).toEqual([21, 25, 26, 28]);
    gallery.selectAllShown();
    expect(gallery.selected.size).toBe(30);
    gallery.clearSelection();
    expect(gallery.selected.size).toBe(0);
  });

  test('Select all reads every id of the listing, loaded or not', async () => {
    fakeLibrary(fake, 450);
    gallery.ensureLoaded();
    await idle(gallery.pager);
    expect(gallery.pager.loaded()).toHaveLength(200);
    await gallery.selectAll();
    expect(gallery.selected.size).toBe(450);
    expect(gallery.message).toBe('Selected all 450 images.');
  });

  test('star, trash and restore the selection call the library with its ids', async () => {
    const lib = fakeLibrary(fake, 30);
    gallery.ensureLoaded();
    await idle(gallery.pager);
    gallery.selected = new Set([3, 4]);
    await gallery.starSelected(true);
    expect(fake.calls('gallery.star').at(-1)).toEqual({ ids: [3, 4], starred: true });
    expect(gallery.message).toBe('Starred 2 images.');
    await gallery.trashSelected();
    expect(fake.calls('gallery.trash').at(-1)).toEqual({ ids: [3, 4] });
    expect([...lib.trashed]).toEqual([3, 4]);
    expect(gallery.selected.size).toBe(0);
    expect(gallery.message).toBe('Moved 2 images to the trash.');

    gallery.showShelf('trash');
    gallery.selected = new Set([4]);
    await gallery.restoreSelected();
    expect(fake.calls('gallery.restore')).toEqual([{ ids: [4] }]);
    expect(gallery.message).toBe('Restored 1 image.');
    await gallery.trash(9);
    expect(gallery.message).toBe('Image 9 moved to the trash.');
    await gallery.restore(9);
    expect(gallery.message).toBe('Image 9 restored.');
  });

  test('an action the library refuses leaves its reason as an error message', async () => {
    fake.on('gallery.trash', () => {
      throw new Error('image 5 does not exist');
    });
    await gallery.trash(5);
    expect(gallery.message).toBe('image 5 does not exist');
    expect(gallery.messageIsError).toBe(true);
  });

  test('emptying the trash asks the library to delete it, then reads the trash again', async () => {
    fakeLibrary(fake, 5);
    fake.on('gallery.emptyTrash', { deleted: 2, filesRemoved: 2 });
    gallery.ensureLoaded();
    gallery.showShelf('trash');
    await idle(gallery.pager);
    const lists = fake.calls('gallery.count').length;
    gallery.selected = new Set([1]);
    await gallery.emptyTrash(true);
    expect(fake.calls('gallery.emptyTrash')).toEqual([{ ids: [1] }]);
    expect(gallery.message).toBe('Deleted 2 images for good.');
    await vi.waitFor(() => expect(fake.calls('gallery.count').length).toBe(lists + 1));
  });

  test('walking the lineage opens the parent and moves a one-image selection with it', async () => {
    fakeLibrary(fake, 30);
    gallery.ensureLoaded();
    await idle(gallery.pager);
    gallery.click(0, 30);
    gallery.walkTo(25);
    expect(gallery.selectedId).toBe(25);
    expect([...gallery.selected]).toEqual([25]);
    expect(gallery.focusIndex).toBe(5);
    await vi.waitFor(() => expect(gallery.detail?.image.id).toBe(25));
  });

  test('library events are gathered, then drop removed images from the selection and the details', async () => {
    vi.useFakeTimers();
    fakeLibrary(fake, 30);
    gallery.ensureLoaded();
    await vi.advanceTimersByTimeAsync(0);
    gallery.click(0, 30);
    gallery.selected = new Set([30, 29, 28]);
    await vi.advanceTimersByTimeAsync(0);
    fake.emit('library', { added: [], changed: [], removed: [30] });
    fake.emit('library', { added: [], changed: [], removed: [28] });
    expect(gallery.selectedId).toBe(30);
    await vi.advanceTimersByTimeAsync(150);
    expect(gallery.selectedId).toBeNull();
    expect([...gallery.selected]).toEqual([29]);
  });

  /** A File whose size is `bytes` without holding them; reading it is recorded (and gives 4 bytes). */
  function sized(name: string, bytes: number, reads: string[]): File {
    const file = new File([new Uint8Array([137, 80, 78, 71])], name, { type: 'image/png' });
    Object.defineProperty(file, 'size', { value: bytes });
    file.arrayBuffer = async () => {
      reads.push(name);
      return new Uint8Array([137, 80, 78, 71]).buffer;
    };
    return file;
  }
  const MiB = 2 ** 20;

  test('import takes only pictures, and says what it did', async () => {
    fake.on('gallery.import', ({ files }) => ({
      imported: files.map((_, k) => 40 + k),
      duplicates: [],
      refused: [],
      jobs: [],
    }));
    const png = new File([new Uint8Array([137, 80, 78, 71])], 'fox.png', { type: 'image/png' });
    const text = new File(['hello'], 'notes.txt', { type: 'text/plain' });
    await gallery.importFiles([png]);
    expect(gallery.message).toBe('Imported 1 image.');
    expect(gallery.messageIsError).toBe(false);
    await gallery.importFiles([png, text]);
    expect(fake.calls('gallery.import')[1]?.files.map((f) => f.name)).toEqual(['fox.png']);
    expect(gallery.message).toBe('Imported 1 image. Not imported: notes.txt: not a PNG, JPEG or WebP picture.');
    expect(gallery.messageIsError).toBe(true);
    await gallery.importFiles([text]);
    expect(gallery.message).toBe(
      'Nothing imported: notes.txt: not a PNG, JPEG or WebP picture. Only PNG, JPEG and WebP pictures can be imported.',
    );
    expect(gallery.messageIsError).toBe(true);
  });

  test('a file over the limit is refused by name and limit before it is read; the rest of the drop is imported', async () => {
    fake.on('gallery.import', ({ files }) => ({
      imported: files.filter((f) => f.name !== 'fake.png').map((_, k) => 40 + k),
      duplicates: [],
      refused: files
        .filter((f) => f.name === 'fake.png')
        .map((f) => ({ name: f.name, error: `${f.name}: not a PNG, JPEG or WebP image` })),
      jobs: [],
    }));
    const reads: string[] = [];
    await gallery.importFiles([
      sized('fox.png', 1000, reads),
      sized('huge.png', 70 * MiB, reads),
      sized('empty.png', 0, reads),
      sized('fake.png', 10, reads),
    ]);
    expect(reads.sort()).toEqual(['fake.png', 'fox.png']);
    expect(fake.calls('gallery.import')[0]?.files.map((f) => f.name)).toEqual(['fox.png', 'fake.png']);
    expect(gallery.message).toBe(
      'Imported 1 image. Not imported: huge.png: 70.0 MiB, over the 64 MiB limit per file; empty.png: the file is empty; fake.png: not a PNG, JPEG or WebP image.',
    );
    expect(gallery.messageIsError).toBe(true);
  });

  test('a large drop goes in several calls that each fit web mode’s request limit', async () => {
    fake.on('gallery.import', ({ files }) => ({
      imported: files.map((_, k) => 40 + k),
      duplicates: [],
      refused: [],
      jobs: [],
    }));
    const reads: string[] = [];
    await gallery.importFiles(['a', 'b', 'c', 'd'].map((n) => sized(`${n}.png`, 60 * MiB, reads)));
    expect(fake.calls('gallery.import').map((c) => c.files.map((f) => f.name))).toEqual([
      ['a.png', 'b.png'],
      ['c.png', 'd.png'],
    ]);
    expect(gallery.message).toBe('Imported 4 images.');
  });

  test('a drop the service refuses whole, or a library that is gone, is said as the service says it', async () => {
    fake.on('gallery.import', () => {
      throw new StudioError(
        'invalid_argument',
        'a.png: not a PNG, JPEG or WebP image; b.png: the image data is damaged or cut short',
      );
    });
    const reads: string[] = [];
    await gallery.importFiles([sized('a.png', 10, reads), sized('b.png', 10, reads)]);
    expect(gallery.message).toBe(
      'Nothing imported: a.png: not a PNG, JPEG or WebP image; b.png: the image data is damaged or cut short.',
    );
    const gone =
      'the library folder /media/usb/library is gone (deleted, moved, or on a disk that was unplugged); put it back and try again, or choose another library folder (Settings, or --library)';
    fake.on('gallery.import', () => {
      throw new StudioError('library', gone);
    });
    await gallery.importFiles([sized('a.png', 10, reads), sized('big.png', 100 * MiB, reads)]);
    expect(gallery.message).toBe(
      `Import failed: ${gone}. Not imported: big.png: 100.0 MiB, over the 64 MiB limit per file.`,
    );
    expect(gallery.messageIsError).toBe(true);
    expect(gallery.importing).toBe(false);
  });
});
