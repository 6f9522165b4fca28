/**
 * The page's explanations in a real browser (Debian's chromium through playwright-core), served by the
 * real server on loopback with the fixture model: your own picture (PNG and JPEG through the file input,
 * a pasted one), saliency, the convolution view of a clicked cell, the confusion grid and its mistakes,
 * the embedding map, a keyboard-only walk and a phone-sized screenshot. Prints how long drawing → every
 * view takes. Leaves test-artifacts/explorer*.png.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import * as tf from '@tensorflow/tfjs';
import type { Browser, Page } from 'playwright-core';
import { browserSkip as skip, launchBrowser, SEVEN, servePage, stroke, loadPage } from '../helpers/browser.ts';
import { renderOnPaper } from '../helpers/digits.ts';
import { loadMnist } from '../../src/data/mnist.ts';
import { loadParams } from '../../src/model/load.ts';
import { disposeParams, predictProbabilities } from '../../src/model/cnn.ts';
import { decodeImage, toMnist } from '../../src/predict/preprocess.ts';

const artifacts = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

let app: FastifyInstance;
let browser: Browser;
let url: string;
let modelDir: string;

before(async () => {
  if (skip) return;
  ({ app, url, modelDir } = await servePage());
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await app?.close();
});

async function open(device: Parameters<Browser['newPage']>[0] = { viewport: { width: 1360, height: 1000 } }): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage(device);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => {
    if (!r.url().startsWith(url)) errors.push(`request off the server: ${r.url()}`);
  });
  await loadPage(page, url, errors);
  return { page, errors };
}

const attr = (page: Page, selector: string, name: string) => page.locator(selector).getAttribute(name);

/** Waits until the page has run `n` updates (drawing → every view). */
async function updatesAtLeast(page: Page, n: number): Promise<void> {
  await page.waitForFunction((k) => Number(document.body.dataset.updates ?? 0) >= k, n, { timeout: 30_000 });
}
const updates = async (page: Page) => Number((await attr(page, 'body', 'data-updates')) ?? 0);

/** A test digit drawn dark on light paper, as a photo of one would be. */
async function digitPicture(index: number, type: 'png' | 'jpeg'): Promise<Buffer> {
  const mnist = await loadMnist();
  const digit = mnist.test.images.subarray(index * 784, (index + 1) * 784);
  const canvas = renderOnPaper(digit, { scale: 7, w: 260, h: 220, x: 40, y: 10 });
  return type === 'png' ? canvas.encode('png') : canvas.encode('jpeg', 92);
}

/** The #seen canvas (the 28x28 the network saw) as values in [0,1]. */
async function seenPixels(page: Page): Promise<number[]> {
  return page.evaluate(() => {
    const c = document.getElementById('seen') as HTMLCanvasElement;
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    return Array.from({ length: c.width * c.height }, (_, i) => d[4 * i] / 255);
  });
}

async function serverClass(bytes: Buffer): Promise<number> {
  const r = await app.inject({ method: 'POST', url: '/api/predict', payload: { image: bytes.toString('base64') } });
  assert.equal(r.statusCode, 200, r.body);
  return (JSON.parse(r.body) as { class: number }).class;
}

test('your own picture: PNG and JPEG through the file input, and a pasted one, preprocessed as convlab predict does', { skip }, async () => {
  const { page, errors } = await open();
  for (const [type, index, tolerance] of [
    ['png', 0, 1.5 / 255],
    ['jpeg', 1, 0.06],
  ] as const) {
    const bytes = await digitPicture(index, type);
    const before = await updates(page);
    await page.locator('#picture').setInputFiles({ name: `digit.${type === 'png' ? 'png' : 'jpg'}`, mimeType: `image/${type}`, buffer: bytes });
    await updatesAtLeast(page, before + 1);
    assert.equal(await attr(page, 'body', 'data-source'), 'picture');
    assert.ok(await page.locator('#source').isVisible(), 'the original and the 28x28 are shown');
    // the 28x28 the page fed the network is what convlab predict makes of the same file
    const want = toMnist(await decodeImage(bytes, type)).pixels;
    const got = await seenPixels(page);
    const worst = Math.max(...got.map((v, i) => Math.abs(v - want[i])));
    assert.ok(worst <= tolerance, `${type}: the page's 28x28 differs from convlab predict's by up to ${worst.toFixed(3)}`);
    const pageClass = await attr(page, '#bars', 'data-class');
    assert.equal(pageClass, String(await serverClass(bytes)), `${type}: the page and the server classify the picture alike`);
    assert.match((await page.locator('#original-caption').textContent()) ?? '', /digit\.(png|jpg) \(260×220\)/);
  }

  // paste: a clipboard event carrying a PNG file, as Ctrl+V of a copied picture delivers it
  const pasted = await digitPicture(2, 'png');
  const before = await updates(page);
  await page.evaluate(async (b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const data = new DataTransfer();
    data.items.add(new File([bytes], 'clipboard.png', { type: 'image/png' }));
    document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true }));
  }, pasted.toString('base64'));
  await updatesAtLeast(page, before + 1);
  assert.match((await page.locator('#original-caption').textContent()) ?? '', /the pasted picture/);
  assert.equal(await attr(page, '#bars', 'data-class'), String(await serverClass(pasted)));

  // something that is not a picture: one clear line, nothing lost
  await page.locator('#picture').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not a picture') });
  await page.waitForFunction(() => /not a picture/.test(document.getElementById('source-note')?.textContent ?? ''));
  assert.deepEqual(errors, []);
  await page.close();
});

