/**
 * The one way every browser test finds its browser (playwright-core driving a Chromium that is installed,
 * never downloaded). CHROMIUM_PATH points at it (default: Debian's /usr/bin/chromium).
 *
 * - No browser there: the tests skip, with one line saying how to enable them.
 * - CI=true: a missing browser is a failure, never a skip (CI installs Chromium, so a skip would hide it).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type LaunchOptions, type Page } from 'playwright-core';
import { buildServer } from '../../src/serve/server.ts';
import { ensureWebBuild } from '../../src/serve/web-build.ts';
import { fixtureModelDir } from './fixture-model.ts';

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

/** The real server on a loopback port with the built page and the fixture model; close `app` when done. */
export async function servePage(): Promise<{ app: FastifyInstance; url: string; modelDir: string }> {
  const [web, modelDir] = await Promise.all([ensureWebBuild(), fixtureModelDir()]);
  const app = await buildServer({ modelDir, webDir: web.dir });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/`, modelDir };
}

/**
 * Opens the page on the wasm backend and waits until it says it is ready; fails with the page's own error
 * (its #fatal text) and what `errors` collected (page errors, console errors, off-server requests).
 */
export async function loadPage(page: Page, url: string, errors: string[]): Promise<void> {
  await page.goto(`${url}?backend=wasm`);
  await page.waitForFunction(() => document.body.dataset.ready !== 'false', null, { timeout: 60_000 });
  assert.equal(
    await page.evaluate(() => document.body.dataset.ready),
    'true',
    `page failed: ${await page.locator('#fatal').textContent()} ${errors.join('; ')}`,
  );
}

/** A point on the drawing pad, as fractions of its width and height. */
export type PadPoint = [number, number];

/** A "7" as strokes through the pad: the bar, then the downstroke. */
export const SEVEN: PadPoint[] = [
  [0.25, 0.2],
  [0.75, 0.2],
  [0.62, 0.45],
  [0.45, 0.85],
];

/** Drags the mouse through `points` on the page's drawing pad (#pad). */
export async function stroke(page: Page, points: PadPoint[]): Promise<void> {
  await page.locator('#pad').scrollIntoViewIfNeeded(); // mouse coordinates are the viewport's
  const box = (await page.locator('#pad').boundingBox())!;
  const at = ([x, y]: PadPoint) => [box.x + x * box.width, box.y + y * box.height] as const;
  await page.mouse.move(...at(points[0]));
  await page.mouse.down();
  for (const p of points.slice(1)) await page.mouse.move(...at(p), { steps: 6 });
  await page.mouse.up();
}
