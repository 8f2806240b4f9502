// State of the Settings view: what settings.get answered (library folder, backend, threads, theme,
// and what the running engine uses), the library field being edited, and what the last change did
// or why it could not. The theme applies at once (lib/theme.ts); settings events from another window
// or the Models view keep it current, and a library that moved is announced to the views that show
// its images.

import type { Args, Backend, SettingsView, StudioApi, Theme } from '../../preload/contract.ts';
import type { FolderPicker } from './api.ts';
import { applyTheme } from './theme.ts';

type Api = Pick<StudioApi, 'settingsGet' | 'settingsUpdate' | 'onSettings'>;

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class SettingsState {
  view = $state.raw<SettingsView | null>(null);
  /** Why the settings could not be read. */
  loadError = $state<string | null>(null);
  /** What is being applied now (its control shows it and waits). */
  applying = $state<'library' | 'engine' | 'theme' | null>(null);
  /** What the last change did, or why it could not (shown in the view's live region). */
  message = $state<string | null>(null);
  messageIsError = $state(false);
  /** The library folder field (typed, or filled by the folder picker). */
  libraryField = $state('');

  /** The library field differs from the folder in use or saved. */
  libraryChanged = $derived(
    this.view !== null &&
      this.libraryField.trim() !== '' &&
      this.libraryField.trim() !== (this.view.library.saved ?? this.view.library.current),
  );

  #api: Api;
  #picker: FolderPicker | null;
  #libraryMoved: (() => void)[] = [];

  constructor(api: Api, picker: FolderPicker | null) {
    this.#api = api;
    this.#picker = picker;
    api.onSettings((view) => this.#set(view));
  }

  get canPick(): boolean {
    return this.#picker !== null;
  }

  /** Called when the library the service has open is another folder (the gallery and queue reload). */
  onLibraryMoved(listener: () => void): void {
    this.#libraryMoved.push(listener);
  }

  #set(view: SettingsView): void {
    const moved = this.view !== null && this.view.library.current !== view.library.current;
    const fieldFollows =
      this.view === null || this.libraryField === (this.view.library.saved ?? this.view.library.current);
    this.view = view;
    if (fieldFollows) this.libraryField = view.library.saved ?? view.library.current;
    applyTheme(view.theme);
    if (moved) for (const listener of this.#libraryMoved) listener();
  }

  load = async (): Promise<void> => {
    this.loadError = null;
    try {
      this.#set(await this.#api.settingsGet());
    } catch (err) {
      this.loadError = messageOf(err);
    }
  };

  async #update(what: 'library' | 'engine' | 'theme', patch: Args<'settings.update'>): Promise<boolean> {
    this.applying = what;
    this.message = null;
    try {
      const view = await this.#api.settingsUpdate(patch);
      this.#set(view);
      this.message = view.note ?? 'Saved.';
      this.messageIsError = false;
      return true;
    } catch (err) {
      this.message = messageOf(err);
      this.messageIsError = true;
      return false;
    } finally {
      this.applying = null;
    }
  }

  setTheme = (theme: Theme): void => {
    applyTheme(theme);
    void this.#update('theme', { theme }).then((ok) => {
      if (!ok && this.view) applyTheme(this.view.theme);
    });
  };

  setBackend = (backend: Backend): Promise<boolean> => this.#update('engine', { backend });

  setThreads = (threads: number): Promise<boolean> => this.#update('engine', { threads });

  applyLibrary = (): Promise<boolean> => this.#update('library', { libraryDir: this.libraryField.trim() });

  /** Desktop: fills the library field from the native folder dialog. */
  chooseLibrary = async (): Promise<void> => {
    if (!this.#picker) return;
    try {
      const dir = await this.#picker('Library folder', this.libraryField.trim() || undefined);
      if (dir) this.libraryField = dir;
    } catch (err) {
      this.message = messageOf(err);
      this.messageIsError = true;
    }
  };

  dismissMessage = (): void => {
    this.message = null;
  };
}
