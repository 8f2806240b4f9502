// The desktop's "Choose…" buttons (library folder, pack folder to import): Electron's native folder
// dialog, opened by main for the studio's own page only. Kept free of Electron imports (the dialog
// and the window lookup are passed in), so it can be unit-tested; ipc.ts wires the real ones.

import { chooseFolderArgsSchema, errorInfo, StudioError, type Reply } from '../../preload/contract.ts';
import type { InvokeEventLike } from './ipc-handler.ts';
import { isTrustedSender } from './origins.ts';

/** The part of Electron's dialog module the picker uses. */
export interface FolderDialog<W> {
  showOpenDialog(
    window: W,
    options: { title: string; defaultPath?: string; properties: ('openDirectory' | 'createDirectory')[] },
  ): Promise<{ canceled: boolean; filePaths: string[] }>;
}

export function createFolderPickerHandler<E extends InvokeEventLike, W>(
  dialog: FolderDialog<W>,
  windowOf: (event: E) => W,
  dev: string | null,
): (event: E, raw: unknown) => Promise<Reply<{ path: string | null }>> {
  return async (event, raw) => {
    if (!isTrustedSender(event.senderFrame, dev)) {
      return { ok: false, error: { code: 'unauthorized', message: 'chooseFolder: sender is not the studio' } };
    }
    const args = chooseFolderArgsSchema.safeParse(raw ?? {});
    if (!args.success) {
      const issue = args.error.issues[0];
      const where = issue?.path.length ? `${issue.path.map(String).join('.')}: ` : '';
      return { ok: false, error: { code: 'invalid_argument', message: `chooseFolder: ${where}${issue?.message}` } };
    }
    try {
      const { title, defaultPath } = args.data;
      const result = await dialog.showOpenDialog(windowOf(event), {
        title,
        ...(defaultPath ? { defaultPath } : {}),
        properties: ['openDirectory', 'createDirectory'],
      });
      const path = result.canceled ? null : (result.filePaths[0] ?? null);
      return { ok: true, value: { path } };
    } catch (err) {
      return { ok: false, error: errorInfo(new StudioError('internal', `chooseFolder: ${errorInfo(err).message}`)) };
    }
  };
}
