// State of the Models view: the installed packs (packs.list), which one the engine runs and which
// backend runs each of its networks (engine.info), each pack's last verification, the pack folder
// being imported, and what the last action did or why it could not. An engine event (another pack,
// backend or thread count) brings it up to date.

import type { EngineInfo, PacksView, PackVerifyView, StudioApi } from '../../preload/contract.ts';
import type { FolderPicker } from './api.ts';

type Api = Pick<StudioApi, 'packsList' | 'packsVerify' | 'packsImport' | 'packsUse' | 'engineInfo' | 'onEngine'>;

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class ModelsState {
  list = $state.raw<PacksView | null>(null);
  engine = $state.raw<EngineInfo | null>(null);
  /** Why the packs could not be listed. */
  loadError = $state<string | null>(null);
  loading = $state(false);
  /** The pack being verified, imported (its folder) or switched to. */
  verifying = $state<string | null>(null);
  importing = $state(false);
  switching = $state<string | null>(null);
  /** Each pack's last verification, by name (replaced whole). */
  verified = $state.raw<Record<string, PackVerifyView>>({});
  /** The pack folder field (typed, or filled by the folder picker). */
  importField = $state('');
  /** What the last action did, or why it could not. */
  message = $state<string | null>(null);
  messageIsError = $state(false);

  /** The pack the engine runs, from the list. */
  active = $derived(this.list?.packs.find((p) => p.active) ?? null);
  busy = $derived(this.importing || this.switching !== null);

  #api: Api;
  #picker: FolderPicker | null;

  constructor(api: Api, picker: FolderPicker | null) {
    this.#api = api;
    this.#picker = picker;
    api.onEngine((info) => {
      this.engine = info;
      void this.load();
    });
  }

  get canPick(): boolean {
    return this.#picker !== null;
  }

  load = async (): Promise<void> => {
    this.loading = true;
    this.loadError = null;
    try {
      this.list = await this.#api.packsList();
      this.engine = await this.#api.engineInfo().catch(() => null);
    } catch (err) {
      this.loadError = messageOf(err);
    } finally {
      this.loading = false;
    }
  };

  #say(message: string, isError = false): void {
    this.message = message;
    this.messageIsError = isError;
  }

  verify = async (name: string): Promise<void> => {
    this.verifying = name;
    this.message = null;
    try {
      const result = await this.#api.packsVerify({ name });
      this.verified = { ...this.verified, [name]: result };
      this.#say(`${name}: ${result.summary}.`, !result.ok);
    } catch (err) {
      this.#say(messageOf(err), true);
    } finally {
      this.verifying = null;
    }
  };

  importPack = async (): Promise<void> => {
    const dir = this.importField.trim();
    if (!dir) return;
    this.importing = true;
    this.message = null;
    try {
      const pack = await this.#api.packsImport({ dir });
      this.importField = '';
      this.#say(`Imported ${pack.title} (${pack.name}) into ${pack.dir}.`);
      await this.load();
    } catch (err) {
      this.#say(messageOf(err), true);
    } finally {
      this.importing = false;
    }
  };

  use = async (name: string): Promise<void> => {
    this.switching = name;
    this.message = null;
    try {
      const info = await this.#api.packsUse({ name });
      this.engine = info;
      this.#say(`The engine now runs ${info.pack.title}; the studio starts with it next time too.`);
      await this.load();
    } catch (err) {
      this.#say(messageOf(err), true);
    } finally {
      this.switching = null;
    }
  };

  /** Desktop: fills the pack folder field from the native folder dialog. */
  choose = async (): Promise<void> => {
    if (!this.#picker) return;
    try {
      const dir = await this.#picker('Pack folder to import', this.importField.trim() || undefined);
      if (dir) this.importField = dir;
    } catch (err) {
      this.#say(messageOf(err), true);
    }
  };

  dismissMessage = (): void => {
    this.message = null;
  };
}