test('saliency: a heatmap for the top class and a different one for another class', { skip }, async () => {
  const { page, errors } = await open();
  await stroke(page, SEVEN);
  await updatesAtLeast(page, 1);
  const top = await attr(page, '#bars', 'data-class');
  assert.equal(await attr(page, '#saliency-top', 'data-class'), top);
  const topSum = Number(await attr(page, '#saliency-top', 'data-checksum'));
  assert.ok(topSum !== 0, 'the heatmap is not empty');
  const other = top === '1' ? '2' : '1';
  let before = await updates(page);
  await page.locator('#saliency-class').selectOption(other);
  await page.waitForFunction((o) => document.getElementById('saliency-chosen')?.dataset.class === o, other);
  const otherSum = Number(await attr(page, '#saliency-chosen', 'data-checksum'));
  assert.notEqual(otherSum, topSum, 'two classes, two heatmaps');
  await page.locator('#saliency-method').selectOption('grad-cam');
  await page.waitForFunction(() => document.getElementById('saliency-top')?.dataset.method === 'grad-cam');
  assert.notEqual(Number(await attr(page, '#saliency-top', 'data-checksum')), topSum, 'Grad-CAM is another map');
  assert.match((await page.locator('.saliency-map figcaption').first().textContent()) ?? '', /Grad-CAM/);
  before = await updates(page);
  assert.ok(before >= 1);
  assert.deepEqual(errors, []);
  await page.close();
});

test('click a feature-map cell: the convolution view shows the sum and ends at the activation the network computed', { skip }, async () => {
  const { page, errors } = await open();
  await stroke(page, SEVEN);
  await updatesAtLeast(page, 1);
  for (const [stage, map, fx, fy] of [
    [1, 4, 0.5, 0.4],
    [2, 10, 0.45, 0.55],
  ] as const) {
    const tile = page
      .locator('.stage-conv')
      .nth(stage - 1)
      .locator('canvas.tile')
      .nth(map);
    await tile.scrollIntoViewIfNeeded();
    const box = (await tile.boundingBox())!;
    await page.mouse.click(box.x + fx * box.width, box.y + fy * box.height);
    await page.waitForFunction(() => document.getElementById('cell-view')?.dataset.value !== '');
    const shown = await page.evaluate(() => {
      const v = document.getElementById('cell-view')!;
      return {
        value: Number(v.dataset.value),
        activation: Number(v.dataset.activation),
        sum: Number(v.dataset.sum),
        check: document.getElementById('cell-check')!.textContent!,
        sumText: document.getElementById('cell-sum')!.textContent!,
      };
    });
    assert.equal(await page.locator('#cell-block').inputValue(), String(stage - 1));
    assert.equal(await page.locator('#cell-map').inputValue(), String(map + 1));
    assert.ok(
      Math.abs(shown.value - shown.activation) <= 1e-4 * Math.max(1, Math.abs(shown.activation)),
      `explained ${shown.value}, network ${shown.activation}`,
    );
    assert.match(shown.check, /✓ the same/);
    // the activation read from the network's own layer output, as the page shows it in the map
    const fromLayer = await page.evaluate(
      ([s, m]) => {
        const row = Number((document.getElementById('cell-row') as HTMLInputElement).value);
        const col = Number((document.getElementById('cell-col') as HTMLInputElement).value);
        return { row, col, s, m };
      },
      [stage, map] as const,
    );
    const printedSum = Number(/= (-?[\d.]+); \+ bias/.exec(shown.sumText)?.[1]);
    assert.ok(Math.abs(printedSum - shown.sum) < 5e-3 * Math.max(1, Math.abs(shown.sum)), `the printed sum ${printedSum} is the sum ${shown.sum}`);
    console.log(
      `# cell conv${stage} map ${map + 1} (${fromLayer.row}, ${fromLayer.col}): sum ${shown.sum.toFixed(4)}, value ${shown.value.toFixed(5)}, network ${shown.activation.toFixed(5)}`,
    );
  }
  assert.deepEqual(errors, []);
  await mkdir(artifacts, { recursive: true });
  await page.locator('.cell-card').screenshot({ path: `${artifacts}explorer-cell.png` });
  await page.close();
});

