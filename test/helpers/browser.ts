/**
 * The one way every browser test finds its browser (playwright-core driving a Chromium that is installed,
 * never downloaded). CHROMIUM_PATH points at it (default: Debian's /usr/bin/chromium).
 *
 * - No browser there: the tests skip, with one line saying how to enable them.
 * - CI=true: a missing browser is a failure, never a skip (CI installs Chromium, so a skip would hide it).
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type LaunchOptions } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** True when CI is set to anything but false/0 (CI=true, as CI services set it). */
export const inCi = !!process.env.CI && !['false', '0'].includes(process.env.CI.toLowerCase());

const missing = existsSync(CHROMIUM_PATH)
  ? undefined
  : `no browser at ${CHROMIUM_PATH}: to run the browser tests, apt-get install chromium or set CHROMIUM_PATH to a Chromium binary`;

/**
 * The `skip` option for a browser test: false when it should run, else the one-line reason. In CI a
 * missing browser does not skip: the test runs and `launchBrowser` fails with the reason.
 */
export const browserSkip: false | string = missing && !inCi ? missing : false;

/** Starts headless Chromium from CHROMIUM_PATH; throws (with how to fix it) when there is none. */
export async function launchBrowser(options: LaunchOptions = {}): Promise<Browser> {
  if (missing) throw new Error(`${missing} (CI=${process.env.CI}: a missing browser fails the run in CI)`);
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    ...options,
  });
}
