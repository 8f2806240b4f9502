// The page's theme: light, dark or the system's (app.css: data-theme sets the color-scheme that its
// light-dark() palette follows; without it, the system's). The settings file holds the choice; a copy in localStorage lets
// public/theme.js apply it before the first paint of the next load.

import type { Theme } from '../../preload/contract.ts';

export const THEME_KEY = 'unclip-studio.theme';

export function applyTheme(theme: Theme): void {
  const root = document.documentElement;
  if (theme === 'system') delete root.dataset.theme;
  else root.dataset.theme = theme;
  try {
    localStorage.setItem(THEME_KEY, theme);
  } catch {
    // storage refused (private window): the theme still applies to this page
  }
}