test('the confusion grid: a cell opens exactly its misclassified test images; one loads into the network view', { skip }, async () => {
  // the reference: the fixture model on the MNIST test set, in Node
  const { net, params } = await loadParams(modelDir);
  const test = (await loadMnist()).test;
  const predicted: number[] = [];
  for (let s = 0; s < test.count; s += 1000) {
    const p = tf.tidy(() => tf.argMax(predictProbabilities(net, params, tf.tensor4d(test.images.subarray(s * 784, (s + 1000) * 784), [1000, 28, 28, 1])), 1));
    predicted.push(...(p.dataSync() as Int32Array));
    p.dispose();
  }
  disposeParams(params);

  const { page, errors } = await open();
  await page.waitForSelector('#confusion button.cell', { timeout: 120_000 });
  // the largest mistake cell
  const cells = await page
    .locator('#confusion button.cell')
    .evaluateAll((bs) =>
      bs.map((b) => ({ t: Number((b as HTMLElement).dataset.true), p: Number((b as HTMLElement).dataset.predicted), n: Number(b.textContent) })),
    );
  const biggest = cells.reduce((a, b) => (b.n > a.n ? b : a));
  const want = predicted.flatMap((p, i) => (test.labels[i] === biggest.t && p === biggest.p ? [i] : []));
  assert.equal(biggest.n, want.length, 'the grid counts what the model does on the test set');
  await page.locator(`#confusion button.cell[data-true="${biggest.t}"][data-predicted="${biggest.p}"]`).click();
  await page.waitForFunction(() => document.getElementById('error-gallery')?.dataset.state === 'ready', null, { timeout: 30_000 });
  const shown = await page.locator('#error-gallery .error-item').evaluateAll((bs) =>
    bs.map((b) => ({
      i: Number((b as HTMLElement).dataset.index),
      l: Number((b as HTMLElement).dataset.label),
      p: Number((b as HTMLElement).dataset.predicted),
    })),
  );
  assert.deepEqual(
    shown.map((s) => s.i),
    want.slice(0, 48),
    'the right images, in test-set order',
  );
  assert.ok(shown.every((s) => s.l === biggest.t && s.p === biggest.p));
  const maps = await page
    .locator('#error-gallery .error-item')
    .first()
    .locator('canvas')
    .evaluateAll((cs) => cs.map((c) => (c as HTMLElement).dataset.checksum ?? 'image'));
  assert.equal(maps.length, 3, 'the image and saliency for the true and the predicted class');
  assert.notEqual(maps[1], maps[2], 'the two saliency maps differ');

  const before = await updates(page);
  await page.locator('#error-gallery .error-item').first().click();
  await updatesAtLeast(page, before + 1);
  assert.equal(await attr(page, 'body', 'data-source'), 'test');
  assert.equal(await attr(page, '#bars', 'data-class'), String(biggest.p), 'the network view shows the mistake');
  assert.match((await page.locator('#original-caption').textContent()) ?? '', new RegExp(`test image #${want[0]}, true class ${biggest.t}`));
  assert.deepEqual(errors, []);
  await mkdir(artifacts, { recursive: true });
  await page.locator('.errors-card').screenshot({ path: `${artifacts}explorer-errors.png` });
  await page.close();
});

