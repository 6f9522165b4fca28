/**
 * The page with a colour model, in a real browser (Debian's chromium through playwright-core): a small
 * RGB network trained on generated CIFAR-10-format data (coloured bars, test/helpers/colour-model.ts) and
 * served by the real server. The page must take pictures only (no drawing pad), resize them to 32x32 as
 * the data set's images are, show the RGB input, classify it as the library does, and still draw the
 * feature maps, the cell view, saliency, the confusion grid (with CIFAR-10's class names) and the map.
 * Leaves test-artifacts/explorer-rgb*.png.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import * as tf from '@tensorflow/tfjs';
import type { Browser, Page } from 'playwright-core';
import { browserSkip, launchBrowser, loadPage } from '../helpers/browser.ts';
import { pngOf, trainColourModel } from '../helpers/colour-model.ts';
import { useBackend } from '../../src/backend.ts';
import { disposeParams, predictProbabilities, type Params } from '../../src/model/cnn.ts';
import type { NetworkConfig } from '../../src/model/config.ts';
import { CIFAR_CLASSES } from '../../src/data/cifar.ts';
import { buildServer } from '../../src/serve/server.ts';
import { ensureWebBuild } from '../../src/serve/web-build.ts';

const skip = browserSkip;
const artifacts = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

let root: string;
let app: FastifyInstance;
let browser: Browser;
let url: string;
let net: NetworkConfig;
let params: Params;
/** A few of the generated test images: 32x32x3 in [0,1]. */
let pictures: Float32Array[];

