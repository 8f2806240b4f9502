// ImageDetail and VirtualGrid: the Gallery's detail panel and its virtualised grid.
import { fireEvent, render, screen, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, test, vi } from 'vitest';
import ImageDetail from '../../renderer/components/ImageDetail.svelte';
import VirtualGrid from '../../renderer/components/VirtualGrid.svelte';
import { GalleryState } from '../../renderer/lib/gallery.svelte.ts';
import { detail, FakeStudio, image } from './fake-api.ts';
import { fakeLibrary } from './library.ts';

let fake: FakeStudio;
let gallery: GalleryState;

beforeEach(() => {
  fake = new FakeStudio();
  fake.on('boards.list', []);
  gallery = new GalleryState(fake.api);
});

describe('ImageDetail', () => {
  // 5 is a variation of 3, a text-diff frame of 1; 8 is a variation of 5. `op`: how each was made.
  const rows = new Map(
    [
      image({ id: 1, prompt: 'a fox' }),
      image({ id: 3, kind: 'textdiff', prompt: 'a fox at night', seed: 77 }),
      image({ id: 5, kind: 'variation', prompt: 'a fox at night', seed: 4242, settings: { stepsDecoder: 25, eta: 1 } }),
      image({ id: 8, kind: 'variation', prompt: 'a fox at night' }),
    ].map((r) => [r.id, r]),
  );
  const edges: Record<number, { parents: number[]; children: number[]; op: string }> = {
    1: { parents: [], children: [3], op: 'generate' },
    3: { parents: [1], children: [5], op: 'textdiff' },
    5: { parents: [3], children: [8], op: 'vary' },
    8: { parents: [5], children: [], op: 'vary' },
  };

  beforeEach(() => {
    fake.on('gallery.get', ({ id }) =>
      detail(rows.get(id)!, {
        parents: edges[id]!.parents.map((p) => ({ id: p, role: 'source', op: edges[id]!.op, params: {} })),
        children: edges[id]!.children.map((c) => ({ id: c, role: 'source', op: edges[c]!.op, params: {} })),
      }),
    );
  });

  async function shown(id: number, onusesettings = vi.fn()) {
    gallery.open(id);
    render(ImageDetail, { gallery, onusesettings });
    await screen.findByTestId('detail-prompt');
    return onusesettings;
  }

  test('shows the image with its prompt, seed, kind and lineage', async () => {
    await shown(5);
    expect(screen.getByRole('heading', { name: 'Image 5' })).toBeVisible();
    expect(screen.getByRole('img', { name: 'a fox at night' })).toHaveAttribute(
      'src',
      expect.stringMatching(/\/media\/image\/5/),
    );
    expect(screen.getByTestId('detail-seed')).toHaveTextContent('4242');
    expect(screen.getByText('Variation')).toBeVisible();
    const parents = screen.getByRole('list', { name: 'Parents' });
    expect(within(parents).getByRole('button', { name: 'Image 3 (vary)' })).toBeVisible();
    expect(
      within(screen.getByRole('list', { name: 'Children' })).getByRole('button', { name: 'Image 8 (vary)' }),
    ).toBeVisible();
  });

  test('a click on a parent walks to it, and on to its parent; the heading follows', async () => {
    const user = userEvent.setup();
    await shown(5);
    await user.click(screen.getByRole('button', { name: 'Image 3 (vary)' }));
    expect(await screen.findByRole('heading', { name: 'Image 3' })).toBeVisible();
    expect(await screen.findByTestId('detail-seed')).toHaveTextContent('77');
    await user.click(await screen.findByRole('button', { name: 'Image 1 (textdiff)' }));
    expect(await screen.findByText('A root: made from a prompt, not from another image.')).toBeVisible();
    expect(fake.calls('gallery.get').map((a) => a.id)).toEqual([5, 3, 1]);
    // And back down through a child.
    await user.click(screen.getByRole('button', { name: 'Image 3 (textdiff)' }));
    expect(await screen.findByRole('heading', { name: 'Image 3' })).toBeVisible();
  });

  test('Copy prompt puts the prompt on the clipboard and says so; a refused clipboard says what to do', async () => {
    const user = userEvent.setup();
    await shown(5);
    const write = vi.spyOn(navigator.clipboard, 'writeText');
    await user.click(screen.getByRole('button', { name: 'Copy prompt' }));
    expect(write).toHaveBeenCalledWith('a fox at night');
    expect(await screen.findByRole('status')).toHaveTextContent('Prompt copied.');
    write.mockRejectedValueOnce(new Error('denied'));
    await user.click(screen.getByRole('button', { name: 'Copy prompt' }));
    expect(await screen.findByText('Could not reach the clipboard: select the prompt and copy it.')).toBeVisible();
  });

  test('Use these settings hands the image’s id on; Star and Trash call the library', async () => {
    const user = userEvent.setup();
    fake.on('gallery.star', { changed: 1 });
    fake.on('gallery.trash', { changed: 1 });
    const onusesettings = await shown(5);
    await user.click(screen.getByRole('button', { name: 'Use these settings' }));
    expect(onusesettings).toHaveBeenCalledWith(5);
    await user.click(screen.getByRole('button', { name: 'Star' }));
    expect(fake.calls('gallery.star')).toEqual([{ ids: [5], starred: true }]);
    await user.click(screen.getByRole('button', { name: 'Trash' }));
    expect(fake.calls('gallery.trash')).toEqual([{ ids: [5] }]);
  });

  test('an image that cannot be read says why', async () => {
    fake.on('gallery.get', () => {
      throw new Error('image 404 not found');
    });
    gallery.open(404);
    render(ImageDetail, { gallery, onusesettings: vi.fn() });
    expect(await screen.findByRole('alert')).toHaveTextContent('Could not open image 404: image 404 not found');
  });
});