test("the embedding map: 2,000 points, and the drawing's point moves as the drawing changes; drawing → every view timed", { skip }, async () => {
  const { page, errors } = await open();
  await page.waitForFunction(() => document.getElementById('embedding')?.dataset.points === '2000', null, { timeout: 180_000 });
  await stroke(page, [
    [0.5, 0.15],
    [0.5, 0.85],
  ]);
  await page.waitForFunction(() => document.getElementById('embedding')?.dataset.x !== undefined, null, { timeout: 30_000 });
  const one = [await attr(page, '#embedding', 'data-x'), await attr(page, '#embedding', 'data-y')];
  await page.locator('#clear').click();
  await stroke(page, SEVEN);
  await page.waitForFunction(
    (o) => {
      const e = document.getElementById('embedding')!;
      return e.dataset.x !== undefined && (e.dataset.x !== o[0] || e.dataset.y !== o[1]);
    },
    one,
    { timeout: 30_000 },
  );

  // drawing → every view (forward pass, bars, feature maps, two saliency maps, the cell view, the map)
  await page.locator('.stage-conv canvas.tile').nth(3).click();
  const times: number[] = [];
  for (let k = 0; k < 12; k++) {
    const before = await updates(page);
    await stroke(page, [
      [0.3 + 0.03 * k, 0.5],
      [0.6, 0.52],
    ]);
    await updatesAtLeast(page, before + 1);
    times.push(Number(await attr(page, 'body', 'data-update-ms')));
  }
  times.sort((a, b) => a - b);
  console.log(
    `# drawing → all views updated, wasm, headless chromium on a shared 2-core machine: median ${times[6].toFixed(1)} ms, min ${times[0].toFixed(1)}, max ${times[times.length - 1].toFixed(1)} over ${times.length} strokes`,
  );
  assert.deepEqual(errors, []);
  await mkdir(artifacts, { recursive: true });
  await page.screenshot({ path: `${artifacts}explorer.png`, fullPage: true });
  await page.close();
});

test('keyboard only: every control is reachable with Tab, named, and shows its focus; a confusion cell opens with Enter', { skip }, async () => {
  const { page, errors } = await open();
  await page.waitForSelector('#confusion button.cell', { timeout: 120_000 });
  const seen: { id: string; name: string; outline: string }[] = [];
  for (let k = 0; k < 200; k++) {
    await page.keyboard.press('Tab');
    const f = await page.evaluate(() => {
      const a = document.activeElement as HTMLElement | null;
      if (!a || a === document.body) return null;
      const label = a.id ? document.querySelector(`label[for="${a.id}"]`)?.textContent : null;
      const name = a.getAttribute('aria-label') ?? a.closest('label')?.textContent ?? label ?? a.textContent ?? '';
      const style = getComputedStyle(a.closest('.file-button') ?? a);
      return { id: a.id || `${a.tagName.toLowerCase()}.${a.className}`, name: name.trim(), outline: `${style.outlineStyle} ${style.outlineWidth}` };
    });
    if (!f) continue;
    if (seen.length > 0 && f.id === seen[0].id) break; // wrapped around
    seen.push(f);
  }
  const ids = seen.map((s) => s.id);
  for (const id of ['picture', 'clear', 'compare', 'saliency-method', 'saliency-class', 'cell-block', 'cell-map', 'cell-row', 'cell-col', 'train-start']) {
    assert.ok(ids.includes(id), `#${id} is reachable with Tab (reached: ${ids.join(', ')})`);
  }
  assert.ok(
    ids.some((id) => id.startsWith('button.cell')),
    'the confusion cells are reachable',
  );
  for (const s of seen) {
    assert.ok(s.name.length > 0, `${s.id} has an accessible name`);
    assert.ok(!s.outline.startsWith('none'), `${s.id} shows its focus (${s.outline})`);
  }
  // Enter on a confusion cell opens its mistakes; the cell view follows its number inputs
  await page.locator('#confusion button.cell').first().focus();
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.getElementById('error-gallery')?.dataset.state === 'ready', null, { timeout: 30_000 });
  await page.locator('#error-gallery .error-item').first().focus();
  const before = await updates(page);
  await page.keyboard.press('Enter');
  await updatesAtLeast(page, before + 1);
  assert.equal(await attr(page, 'body', 'data-source'), 'test');
  await page.locator('#cell-block').focus();
  await page.keyboard.press('ArrowDown'); // conv2
  await page.locator('#cell-row').fill('3');
  await page.locator('#cell-row').press('Enter');
  await page.locator('#cell-row').dispatchEvent('change');
  await page.waitForFunction(() => document.getElementById('cell-view')?.dataset.value !== '');

  // the feature maps: one Tab stop per conv layer (roving tabindex); arrows move a cell, crossing into the
  // next map at a map's edge; PageDown/End jump; Enter and Space explain the cell under the cursor
  assert.deepEqual(
    ids.filter((id) => /^conv\d+-map-\d+$/.test(id)),
    ['conv1-map-1', 'conv2-map-1'],
  );
  const cursorAt = () => attr(page, '.stage-conv >> nth=0 >> .tiles', 'data-cell');
  const focused = () => page.evaluate(() => ({ id: document.activeElement?.id, label: document.activeElement?.getAttribute('aria-label') ?? '' }));
  const explained = async (map: number, row: number, col: number) => {
    await page.waitForFunction(
      ([m, r, c]) =>
        (document.getElementById('cell-map') as HTMLInputElement).value === String(m) &&
        (document.getElementById('cell-row') as HTMLInputElement).value === String(r) &&
        (document.getElementById('cell-col') as HTMLInputElement).value === String(c) &&
        (document.getElementById('cell-block') as HTMLSelectElement).value === '0',
      [map, row, col],
    );
    assert.match((await page.locator('#cell-check').textContent()) ?? '', /✓ the same/);
  };
  await page.locator('#conv1-map-1').focus();
  for (const key of ['ArrowRight', 'ArrowRight', 'ArrowDown']) await page.keyboard.press(key);
  assert.equal(await cursorAt(), '0,1,2');
  for (let k = 0; k < 12; k++) await page.keyboard.press('ArrowRight'); // column 14 is past the edge of a 14-wide map
  assert.equal(await cursorAt(), '1,1,0');
  let f = await focused();
  assert.equal(f.id, 'conv1-map-2', 'the focus moved with the cursor into the next map');
  assert.match(f.label, /^conv1 map 2 of 16, row 1, column 0: value -?\d+\.\d{3}\. Arrow keys/);
  assert.equal(await page.locator('#layers .visually-hidden').textContent(), f.label.replace(/\. Arrow keys.*$/, ''), 'the move was announced');
  const tabIndexes = await page.locator('.stage-conv >> nth=0 >> canvas.tile').evaluateAll((cs) => cs.map((c) => (c as HTMLElement).tabIndex));
  assert.deepEqual(
    tabIndexes.map((t, i) => (t === 0 ? i : -1)).filter((i) => i >= 0),
    [1],
    'exactly one map of the layer is in the Tab order',
  );
  // the cursor is visible over the cell, and so is the focus ring
  const geometry = await page.evaluate(() => {
    const cursor = document.querySelector('.stage-conv .cell-cursor') as HTMLElement;
    const tile = document.activeElement as HTMLElement;
    return {
      display: getComputedStyle(cursor).display,
      cursor: cursor.getBoundingClientRect().toJSON(),
      tile: tile.getBoundingClientRect().toJSON(),
      outline: getComputedStyle(tile).outlineStyle,
    };
  });
  assert.equal(geometry.display, 'block');
  assert.notEqual(geometry.outline, 'none');
  const cellSide = geometry.tile.width / 14;
  assert.ok(
    Math.abs(geometry.cursor.x - geometry.tile.x) < 1 && Math.abs(geometry.cursor.y - (geometry.tile.y + cellSide)) < 1,
    'the cursor sits on row 1, column 0',
  );
  await page.keyboard.press('Enter');
  await explained(2, 1, 0);
  await page.keyboard.press('PageDown');
  await page.keyboard.press('End');
  f = await focused();
  assert.equal(f.id, 'conv1-map-3');
  await page.keyboard.press(' ');
  await explained(3, 1, 13);
  await mkdir(artifacts, { recursive: true });
  await page.locator('.inside-card').screenshot({ path: `${artifacts}explorer-keyboard.png` });
  console.log(`# keyboard walk: ${seen.length} stops`);
  assert.deepEqual(errors, []);
  await page.close();
});

