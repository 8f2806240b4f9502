// Applies the saved theme before the first paint (renderer/lib/theme.ts keeps this copy of the
// Settings view's choice). A classic script, loaded from index.html's <head> (the CSP allows only
// scripts from the studio itself, none inline).
try {
  const theme = localStorage.getItem('unclip-studio.theme');
  if (theme === 'light' || theme === 'dark') document.documentElement.dataset.theme = theme;
} catch {
  // no storage: the system's theme until the settings arrive
}
