// What the E2E files share: Debian's Chromium (skipped with a reason when missing) and the optional
// screenshots of a view (STUDIO_SCREENSHOTS=DIR keeps them: NAME-1280-light.png, NAME-800-dark.png, …).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install -y chromium)`;

/** With STUDIO_SCREENSHOTS: the view at 1280×800 and 800×600, light and dark; then the page as it was. */
export async function shots(page: Page, name: string, settleMs = 0): Promise<void> {
  const dir = process.env.STUDIO_SCREENSHOTS;
  if (!dir) return;
  const viewport = page.viewportSize();
  for (const [width, height] of [
    [1280, 800],
    [800, 600],
  ] as const) {
    await page.setViewportSize({ width, height });
    for (const colorScheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme });
      await page.waitForTimeout(150);
      await page.screenshot({ path: join(dir, `${name}-${width}-${colorScheme}.png`) });
    }
  }
  await page.emulateMedia({ colorScheme: null });
  if (viewport) await page.setViewportSize(viewport);
  if (settleMs) await page.waitForTimeout(settleMs);
}