test('on a phone: everything fits the width; screenshot', { skip }, async () => {
  const { page, errors } = await open({ viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true, deviceScaleFactor: 2, colorScheme: 'dark' });
  await page.locator('#picture').setInputFiles({ name: 'photo.jpg', mimeType: 'image/jpeg', buffer: await digitPicture(0, 'jpeg') });
  await updatesAtLeast(page, 1);
  await page.waitForSelector('#confusion button.cell', { timeout: 120_000 });
  await page.waitForFunction(() => document.getElementById('embedding')?.dataset.points === '2000', null, { timeout: 180_000 });
  await page.locator('.stage-conv canvas.tile').nth(2).click();
  await page.locator('#confusion button.cell').first().click();
  await page.waitForFunction(() => document.getElementById('error-gallery')?.dataset.state === 'ready', null, { timeout: 30_000 });
  await mkdir(artifacts, { recursive: true });
  await page.screenshot({ path: `${artifacts}explorer-phone.png`, fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  const wide = await page.evaluate(() =>
    [...document.querySelectorAll<HTMLElement>('main *')]
      .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5 && !e.closest('.confusion-scroll'))
      .slice(0, 5)
      .map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`),
  );
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than the phone: ${wide.join(', ')}`);
  assert.deepEqual(errors, []);
  await page.close();
});
