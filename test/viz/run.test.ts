/** `visualize` on the shared fixture model: every file, every size, and content that follows the model. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../src/backend.ts';
import { loadMnist, type MnistSplits } from '../../src/data/mnist.ts';
import { loadParams } from '../../src/model/load.ts';
import { disposeParams, predictProbabilities } from '../../src/model/cnn.ts';
import { ConvlabError } from '../../src/errors.ts';
import { visualize, type VisualizeResult } from '../../src/viz/run.ts';
import { filtersLayout } from '../../src/viz/filters.ts';
import { featureMapsLayout } from '../../src/viz/feature-maps.ts';
import { imageGridLayout } from '../../src/viz/images.ts';
import { confusionLayout } from '../../src/viz/confusion.ts';
import { curvesLayout } from '../../src/viz/curves.ts';
import { style } from '../../src/viz/draw.ts';
import { fixtureModelDir } from '../helpers/fixture-model.ts';
import { renderOnPaper } from '../helpers/digits.ts';
import { brightness, decodePng, isBlue, isRed, rightmostInk } from './png.ts';

const mnist = { height: 28, width: 28, channels: 1 };
let model: string;
let data: MnistSplits;
let dir: string;

before(async () => {
  await useBackend('wasm');
  model = await fixtureModelDir();
  data = await loadMnist();
  dir = await mkdtemp(join(tmpdir(), 'convlab-viz-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every figure's file name and the size its layout promises. */
const expected: Record<string, { width: number; height: number }> = {
  'curves.png': curvesLayout(),
  'samples.png': imageGridLayout(16, mnist),
  'conv1-weights.png': filtersLayout(16, 5),
  'conv1-maps.png': featureMapsLayout(2, mnist, { height: 14, width: 14, channels: 16 }),
  'conv2-weights-ch0.png': filtersLayout(36, 5),
  'conv2-weights-ch1.png': filtersLayout(36, 5),
  'conv2-maps.png': featureMapsLayout(2, mnist, { height: 7, width: 7, channels: 36 }),
  'errors.png': imageGridLayout(16, mnist),
  'confusion.png': confusionLayout(10),
  // 12 test images + 12 mistakes in 4 rows of 6 pairs; the map and its legend (src/viz/saliency.ts, embedding.ts)
  'saliency.png': { width: 1174, height: 624 },
  'embedding.png': { width: 750, height: 676 },
};

/** One `visualize` with the defaults into `out`, shared by the two tests that read its files (a run takes seconds). */
let defaults: Promise<{ result: VisualizeResult; out: string }> | undefined;
function drawDefaults() {
  const out = join(dir, 'defaults');
  defaults ??= visualize({ modelDir: model, outDir: out, data }).then((result) => ({ result, out }));
  return defaults;
}

test('writes every figure, each a PNG of the size its layout promises, and report.html', async () => {
  const { result, out } = await drawDefaults();
  assert.deepEqual(result.skipped, []);
  assert.deepEqual(
    result.figures.map((f) => f.file),
    Object.keys(expected),
  );
  assert.deepEqual((await readdir(out)).sort(), [...Object.keys(expected), 'report.html'].sort());
  // The sizes the layouts promise, pinned for the lesson's network so that a layout change is noticed.
  assert.deepEqual([expected['samples.png'].width, expected['samples.png'].height], [1066, 406]);
  assert.deepEqual([expected['conv1-weights.png'].width, expected['conv1-weights.png'].height], [680, 508]);
  for (const [file, size] of Object.entries(expected)) {
    const p = await decodePng(await readFile(join(out, file)));
    assert.equal(p.width, size.width, `${file} width`);
    assert.equal(p.height, size.height, `${file} height`);
    const right = rightmostInk(p, 0, style.headerHeight - 8);
    assert.ok(right < p.width - style.margin / 2, `${file}: header cut off (ink at x=${right} of ${p.width})`);
  }
});

