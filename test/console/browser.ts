import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

/** Debian's chromium: `.ci/run` installs it, and so does `npm test` when it runs as root. */
export const CHROMIUM = '/usr/bin/chromium';
/** Screenshots of the test run (git-ignored), to look at. */
export const SCREENSHOTS = 'test-artifacts/console';

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

const ARGS = [
  '--no-sandbox',
  '--headless',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Browser {
  context: BrowserContext;
  /** Every URL the pages asked for, to check that nothing comes from another host. */
  requested: string[];
  newPage(viewport?: { width: number; height: number }): Promise<Page>;
  screenshot(page: Page, name: string): Promise<void>;
  close(): Promise<void>;
}

/** Chromium on a new, empty profile. */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `The browser tests need Debian's chromium at ${CHROMIUM}: install it with \`apt-get install chromium\` (npm test does so itself when run as root with apt-get; .ci/run does too)`,
    );
  }
  const profile = mkdtempSync(join(tmpdir(), 'fleetjobs-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: ARGS,
    headless: true,
    viewport: DESKTOP,
  });
  const requested: string[] = [];
  context.on('request', (request) => requested.push(request.url()));
  mkdirSync(SCREENSHOTS, { recursive: true });
  return {
    context,
    requested,
    async newPage(viewport = DESKTOP) {
      const page = await context.newPage();
      await page.setViewportSize(viewport);
      page.on('dialog', (dialog) => dialog.accept());
      return page;
    },
    async screenshot(page, name) {
      await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
