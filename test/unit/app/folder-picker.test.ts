// The desktop's native folder picker, with Electron's dialog replaced by a recording fake: only the
// studio's own page may open it, its argument is validated first, and a cancelled dialog is null.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createFolderPickerHandler, type FolderDialog } from '../../../main/app/folder-picker.ts';
import { APP_ENTRY_URL } from '../../../main/app/origins.ts';

type Window = { id: number };
type Call = { window: Window; options: Parameters<FolderDialog<Window>['showOpenDialog']>[1] };

function fakeDialog(answer: { canceled: boolean; filePaths: string[] } | Error) {
  const calls: Call[] = [];
  const dialog: FolderDialog<Window> = {
    async showOpenDialog(window, options) {
      calls.push({ window, options });
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
  return { dialog, calls };
}

const studio = { senderFrame: { url: APP_ENTRY_URL, parent: null } };
const windowOf = () => ({ id: 7 });

describe('desktop folder picker', () => {
  it('opens a folder dialog on the sender window and answers the chosen folder', async () => {
    const { dialog, calls } = fakeDialog({ canceled: false, filePaths: ['/home/me/packs/emoji'] });
    const pick = createFolderPickerHandler(dialog, windowOf, null);
    const reply = await pick(studio, { title: 'Pack folder to import', defaultPath: '/home/me' });
    assert.deepEqual(reply, { ok: true, value: { path: '/home/me/packs/emoji' } });
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0], {
      window: { id: 7 },
      options: {
        title: 'Pack folder to import',
        defaultPath: '/home/me',
        properties: ['openDirectory', 'createDirectory'],
      },
    });
  });

  it('answers null when the dialog is cancelled', async () => {
    const { dialog } = fakeDialog({ canceled: true, filePaths: [] });
    const reply = await createFolderPickerHandler(dialog, windowOf, null)(studio, { title: 'Library folder' });
    assert.deepEqual(reply, { ok: true, value: { path: null } });
  });

  it('refuses other senders and bad arguments without opening a dialog', async () => {
    const { dialog, calls } = fakeDialog({ canceled: false, filePaths: ['/x'] });
    const pick = createFolderPickerHandler(dialog, windowOf, null);
    const foreign = await pick({ senderFrame: { url: 'https://example.com/', parent: null } }, { title: 'x' });
    assert.ok(!foreign.ok && foreign.error.code === 'unauthorized');
    const sub = await pick({ senderFrame: { url: APP_ENTRY_URL, parent: {} } }, { title: 'x' });
    assert.ok(!sub.ok && sub.error.code === 'unauthorized');
    for (const raw of [{}, { title: '' }, { title: 'x', properties: ['openFile'] }, { title: 'x', defaultPath: 5 }]) {
      const reply = await pick(studio, raw);
      assert.ok(!reply.ok, JSON.stringify(raw));
      assert.equal(reply.error.code, 'invalid_argument');
      assert.match(reply.error.message, /^chooseFolder: /);
    }
    assert.equal(calls.length, 0);
  });

  it('turns a dialog failure into a one-line error', async () => {
    const { dialog } = fakeDialog(new Error('no display\nstack'));
    const reply = await createFolderPickerHandler(dialog, windowOf, null)(studio, { title: 'Library folder' });
    assert.deepEqual(reply, { ok: false, error: { code: 'internal', message: 'chooseFolder: no display' } });
  });
});
