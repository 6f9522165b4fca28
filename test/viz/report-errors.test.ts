/**
 * report.html's confusion matrix linked to its mistakes (src/viz/saliency.ts), on the fixture model and the
 * first 400 MNIST test images: every number off the diagonal links to a section that exists and holds that
 * cell's count; each section shows exactly the cell's first (up to 8) test images, in test-set order; each
 * image is the test image beside its gradient × input saliency for the wrong answer, pixel for pixel against
 * the library's one-image-at-a-time saliency (the report computes them in batches).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useBackend } from '../../src/backend.ts';
import { loadMnist, subset } from '../../src/data/mnist.ts';
import type { LabeledImages } from '../../src/data/idx.ts';
import { loadParams } from '../../src/model/load.ts';
import { disposeParams } from '../../src/model/cnn.ts';
import { classify } from '../../src/eval/classify.ts';
import { gradientTimesInput } from '../../src/explain/saliency.ts';
import { explainFigures } from '../../src/viz/saliency.ts';
import { diverging, symmetricScale } from '../../src/viz/color.ts';
import { imageRgba } from '../../src/viz/images.ts';
import { fixtureModelDir } from '../helpers/fixture-model.ts';
import { decodePng } from './png.ts';

let dir: string;
let html: string;
let test400: LabeledImages;
let predicted: Uint8Array;
let model: Awaited<ReturnType<typeof loadParams>>;

before(async () => {
  await useBackend('wasm');
  const fixture = await fixtureModelDir();
  dir = await mkdtemp(join(tmpdir(), 'convlab-report-errors-'));
  for (const f of ['model.json', 'weights.bin']) await copyFile(join(fixture, f), join(dir, f));
  model = await loadParams(dir);
  test400 = subset((await loadMnist()).test, 0, 400);
  predicted = classify(model.net, model.params, test400.images, test400.count);
  html = (await explainFigures(model.net, model.params, test400, dir)).errorsHtml;
});

after(async () => {
  if (model) disposeParams(model.params);
  await rm(dir, { recursive: true, force: true });
});

/** The test indices of cell (t, p), computed here from the library's predictions. */
const cell = (t: number, p: number) => Array.from({ length: test400.count }, (_, i) => i).filter((i) => test400.labels[i] === t && predicted[i] === p);

test('every mistake count links to its own section, which holds that count; every section is linked', () => {
  const links = [...html.matchAll(/<a href="#errors-(\d+)-(\d+)" title="[^"]*">(\d+)<\/a>/g)].map((m) => m.slice(1).map(Number));
  const sections = [...html.matchAll(/<div class="error-cell" id="errors-(\d+)-(\d+)" data-count="(\d+)">/g)].map((m) => m.slice(1).map(Number));
  assert.ok(links.length >= 5, `the fixture model makes mistakes in several cells (${links.length})`);
  let mistakes = 0;
  for (const [t, p, n] of links) {
    assert.notEqual(t, p, 'the diagonal is not a mistake');
    assert.equal(n, cell(t, p).length, `cell ${t}→${p}: the matrix counts what the model does`);
    assert.ok(
      sections.some(([st, sp, sn]) => st === t && sp === p && sn === n),
      `#errors-${t}-${p} exists and holds ${n}`,
    );
    mistakes += n;
  }
  assert.equal(mistakes, predicted.filter((p, i) => p !== test400.labels[i]).length, 'every mistake is in one linked cell');
  assert.equal(sections.length, links.length, 'no section without a link');
});

test("each section shows the cell's first images in test-set order, each beside its saliency for the wrong answer", async () => {
  const shape = { height: 28, width: 28, channels: 1 };
  const blocks = [...html.matchAll(/<div class="error-cell" id="errors-(\d+)-(\d+)"[^>]*>([\s\S]*?)<\/div><\/div>/g)];
  let checked = 0;
  for (const [, ts, ps, body] of blocks) {
    const [t, p] = [Number(ts), Number(ps)];
    const figures = [
      ...body.matchAll(
        /<figure><img src="data:image\/png;base64,([^"]+)" width="(\d+)" height="(\d+)" alt="([^"]+)"><figcaption>#(\d+)<\/figcaption><\/figure>/g,
      ),
    ];
    assert.deepEqual(
      figures.map((f) => Number(f[5])),
      cell(t, p).slice(0, 8),
      `cell ${t}→${p}`,
    );
    for (const [, b64, w, h, alt, index] of figures.slice(0, 2)) {
      assert.deepEqual([Number(w), Number(h)], [57 * 3, 28 * 3], 'shown at 3x');
      assert.match(alt, new RegExp(`^test image ${index}, a ${t} taken for ${p}`));
      const png = await decodePng(Buffer.from(b64, 'base64'));
      assert.deepEqual([png.width, png.height], [57, 28], 'stored at one pixel per pixel');
      const i = Number(index);
      const pixels = test400.images.slice(i * 784, (i + 1) * 784);
      const image = imageRgba(pixels, shape, 1);
      const map = gradientTimesInput(model.net, model.params, pixels, p).values;
      const scale = symmetricScale(map);
      let worstImage = 0,
        worstMap = 0;
      for (let y = 0; y < 28; y++) {
        for (let x = 0; x < 28; x++) {
          const left = png.at(x, y),
            right = png.at(29 + x, y);
          const want = diverging(map[y * 28 + x], scale);
          for (let c = 0; c < 3; c++) {
            worstImage = Math.max(worstImage, Math.abs(left[c] - image[4 * (y * 28 + x) + c]));
            worstMap = Math.max(worstMap, Math.abs(right[c] - want[c]));
          }
        }
      }
      assert.ok(worstImage <= 1, `#${i}: the left half is the test image (off by ${worstImage})`);
      assert.ok(worstMap <= 2, `#${i}: the right half is its saliency for class ${p} (off by ${worstMap})`);
      checked += 1;
    }
  }
  assert.ok(checked >= 5, `${checked} images checked pixel by pixel`);
});
