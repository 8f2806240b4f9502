// The prompt's CLIP token count while it is typed (prompt.tokens, asked at most every DELAY_MS), so
// Create says before a run that the end of a long prompt will not be used.

import type { PromptTokensView, StudioApi } from '../../preload/contract.ts';

const DELAY_MS = 250;

export class PromptTokensState {
  /** The count for `prompt` (null until the first answer, or when the engine could not answer). */
  view = $state.raw<PromptTokensView | null>(null);
  /** The prompt `view` counts. */
  prompt = $state('');
  #api: StudioApi;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #asked = 0;

  constructor(api: StudioApi) {
    this.#api = api;
  }

  /** Counts `prompt` after a pause in typing; answers that arrive late for an older prompt are dropped. */
  check = (prompt: string): void => {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    // An empty prompt takes no tokens: nothing to ask.
    if (!prompt.trim()) {
      this.#asked++;
      this.view = null;
      this.prompt = prompt;
      return;
    }
    this.#timer = setTimeout(() => void this.#ask(prompt), DELAY_MS);
  };

  async #ask(prompt: string): Promise<void> {
    const asked = ++this.#asked;
    try {
      const view = await this.#api.promptTokens({ prompt });
      if (asked !== this.#asked) return;
      this.view = view;
      this.prompt = prompt;
    } catch {
      // No count (engine still loading or gone): the header says why; the run itself still reports a cut.
      if (asked === this.#asked) this.view = null;
    }
  }
}
