import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

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
 * service serves it from dist/console (chromium: test/setup/system-programs.ts).
 */
export default function setup(): void {
  if (!existsSync(BUILT_INDEX) || statSync(BUILT_INDEX).mtimeMs < newest(CONSOLE_SOURCES)) {
    execFileSync('npx', ['vite', 'build', '--config', 'console/vite.config.ts'], { stdio: 'inherit' });
  }
}
