// The studio's keyboard shortcuts, listed once: App.svelte's window handler acts on the global ones
// and the help overlay (ShortcutsDialog, opened with ? or from the Gallery's sidebar) shows all of
// them, so the two cannot drift.

export interface Shortcut {
  /** Keys pressed together, as shown in <kbd>s ("Ctrl" reads "⌘" on a Mac). */
  keys: string[];
  does: string;
}

export interface ShortcutGroup {
  where: string;
  shortcuts: Shortcut[];
}

/** The views the header's tabs switch between, in tab order (Alt+1 is the first). */
export const SHORTCUT_GROUPS: ShortcutGroup[] = [
  {
    where: 'Anywhere',
    shortcuts: [
      { keys: ['?'], does: 'Show these shortcuts' },
      { keys: ['Alt', '1…9'], does: 'Go to the first, second, … view (Create, Gallery, Editor, …)' },
      { keys: ['Esc'], does: 'Close a dialog or the image details' },
    ],
  },
  {
    where: 'Create',
    shortcuts: [
      { keys: ['Ctrl', 'Enter'], does: 'Generate (queues another job each time)' },
      { keys: ['Esc'], does: 'Cancel the running job' },
    ],
  },
  {
    where: 'Gallery',
    shortcuts: [
      { keys: ['/'], does: 'Search' },
      { keys: ['←↑→↓'], does: 'Move between images' },
      { keys: ['Page Up'], does: 'Up a screen' },
      { keys: ['Page Down'], does: 'Down a screen' },
      { keys: ['Home'], does: 'First image' },
      { keys: ['End'], does: 'Last image' },
      { keys: ['Enter'], does: 'Open the image details' },
      { keys: ['Space'], does: 'Select or deselect' },
      { keys: ['Shift', '←↑→↓'], does: 'Extend the selection' },
      { keys: ['Shift', 'click'], does: 'Select a range' },
      { keys: ['Ctrl', 'click'], does: 'Add one to the selection' },
      { keys: ['Ctrl', 'A'], does: 'Select every image shown' },
      { keys: ['S'], does: 'Star or unstar' },
      { keys: ['Delete'], does: 'Move to the trash (restore, in the trash)' },
      { keys: ['Esc'], does: 'Close the details, else clear the selection' },
    ],
  },
];

/** Whether the help overlay is open (App shows it; ? and the Gallery's sidebar open it). */
class ShortcutsHelp {
  open = $state(false);
  show = (): void => {
    this.open = true;
  };
}
export const shortcutsHelp = new ShortcutsHelp();

/** True on macOS, where the studio's "Ctrl" shortcuts are ⌘. */
export const isMac = (): boolean => /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);

export const keyLabel = (key: string, mac = isMac()): string => (mac && key === 'Ctrl' ? '⌘' : key);

/** The event's target takes typed text (a shortcut made of a plain key must leave it alone). */
export function typingInto(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement)
    return true;
  return (
    target instanceof HTMLInputElement &&
    !['checkbox', 'radio', 'button', 'submit', 'reset', 'range', 'color', 'file'].includes(target.type)
  );
}

/** Alt+1…9 (not AltGr, which some layouts need for typing): the index of the view it goes to, else null. */
export function viewKey(event: KeyboardEvent): number | null {
  if (!event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return null;
  const m = /^Digit([1-9])$/.exec(event.code);
  return m ? Number(m[1]) - 1 : null;
}