before(async () => {
  if (skip) return;
  await useBackend('wasm');
  root = await mkdtemp(join(tmpdir(), 'convlab-rgb-page-'));
  const model = await trainColourModel(root);
  ({ net, params, pictures } = model);
  console.log(`# rgb model: test accuracy ${model.accuracy} on ${model.testCount} generated images`);

  const web = await ensureWebBuild();
  app = await buildServer({ modelDir: model.modelDir, webDir: web.dir });
  await app.listen({ port: 0, host: '127.0.0.1' });
  url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/`;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await app?.close();
  if (params) disposeParams(params);
  if (root) await rm(root, { recursive: true, force: true });
});

/** The library's answer for the same 32x32 input. */
function libraryPrediction(pixels: Float32Array): { class: number; p: number } {
  const probs = tf.tidy(() => predictProbabilities(net, params, tf.tensor4d(pixels, [1, 32, 32, 3])));
  const p = probs.dataSync() as Float32Array;
  probs.dispose();
  let best = 0;
  for (let k = 1; k < p.length; k++) if (p[k] > p[best]) best = k;
  return { class: best, p: p[best] };
}

async function open(options: Parameters<Browser['newPage']>[0] = {}): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1360, height: 1000 }, ...options });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  await loadPage(page, url, errors);
  return { page, errors };
}

const attr = (page: Page, selector: string, name: string) => page.locator(selector).getAttribute(name);

/** The #seen canvas (what the network saw) as RGB values in [0,1]. */
async function seenRgb(page: Page): Promise<{ width: number; height: number; rgb: number[] }> {
  return page.evaluate(() => {
    const c = document.getElementById('seen') as HTMLCanvasElement;
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    const rgb: number[] = [];
    for (let i = 0; i < c.width * c.height; i++) rgb.push(d[4 * i] / 255, d[4 * i + 1] / 255, d[4 * i + 2] / 255);
    return { width: c.width, height: c.height, rgb };
  });
}

test('a colour model: pictures only, resized to 32x32 as the data set, the RGB input shown and classified as the library does', { skip }, async () => {
  const { page, errors } = await open();
  assert.equal(await attr(page, 'body', 'data-input'), 'rgb');
  assert.equal(await page.locator('#pad').isVisible(), false, 'no drawing pad for a colour model');
  assert.ok(await page.locator('#rgb-note').isVisible(), 'the page says it takes pictures');
  assert.equal(await page.locator('#draw-title').textContent(), 'Your picture');
  assert.ok(await page.locator('#compare').isDisabled(), "the server's /api/predict reads digits only: no comparing");
  assert.ok(await page.locator('#train-start').isDisabled(), 'in-page training uses MNIST: off for a colour model');

  for (const [k, scale] of [
    [0, 3],
    [1, 2],
  ] as const) {
    const before = Number((await attr(page, 'body', 'data-updates')) ?? 0);
    await page.locator('#picture').setInputFiles({ name: `bars-${k}.png`, mimeType: 'image/png', buffer: pngOf(pictures[k], scale) });
    await page.waitForFunction((n) => Number(document.body.dataset.updates ?? 0) > n, before, { timeout: 30_000 });
    assert.equal(await attr(page, 'body', 'data-source'), 'picture');
    // the input the network saw is the 32x32 colour image, channel for channel
    const seen = await seenRgb(page);
    assert.deepEqual([seen.width, seen.height], [32, 32]);
    const worst = Math.max(...seen.rgb.map((v, i) => Math.abs(v - pictures[k][i])));
    assert.ok(worst <= 1.5 / 255, `picture ${k}: the page's 32x32 differs from the data set's image by up to ${worst.toFixed(4)}`);
    const spread = (i: number) => Math.max(...seen.rgb.slice(3 * i, 3 * i + 3)) - Math.min(...seen.rgb.slice(3 * i, 3 * i + 3));
    const colourful = Array.from({ length: 32 * 32 }, (_, i) => spread(i)).some((s) => s > 0.4);
    assert.ok(colourful, 'shown in colour, not grey');
    assert.match((await page.locator('#seen-caption').textContent()) ?? '', /32×32/);
    assert.match((await page.locator('#original-caption').textContent()) ?? '', new RegExp(`bars-${k}\\.png \\(${32 * scale}×${32 * scale}\\)`));
    // the page's forward pass agrees with the library's on the same input
    const want = libraryPrediction(pictures[k]);
    assert.equal(await attr(page, '#bars', 'data-class'), String(want.class), `picture ${k}: page and library classify alike`);
    const sure = Number(/^([\d.]+)% sure/.exec((await page.locator('#verdict-text').textContent()) ?? '')?.[1]);
    assert.ok(Math.abs(sure - 100 * want.p) <= 0.051, `picture ${k}: page ${sure}%, library ${(100 * want.p).toFixed(2)}%`);
  }
  // class names come with the test run (CIFAR-10's)
  await page.waitForSelector('#confusion', { timeout: 60_000 });
  await page.waitForFunction(() => document.querySelector('#bars .bar-label')?.textContent === 'airplane');
  const top = Number(await attr(page, '#bars', 'data-class'));
  assert.equal(await page.locator('#verdict-digit').textContent(), CIFAR_CLASSES[top]);

  await page.waitForFunction(() => document.querySelector('.embedding-legend li')?.textContent === 'airplane', null, { timeout: 120_000 });

  // the input stage paints the RGB input; the feature maps and both saliency maps are drawn
  const inputTile = await page.evaluate(() => {
    const c = document.querySelector('.stage-input canvas') as HTMLCanvasElement;
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    let colour = 0;
    for (let i = 0; i < d.length; i += 4) colour = Math.max(colour, Math.abs(d[i] - d[i + 1]), Math.abs(d[i + 1] - d[i + 2]));
    return { width: c.width, colour };
  });
  assert.equal(inputTile.width, 32);
  assert.ok(inputTile.colour > 50, 'the input stage shows colour');
  assert.equal(await page.locator('.stage-conv').count(), net.conv.length);
  assert.notEqual(Number(await attr(page, '#layers', 'data-checksum')), 0, 'the feature maps are drawn');
  assert.equal(await attr(page, '#saliency-top', 'data-class'), String(top));
  assert.notEqual(Number(await attr(page, '#saliency-top', 'data-checksum')), 0, 'the saliency map is drawn');
  assert.equal(await page.locator('#saliency-class option').first().textContent(), 'airplane');

  // a conv1 cell over three colour channels: the explained value is the network's
  const tile = page.locator('.stage-conv').first().locator('canvas.tile').nth(2);
  const box = (await tile.boundingBox())!;
  await page.mouse.click(box.x + 0.5 * box.width, box.y + 0.5 * box.height);
  await page.waitForFunction(() => document.getElementById('cell-view')?.dataset.value !== '');
  const cell = await page.evaluate(() => {
    const v = document.getElementById('cell-view')!;
    return { value: Number(v.dataset.value), activation: Number(v.dataset.activation), check: document.getElementById('cell-check')!.textContent! };
  });
  assert.ok(Math.abs(cell.value - cell.activation) <= 1e-4 * Math.max(1, Math.abs(cell.activation)), `explained ${cell.value}, network ${cell.activation}`);
  assert.match(cell.check, /✓ the same/);
  assert.match((await page.locator('.cell-sum').textContent()) ?? '', /over all 3 input channels/);
  const channels = await page.locator('#cell-in-channel option').allTextContents();
  assert.deepEqual(channels, ['red', 'green', 'blue']);

  // the map of the test set (all 200 images) with the picture placed on it
  await page.waitForFunction(() => document.getElementById('embedding')?.dataset.points === '200', null, { timeout: 120_000 });
  await page.waitForFunction(() => document.getElementById('embedding')?.dataset.x !== undefined, null, { timeout: 30_000 });

  assert.deepEqual(errors, []);
  await mkdir(artifacts, { recursive: true });
  await page.screenshot({ path: `${artifacts}explorer-rgb.png`, fullPage: true });
  await page.close();
});
