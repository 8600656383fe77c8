import { type ExecFileSyncOptions, execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { CHROMIUM } from '../console/browser.js';

/** Debian's Mosquitto, which the external-broker and cluster tests start. */
export const MOSQUITTO = '/usr/sbin/mosquitto';

/** What some tests drive that npm cannot bring, and the Debian packages that do. */
const PROGRAMS = [
  {
    path: MOSQUITTO,
    packages: ['mosquitto', 'mosquitto-clients'],
    for: 'the external-broker and cluster tests',
  },
  { path: CHROMIUM, packages: ['chromium'], for: "the console's browser tests" },
];

const missing = () => PROGRAMS.filter(({ path }) => !existsSync(path));

/**
 * Vitest global setup, first: Mosquitto and Debian's chromium, installed when missing and this
 * process may install them (root with apt-get, as `.ci/run` does); else the run stops at once with
 * one line naming what to install.
 */
export default function setup(): void {
  const packages = missing().flatMap((program) => program.packages);
  if (packages.length === 0) return;
  if (process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
    const options: ExecFileSyncOptions = {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    };
    try {
      execFileSync('apt-get', ['update', '-qq'], options);
      execFileSync('apt-get', ['install', '-y', '-qq', ...packages], options);
    } catch {
      // Said below, if it is still missing.
    }
    // The package's own service would hold port 1883: the tests start their own Mosquitto.
    spawnSync('sh', ['-c', 'systemctl stop mosquitto || service mosquitto stop'], { stdio: 'ignore' });
  }
  const still = missing();
  if (still.length > 0) {
    process.stderr.write(
      `npm test needs ${still.map((program) => `${program.path} (${program.for})`).join(' and ')}: ` +
        `apt-get install -y ${still.flatMap((program) => program.packages).join(' ')}\n`,
    );
    process.exit(1);
  }
}
