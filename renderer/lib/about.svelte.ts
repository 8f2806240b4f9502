// State of the About box: what the `about` operation answered (app, pack, attribution and licence
// texts), or why it could not answer. Loaded each time the box opens, so it names the pack the
// engine runs now.

import type { AboutDocument, AboutView, StudioApi } from '../../preload/contract.ts';

export class AboutState {
  view = $state.raw<AboutView | null>(null);
  error = $state<string | null>(null);

  packDocuments = $derived<AboutDocument[]>(this.view?.documents.filter((d) => d.source === 'pack') ?? []);
  appDocuments = $derived<AboutDocument[]>(this.view?.documents.filter((d) => d.source === 'app') ?? []);

  #api: Pick<StudioApi, 'about'>;

  constructor(api: Pick<StudioApi, 'about'>) {
    this.#api = api;
  }

  load = async (): Promise<void> => {
    this.error = null;
    try {
      this.view = await this.#api.about();
    } catch (err) {
      this.error = err instanceof Error ? err.message : String(err);
    }
  };
}
