import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CHROMIUM } from './browser.js';

const CONSOLE_SOURCES = 'console';
const BUILT_INDEX = 'dist/console/index.html';

/** The newest modification time of the files under `dir`. */
function newest(dir: string): number {
  return Math.max(
    ...readdirSync(dir, { withFileTypes: true, recursive: true })
      .filter((entry) => entry.isFile())
      .map((entry) => statSync(join(entry.parentPath, entry.name)).mtimeMs),
  );
}

/**
 * Before any test file: the web console is built (again if its sources changed since), as the
 * service serves it from dist/console; and Debian's chromium, which the browser tests drive, is
 * installed when it is missing and this process may install it (root with apt-get, as `.ci/run`).
 */
export default function setup(): void {
  if (!existsSync(BUILT_INDEX) || statSync(BUILT_INDEX).mtimeMs < newest(CONSOLE_SOURCES)) {
    execFileSync('npx', ['vite', 'build', '--config', 'console/vite.config.ts'], { stdio: 'inherit' });
  }
  if (!existsSync(CHROMIUM) && process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    try {
      execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
      execFileSync('apt-get', ['install', '-y', '-qq', 'chromium'], { stdio: 'inherit', env });
    } catch {
      // The browser tests say what is missing; the other tests need no browser.
    }
  }
}
