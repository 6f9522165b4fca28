/**
 * report.html: self-contained and complete as text, and, opened in headless Chromium with the network cut
 * off, every figure loads. Leaves a screenshot at test-artifacts/report.png.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { browserSkip, launchBrowser } from '../helpers/browser.ts';
import { useBackend } from '../../src/backend.ts';
import { presets } from '../../src/model/config.ts';
import { escapeHtml, reportHtml, type Figure } from '../../src/viz/report.ts';
import { visualize, type VisualizeResult } from '../../src/viz/run.ts';
import { fixtureModelDir } from '../helpers/fixture-model.ts';

const artifacts = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
let dir: string;
let result: VisualizeResult;

before(async () => {
  await useBackend('wasm');
  dir = await mkdtemp(join(tmpdir(), 'convlab-report-'));
  result = await visualize({ modelDir: await fixtureModelDir(), outDir: dir });
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('reportHtml: every figure inlined, explanations, per-class table, escaped text, nothing to fetch', () => {
  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47]);
  const figures: Figure[] = [
    { file: 'samples.png', kind: 'samples', width: 10, height: 10, png },
    { file: 'conv1-weights.png', kind: 'weights', layer: 1, channel: 0, width: 10, height: 10, png },
    { file: 'conv2-weights-ch1.png', kind: 'weights', layer: 2, channel: 1, width: 10, height: 10, png },
    { file: 'conv1-maps.png', kind: 'maps', layer: 1, width: 10, height: 10, png },
    { file: 'confusion.png', kind: 'confusion', width: 10, height: 10, png },
  ];
  const confusion = [
    [8, 2],
    [0, 10],
  ];
  const html = reportHtml({
    modelDir: 'runs/<script>alert(1)</script>',
    net: presets.seed.network,
    train: presets.seed.train,
    metrics: { testAccuracy: 0.9, testCorrect: 18, testTotal: 20 },
    confusion,
    confusionSource: 'metrics.json',
    figures,
    skipped: [{ file: 'curves.png', reason: 'no metrics.json in x' }],
    generatedAt: '2025-01-01T00:00:00.000Z',
  });
  assert.equal(html.match(/<img src="data:image\/png;base64,iVBORw==/g)?.length, 5);
  assert.doesNotMatch(html, /<script>alert/);
  assert.match(html, /runs\/&lt;script&gt;/);
  assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'nothing may be fetched');
  for (const word of ['filter', 'feature map', 'Max-pooling', 'ReLU', 'Softmax', 'confusion matrix', 'Recall', 'Precision']) {
    assert.ok(html.includes(word), `no explanation of ${word}`);
  }
  assert.match(html, /conv2-weights-ch1\.png/);
  assert.match(html, /Not drawn: <code>curves\.png<\/code>, because no metrics\.json in x/);
  // digit 0: precision 8/8, recall 8/10; digit 1: precision 10/12, recall 10/10
  assert.match(html, /<td>0<\/td><td>100\.0%<\/td><td>80\.0%<\/td><td>10<\/td>/);
  assert.match(html, /<td>1<\/td><td>83\.3%<\/td><td>100\.0%<\/td><td>10<\/td>/);
  assert.match(html, /242,062 parameters/);
  assert.equal(escapeHtml(`a<b>&"'`), 'a&lt;b&gt;&amp;&quot;&#39;');
});

test('the report opens in headless Chromium with every image loaded and no request beyond the file', { skip: browserSkip }, async () => {
  const html = await readFile(result.report, 'utf8');
  assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//);
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const url = pathToFileURL(result.report).href;
    const elsewhere: string[] = [];
    await page.route('**/*', (route) => {
      const u = route.request().url();
      if (u === url || u.startsWith('data:')) return route.continue();
      elsewhere.push(u);
      return route.abort();
    });
    await page.goto(url, { waitUntil: 'load' });
    const images = await page.evaluate(() =>
      Array.from(document.querySelectorAll<HTMLImageElement>('.pair > figure img'), (img) => ({
        alt: img.alt,
        complete: img.complete,
        width: img.naturalWidth,
        height: img.naturalHeight,
      })),
    );
    assert.equal(images.length, result.figures.length);
    images.forEach((img, i) => {
      assert.ok(img.complete && img.width > 0, `image ${img.alt} did not load`);
      assert.deepEqual([img.width, img.height], [result.figures[i].width, result.figures[i].height], img.alt);
    });
    // the mistakes, cell by cell: each pair stored at one pixel per pixel, shown 3x and loaded
    const pairs = await page.evaluate(() =>
      Array.from(document.querySelectorAll<HTMLImageElement>('.mistakes img'), (img) => [
        img.complete,
        img.naturalWidth,
        img.naturalHeight,
        img.width,
        img.height,
      ]),
    );
    assert.ok(pairs.length > 0, 'the report shows mistakes');
    for (const p of pairs) assert.deepEqual(p, [true, 57, 28, 171, 84]);
    assert.deepEqual(elsewhere, []);
    assert.equal(await page.locator('#per-class table tbody tr').count(), 10);
    await mkdir(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'report.png'), fullPage: true });
  } finally {
    await browser.close();
  }
});