describe('VirtualGrid', () => {
  const WIDTH = 800;
  const HEIGHT = 600;

  beforeEach(() => {
    // happy-dom lays nothing out: give the grid's scroller the size of a window.
    const size = (value: number) =>
      function (this: HTMLElement): number {
        return this.dataset.testid === 'gallery-scroller' ? value : 0;
      };
    vi.spyOn(HTMLElement.prototype, 'clientWidth', 'get').mockImplementation(size(WIDTH));
    vi.spyOn(HTMLElement.prototype, 'clientHeight', 'get').mockImplementation(size(HEIGHT));
  });

  async function grid(count: number) {
    const lib = fakeLibrary(fake, count);
    gallery.ensureLoaded();
    render(VirtualGrid, { gallery });
    await screen.findByRole('button', { name: `Open image ${count}: ${lib.row(count).prompt}` });
    return lib;
  }

  const tiles = (): HTMLElement[] =>
    within(screen.getByRole('list', { name: 'Gallery images' })).getAllByRole('listitem');

  test('of 100,000 images only the rows on screen (and a few more) are in the page', async () => {
    await grid(100_000);
    const list = screen.getByRole('list', { name: 'Gallery images' });
    const cols = Number(list.dataset.cols);
    const rowHeight = Number(list.dataset.rowHeight);
    expect(cols).toBe(5);
    expect(list.dataset.total).toBe('100000');
    // The list is as tall as all the rows, so the scrollbar is the library's.
    expect(list.style.height).toBe(`${Math.ceil(100_000 / cols) * rowHeight}px`);
    // The window's rows: the screen's, one partly shown and two either side (below, at the top).
    expect(tiles().length).toBe(cols * (Math.ceil(HEIGHT / rowHeight) + 1 + 2 * 2));
    expect(tiles()[0]).toHaveAttribute('aria-posinset', '1');
    expect(tiles()[0]).toHaveAttribute('aria-setsize', '100000');
  });

  test('scrolling far down shows that window’s images, read without walking every page', async () => {
    await grid(100_000);
    const scroller = screen.getByTestId('gallery-scroller');
    const rowHeight = Number(screen.getByRole('list', { name: 'Gallery images' }).dataset.rowHeight);
    scroller.scrollTop = 12_000 * rowHeight;
    await fireEvent.scroll(scroller);
    // Row 12,000 of 5 columns: index 60,000, the 40,000th image from the newest.
    expect(await screen.findByRole('button', { name: /^Open image 40000: / }, { timeout: 3000 })).toBeVisible();
    const shown = tiles().map((t) => Number(t.dataset.index));
    expect(Math.min(...shown)).toBeGreaterThan(59_980);
    expect(Math.max(...shown)).toBeLessThan(60_060);
    expect(tiles().length).toBeLessThan(60);
    expect(fake.calls('gallery.list').length).toBeLessThan(10);
  });

  test('tiles reused row by row while scrolling show their own image, in order, and a star follows the image', async () => {
    await grid(1_000);
    const scroller = screen.getByTestId('gallery-scroller');
    const list = screen.getByRole('list', { name: 'Gallery images' });
    const rowHeight = Number(list.dataset.rowHeight);
    const cols = Number(list.dataset.cols);
    const before = tiles();
    // Scrolled row by row (each step a row's tiles move from the top of the window to its bottom).
    for (let row = 1; row <= 9; row++) {
      scroller.scrollTop = row * rowHeight;
      await fireEvent.scroll(scroller);
      await new Promise((r) => requestAnimationFrame(r));
    }
    await screen.findByRole('button', { name: /^Open image 950: / });
    const after = tiles();
    // The same elements (reused, not rebuilt), each showing its own index's image, in index order.
    expect(after.length).toBe(before.length);
    expect(after.filter((t) => before.includes(t)).length).toBe(after.length);
    const indexes = after.map((t) => Number(t.dataset.index));
    expect(indexes).toEqual(indexes.map((_, k) => indexes[0]! + k));
    expect(indexes[0]).toBe((9 - 2) * cols);
    for (const t of after) {
      const id = 1_000 - Number(t.dataset.index);
      expect(within(t).getByRole('button', { name: new RegExp(`^Open image ${id}: `) })).toBeInTheDocument();
      expect(t.querySelector('img')!.getAttribute('src')).toMatch(new RegExp(`/${id}(\\D|$)`));
    }
    await userEvent.setup().click(within(after[3]!).getByRole('button', { name: /^Star image / }));
    expect(fake.calls('gallery.star')).toEqual([{ ids: [1_000 - Number(after[3]!.dataset.index)], starred: true }]);
  });

  test('a click opens and selects a tile; its star and trash buttons act on that image', async () => {
    const user = userEvent.setup();
    await grid(30);
    await user.click(screen.getByRole('button', { name: /^Open image 29: / }));
    expect(gallery.selectedId).toBe(29);
    expect(screen.getByRole('button', { name: /^Open image 29: .*\(selected\)$/ })).toHaveAttribute(
      'aria-current',
      'true',
    );
    await user.click(screen.getByRole('button', { name: 'Star image 28' }));
    expect(fake.calls('gallery.star')).toEqual([{ ids: [28], starred: true }]);
    await user.click(screen.getByRole('button', { name: 'Move image 27 to the trash' }));
    expect(fake.calls('gallery.trash')).toEqual([{ ids: [27] }]);
  });

  test('arrow keys move the focus between tiles; Shift+arrows select a range; Ctrl+A selects what is loaded', async () => {
    const user = userEvent.setup();
    await grid(30);
    const first = screen.getByRole('button', { name: /^Open image 30: / });
    first.focus();
    await user.keyboard('{ArrowRight}');
    expect(document.activeElement).toBe(screen.getByRole('button', { name: /^Open image 29: / }));
    await user.keyboard('{ArrowDown}');
    expect(document.activeElement).toBe(screen.getByRole('button', { name: /^Open image 24: / }));
    await user.keyboard('{Shift>}{ArrowLeft}{ArrowLeft}{/Shift}');
    expect([...gallery.selected].sort()).toEqual([24, 25, 26]);
    await user.keyboard('{Control>}a{/Control}');
    expect(gallery.selected.size).toBe(30);
  });
});