test('the figures follow the model: filter colours match the weights, the darkest confusion cell is on the diagonal, wrong samples are framed red', async () => {
  const { out } = await drawDefaults();
  const m = await loadParams(model);
  try {
    // conv1: every clearly positive weight is red, every clearly negative one blue.
    const w = m.params.get('conv1/kernel')!.dataSync(); // [5,5,1,16]
    const scale = Math.max(...Array.from(w, Math.abs));
    const layout = filtersLayout(16, 5);
    const filters = await decodePng(await readFile(join(out, 'conv1-weights.png')));
    let checked = 0;
    for (let f = 0; f < 16; f++) {
      for (let p = 0; p < 25; p++) {
        const v = w[p * 16 + f];
        if (Math.abs(v) < 0.3 * scale) continue;
        const c = layout.cells[f];
        const rgb = filters.at(c.x + ((p % 5) + 0.5) * layout.pixel, c.y + (Math.floor(p / 5) + 0.5) * layout.pixel);
        assert.ok(v > 0 ? isRed(rgb) : isBlue(rgb), `conv1 filter ${f} weight ${p} = ${v.toFixed(3)} drawn as ${rgb}`);
        checked++;
      }
    }
    assert.ok(checked > 50, `only ${checked} weights were strong enough to check`);

    // Confusion: a trained model's darkest cell is on the diagonal.
    const cm = await decodePng(await readFile(join(out, 'confusion.png')));
    const cells = confusionLayout(10).cells;
    let darkest = [-1, -1];
    let min = Infinity;
    for (let i = 0; i < 10; i++) {
      for (let j = 0; j < 10; j++) {
        const b = brightness(cm.at(cells[i][j].x + 3, cells[i][j].y + 3));
        if (b < min) [min, darkest] = [b, [i, j]];
      }
    }
    assert.equal(darkest[0], darkest[1], `darkest cell ${darkest} is off the diagonal`);

    // Samples: a red frame exactly around the images the model gets wrong.
    const x = tf.tensor4d(data.test.images.subarray(0, 16 * 784), [16, 28, 28, 1]);
    const predicted = Array.from(tf.tidy(() => tf.argMax(predictProbabilities(m.net, m.params, x), 1)).dataSync());
    x.dispose();
    const samples = await decodePng(await readFile(join(out, 'samples.png')));
    const images = imageGridLayout(16, mnist).images;
    predicted.forEach((p, i) => {
      const edge = samples.at(images[i].x - 1, images[i].y + 50);
      assert.equal(isRed(edge), p !== data.test.labels[i], `sample ${i}: predicted ${p}, label ${data.test.labels[i]}, frame ${edge}`);
    });
    assert.ok(
      predicted.some((p, i) => p !== data.test.labels[i]),
      'the fixture gets one of the first 16 wrong (test #8)',
    );
  } finally {
    disposeParams(m.params);
  }
});

test('a folder with only model.json and weights.bin: every figure but the curves, confusion computed from the test set', async () => {
  const bare = join(dir, 'bare');
  await rm(bare, { recursive: true, force: true });
  await mkdir(bare);
  for (const f of ['model.json', 'weights.bin']) await copyFile(join(model, f), join(bare, f));
  const result = await visualize({ modelDir: bare, data });
  assert.deepEqual(
    result.skipped.map((s) => s.file),
    ['curves.png'],
  );
  assert.match(result.skipped[0].reason, /no metrics\.json/);
  assert.deepEqual(
    result.figures.map((f) => f.file),
    Object.keys(expected).filter((f) => f !== 'curves.png'),
  );
  const html = await readFile(result.report, 'utf8');
  assert.match(html, /Not drawn: <code>curves\.png<\/code>/);
  assert.match(html, /computed now from the test set/);
  // The confusion matrix computed here is the one training recorded.
  const metrics = JSON.parse(await readFile(join(model, 'metrics.json'), 'utf8'));
  const recorded: number[][] = metrics.confusionMatrix;
  const diagonal = recorded.reduce((a, row, i) => a + row[i], 0);
  assert.match(html, new RegExp(`${(diagonal / 100).toFixed(2)}%`));
});

test('--image takes test indices and picture files; feature maps get one row per image', async () => {
  const file = join(dir, 'seven.png');
  await writeFile(file, renderOnPaper(data.test.images.slice(0, 784), { scale: 6, w: 220, h: 200, x: 20, y: 10 }).toBuffer('image/png'));
  const out = join(dir, 'images');
  const result = await visualize({ modelDir: model, outDir: out, data, images: [file, 13, 4], channels: [3] });
  const files = result.figures.map((f) => f.file);
  assert.ok(files.includes('conv2-weights-ch3.png') && !files.includes('conv2-weights-ch0.png'), files.join(' '));
  const size = featureMapsLayout(3, mnist, { height: 14, width: 14, channels: 16 });
  const maps = await decodePng(await readFile(join(out, 'conv1-maps.png')));
  assert.deepEqual([maps.width, maps.height], [size.width, size.height]);
  // The picture file went through the predict preprocessing: its input tile holds a dark digit on white.
  const r = size.rows[0].input;
  let ink = 0;
  for (let y = r.y; y < r.y + r.height; y += 4) for (let x = r.x; x < r.x + r.width; x += 4) if (brightness(maps.at(x, y)) < 80) ink++;
  assert.ok(ink > 20, `no digit in the input tile of the file (${ink} dark samples)`);
});

test('bad choices fail with a typed error that says what to pass', async () => {
  await assert.rejects(visualize({ modelDir: model, outDir: join(dir, 'bad'), data, images: [10000] }), (err: unknown) => {
    assert.ok(err instanceof ConvlabError);
    assert.equal(err.code, 'IMAGE_INDEX');
    assert.match(err.message, /0 to 9,999/);
    return true;
  });
  await assert.rejects(visualize({ modelDir: model, outDir: join(dir, 'bad'), data, channels: [16] }), /conv2 has input channels 0 to 15/);
  await assert.rejects(visualize({ modelDir: model, outDir: join(dir, 'bad'), data, images: [join(dir, 'missing.png')] }), /no such file/);
  await assert.rejects(visualize({ modelDir: join(dir, 'nowhere'), data }), /no model\.json/);
});
