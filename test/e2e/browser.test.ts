/**
 * The page in a real browser (Debian's chromium through playwright-core), served by the real server on
 * loopback: load it, draw strokes with the mouse, watch the prediction and feature maps change, compare
 * with the server, train a few steps in the page, pause and resume. Leaves test-artifacts/page.png.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { Browser, Page } from 'playwright-core';
import { browserSkip as skip, launchBrowser, SEVEN, servePage, stroke } from '../helpers/browser.ts';

const artifacts = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

let app: FastifyInstance;
let browser: Browser;
let url: string;

before(async () => {
  if (skip) return;
  ({ app, url } = await servePage());
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await app?.close();
});

/** Opens the page and waits until the model is loaded; fails on any page error. */
async function open(
  query = '',
  device: Parameters<Browser['newPage']>[0] = { viewport: { width: 1360, height: 1000 } },
): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage(device);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()}`));
  page.on('request', (r) => {
    if (!r.url().startsWith(url)) errors.push(`request off the server: ${r.url()}`); // nothing from a CDN
  });
  await page.goto(url + query);
  await page.waitForFunction(() => document.body.dataset.ready !== 'false', null, { timeout: 30_000 });
  const state = await page.evaluate(() => document.body.dataset.ready);
  assert.equal(state, 'true', `page failed: ${await page.locator('#fatal').textContent()} ${errors.join('; ')}`);
  return { page, errors };
}

const ONE: [number, number][] = [
  [0.5, 0.15],
  [0.5, 0.85],
];

/** The same stroke with a finger: raw touch events through the DevTools protocol. */
async function touchStroke(page: Page, points: [number, number][]): Promise<void> {
  await page.locator('#pad').scrollIntoViewIfNeeded();
  const box = (await page.locator('#pad').boundingBox())!;
  const at = ([x, y]: [number, number]) => ({ x: box.x + x * box.width, y: box.y + y * box.height });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [at(points[0])] });
  for (let i = 1; i < points.length; i++) {
    for (let s = 1; s <= 6; s++) {
      const [x0, y0] = points[i - 1],
        [x1, y1] = points[i];
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: [at([x0 + ((x1 - x0) * s) / 6, y0 + ((y1 - y0) * s) / 6])] });
    }
  }
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  await cdp.detach();
}

const attr = (page: Page, selector: string, name: string) => page.locator(selector).getAttribute(name);

/** Waits until `selector`'s attribute `name` differs from `old`, and returns the new value. */
async function changed(page: Page, selector: string, name: string, old: string | null): Promise<string | null> {
  await page.waitForFunction(([s, n, o]) => document.querySelector(s)?.getAttribute(n) !== o, [selector, name, old] as const, { timeout: 15_000 });
  return attr(page, selector, name);
}

test('drawing updates the prediction, the input image and every feature map; the server agrees', { skip }, async () => {
  const { page, errors } = await open();
  assert.match((await page.locator('#backend-badge').textContent()) ?? '', /^backend: (webgl|wasm|cpu)$/);
  assert.match((await page.locator('#model-badge').textContent()) ?? '', /\d+\.\d\d% on the MNIST test set · 242,062 parameters/);
  assert.equal(await attr(page, '#bars', 'data-class'), '');
  assert.equal(await attr(page, '#layers', 'data-checksum'), '0');
  assert.equal(await page.locator('#layers canvas.tile').count(), 1 + 16 + 36 + 1 + 1);
  assert.equal(await attr(page, '#filters', 'data-version'), '1', 'the filters are drawn at load');

  await stroke(page, ONE);
  assert.equal(await changed(page, '#bars', 'data-class', ''), '1');
  const afterOne = await changed(page, '#layers', 'data-checksum', '0');
  const inputInk = await page.evaluate(() => {
    const c = document.querySelector<HTMLCanvasElement>('.tiles-input canvas')!;
    return c
      .getContext('2d')!
      .getImageData(0, 0, c.width, c.height)
      .data.reduce((a, b) => a + b, 0);
  });
  assert.ok(inputInk > 28 * 28 * 255, 'the 28x28 input shows the stroke');

  const tensors = await attr(page, 'body', 'data-tensors');
  await page.locator('#clear').click();
  assert.equal(await changed(page, '#bars', 'data-class', '1'), '');
  await stroke(page, SEVEN);
  assert.equal(await changed(page, '#bars', 'data-class', ''), '7');
  const afterSeven = await attr(page, '#layers', 'data-checksum');
  assert.notEqual(afterSeven, afterOne, 'the feature maps changed with the drawing');
  await stroke(page, [
    [0.3, 0.5],
    [0.7, 0.5],
  ]); // a crossed seven: more drawing, more forward passes
  await changed(page, '#layers', 'data-checksum', afterSeven);
  assert.equal(await attr(page, 'body', 'data-tensors'), tensors, 'the page frees every tensor it makes');

  await page.locator('#compare').check();
  await page.waitForFunction(() => /Server: 7 .* agrees/.test(document.getElementById('server-text')?.textContent ?? ''), null, { timeout: 15_000 });
  assert.deepEqual(errors, []);
  await page.close();
});

test('backend fallbacks: the page runs on wasm and on cpu', { skip }, async () => {
  for (const backend of ['wasm', 'cpu']) {
    const { page, errors } = await open(`?backend=${backend}`);
    assert.equal(await page.locator('#backend-badge').textContent(), `backend: ${backend}`);
    await stroke(page, SEVEN);
    assert.equal(await changed(page, '#bars', 'data-class', ''), '7', backend);
    assert.deepEqual(errors, []);
    await page.close();
  }
});

test('training in the page: steps, charts and filters update; pause and resume; draw on the result', { skip }, async () => {
  // wasm: convlab's gradient kernels (src/kernels/wasm.ts) make it the fastest backend without a GPU
  const { page, errors } = await open('?backend=wasm');
  await page.locator('#train-count').selectOption('1000');
  await page.locator('#train-batch').selectOption('32');
  const filtersBefore = await attr(page, '#filters', 'data-checksum');
  await page.locator('#train-start').click();
  await page.waitForFunction(() => Number(document.getElementById('train-status')?.dataset.step) >= 12, null, { timeout: 30_000 });
  assert.notEqual(await attr(page, '#filters', 'data-checksum'), filtersBefore, 'the filters follow the training');
  assert.ok(await page.locator('input[name="model"][value="trained"]').isChecked(), 'the pad now uses the trained network');
  assert.match(
    (await page.locator('#train-status').textContent()) ?? '',
    /^step \d+ · epoch 0\.\d · loss \d\.\d{3} · batch accuracy \d+\.\d% · validation .* images\/s on wasm · training$/,
  );

  await page.locator('#train-pause').click();
  await page.waitForFunction(() => document.getElementById('train-pause')?.textContent === 'Resume');
  const paused = Number(await attr(page, '#train-status', 'data-step'));
  await page.waitForTimeout(400);
  assert.equal(Number(await attr(page, '#train-status', 'data-step')), paused, 'paused means paused');
  const tensors = await attr(page, 'body', 'data-tensors');
  await page.locator('#train-pause').click();
  await page.waitForFunction((n) => Number(document.getElementById('train-status')?.dataset.step) >= n + 4, paused, { timeout: 30_000 });
  await page.locator('#train-pause').click();
  await page.waitForFunction(() => document.getElementById('train-pause')?.textContent === 'Resume');
  assert.equal(await attr(page, 'body', 'data-tensors'), tensors, 'training steps free their tensors');

  await stroke(page, SEVEN);
  await changed(page, '#bars', 'data-class', '').catch((err) => assert.fail(`${err}; page errors: ${errors.join('; ')}`));
  assert.match((await page.locator('#verdict-text').textContent()) ?? '', /trained here, step \d+/);
  const lossPixels = await page.evaluate(() => {
    const c = document.getElementById('loss-chart') as HTMLCanvasElement;
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    let orange = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i + 1] > 100 && d[i + 1] < 180 && d[i + 2] < 100) orange++;
    return orange;
  });
  assert.ok(lossPixels > 50, 'the loss curve is drawn');

  await mkdir(artifacts, { recursive: true });
  await page.screenshot({ path: `${artifacts}page.png`, fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

test('on a phone: the layout fits the width, and a finger draws', { skip }, async () => {
  const { page, errors } = await open('?backend=wasm', { viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true, deviceScaleFactor: 2 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than the phone`);
  await touchStroke(page, SEVEN);
  assert.equal(await changed(page, '#bars', 'data-class', ''), '7');
  await mkdir(artifacts, { recursive: true });
  await page.screenshot({ path: `${artifacts}page-phone.png`, fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});
